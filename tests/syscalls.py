"""oort-sync as a real process under strace, one file's system calls delayed or failed.

strace's fault injection acts on the real system calls of the real program: a delay
holds the process inside a call (so a test can kill it there, knowing where it is), an
error makes the call fail as a bad disk or a full one would. Its `when=` counts the
calls of each thread separately.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from helpers import ROOT, need_tool, unavailable

from oort_lib.state.lock import current_holder


def strace() -> str:
    """strace's path, if it can trace here; else unavailable() (a test needing it is
    skipped, and fails under CI, where .ci/run installs it)."""
    found = need_tool("strace")
    probe = subprocess.run([found, "-qq", "-o", os.devnull, "true"], capture_output=True)
    if probe.returncode != 0:
        unavailable(f"strace cannot trace here: {probe.stderr.decode(errors='replace')}")
    return found


def traced(path: Path, inject: str, *args: str, log: Path | None = None,
           env: dict | None = None, stdin: int | None = None) -> subprocess.Popen:
    """`oort-sync ARGS` started under strace, with `inject` (strace's syntax, such as
    "pwrite64:delay_exit=300000" or "openat:error=EIO:when=1") on the calls naming
    `path` (which may not exist yet). `log` receives strace's lines; an injected call is
    marked there "(INJECTED)" or "(DELAYED)"."""
    syscall = inject.split(":", 1)[0]
    command = [strace(), "-f", "-qq", "--seccomp-bpf", "-e", "signal=none",
               "-o", str(log or os.devnull), "-P", str(path), "-e", f"trace={syscall}",
               "-e", f"inject={inject}", sys.executable, str(ROOT / "oort_sync.py"),
               *map(str, args)]
    return subprocess.Popen(command, env={**os.environ, **(env or {})}, stdin=stdin,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def injected(log: Path) -> int:
    """How many calls strace delayed or failed on purpose, from its log."""
    text = log.read_text(errors="replace") if log.exists() else ""
    return sum(line.count("(INJECTED)") + line.count("(DELAYED)") for line in text.splitlines())


def run_pid(lock_file: Path, proc: subprocess.Popen, seconds: float = 30.0) -> int:
    """The pid of the run started as `proc` (under strace, strace's child), read from
    the run lock it holds. Fails the test if the run ends first."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        holder = current_holder(lock_file)
        # Right after the lock is taken, the holder file may still name a killed run.
        if holder is not None and holder.pid in (proc.pid, *children(proc.pid)):
            return holder.pid
        assert proc.poll() is None, f"the run ended first: {proc.communicate()}"
        time.sleep(0.005)
    raise AssertionError("the run never took its lock")


def children(pid: int) -> list[int]:
    """The pids of the processes whose parent is `pid` (Linux)."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry))
    return found


def holds_open(pid: int, path: Path) -> bool:
    """True while the process `pid` has `path` open."""
    target = os.path.realpath(path)
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return False
    for fd in fds:
        try:
            if os.readlink(f"/proc/{pid}/fd/{fd}") == target:
                return True
        except OSError:
            continue
    return False


def written(path: Path) -> tuple:
    """What changes when a file is written (size, modification time, inode)."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return ()
    return st.st_size, st.st_mtime_ns, st.st_ino
