from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest

from oort_lib.errors import LockHeld
from oort_lib.state.lock import RunLock, current_holder


def test_second_holder_is_refused_with_pid(tmp_path):
    path = tmp_path / "run.lock"
    with RunLock(path):
        holder = current_holder(path)
        assert holder is not None and holder.pid == os.getpid()
        with pytest.raises(LockHeld) as info:
            RunLock(path).acquire()
        assert f"pid {os.getpid()}" in info.value.message and info.value.exit_code == 75
    assert current_holder(path) is None
    with RunLock(path):  # free again
        pass


def test_lock_of_a_killed_process_is_free(tmp_path):
    path = tmp_path / "run.lock"
    code = ("import sys, time; from oort_lib.state.lock import RunLock; "
            f"RunLock({str(path)!r}).acquire(); print('locked', flush=True); time.sleep(60)")
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "locked"
    assert current_holder(path).pid == proc.pid
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert current_holder(path) is None  # no stale lock, even with the holder file left
    with RunLock(path):
        assert current_holder(path).pid == os.getpid()
