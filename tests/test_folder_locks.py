"""The folder locks are machine-wide: every user of the machine sees them (root's systemd
timer and a user's cron over one shared folder), they are made so that any user can take
them, and what another user may have put in their place is never followed nor written."""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import pytest
from fitsfiles import NIGHT
from helpers import ROOT, assert_each_once, configure, needs

from oort_lib import host
from oort_lib.errors import LockHeld
from oort_lib.samples import write_fits
from oort_lib.state import config as cfg
from oort_lib.state import folderlock
from oort_lib.state.folderlock import FolderLock, folder_lock_dir, folder_locks

OTHER_UID = 54321  # a user with no entry in /etc/passwd: setpriv needs none


def _frames(root: Path, count: int) -> list[Path]:
    files = [write_fits(root / "M31" / f"f{n}.fits", NIGHT) for n in range(count)]
    for path in files:
        os.utime(path, (1_600_000_000, 1_600_000_000))  # settled long ago
    return files


def _can_switch_user() -> bool:
    if not shutil.which("setpriv") or not hasattr(os, "geteuid") or os.geteuid() != 0:
        return False
    done = subprocess.run(["setpriv", f"--reuid={OTHER_UID}", f"--regid={OTHER_UID}",
                           "--clear-groups", sys.executable, "-c", "import oort_lib"],
                          capture_output=True, timeout=60)
    return done.returncode == 0  # this Python must be usable by another user


@needs(_can_switch_user(), "needs root, setpriv, and a Python that other users can run")
def test_two_users_never_upload_one_folder_at_once(sandbox):
    """root and another user, each with their own home, run at the same moment over one
    shared folder: one uploads, the other exits 75; every file ends on the server once
    and the dataset is created once."""
    base = Path(tempfile.mkdtemp(prefix="oort-users-"))
    try:
        os.chmod(base, 0o755)
        root = base / "shared"
        files = _frames(root, 8)
        homes = {"root": base / "root-home", "user": base / "user-home"}
        for home in homes.values():
            configure(cfg.resolve_paths(str(home)), sandbox.url, sandbox.seed.upload_key,
                      folders=[cfg.Folder(str(root))], jobs=1)
        for dirpath, _dirs, names in os.walk(homes["user"]):
            for name in [dirpath, *(os.path.join(dirpath, n) for n in names)]:
                os.chown(name, OTHER_UID, OTHER_UID)
        env = {k: v for k, v in os.environ.items()
               if k not in ("XDG_CONFIG_HOME", "XDG_STATE_HOME", "OORT_SYNC_HOME")}
        # /run/lock as it is (sticky, writable by all) without the oort-sync folder yet:
        # the first run, root's or the user's, makes it for both.
        (base / "run-lock").mkdir(mode=0o1777)
        os.chmod(base / "run-lock", 0o1777)
        env["OORT_SYNC_LOCK_DIR"] = str(base / "run-lock" / "oort-sync")
        program = [sys.executable, str(ROOT / "oort_sync.py")]
        as_user = ["setpriv", f"--reuid={OTHER_UID}", f"--regid={OTHER_UID}",
                   "--clear-groups"]
        commands = {
            "root": ([*program, "run", "--home", str(homes["root"])], {**env}),
            "user": ([*as_user, *program, "run", "--home", str(homes["user"])],
                     {**env, "HOME": str(homes["user"])}),
        }
        sandbox.faults.latency = 0.3  # a run lasts seconds: the other one meets it
        done: dict[str, subprocess.CompletedProcess] = {}
        start = threading.Barrier(2)

        def run(who: str) -> None:
            argv, run_env = commands[who]
            start.wait()
            done[who] = subprocess.run(argv, env=run_env, capture_output=True, text=True,
                                       timeout=120)

        threads = [threading.Thread(target=run, args=(who,)) for who in commands]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        codes = sorted(d.returncode for d in done.values())
        assert codes == [0, 75], {w: (d.returncode, d.stderr) for w, d in done.items()}
        stood_aside = next(d for d in done.values() if d.returncode == 75)
        assert str(root) in stood_aside.stderr and "being uploaded" in stood_aside.stderr
        sandbox.faults.latency = 0
        for who in ("user", "root", "user"):  # one after the other: nothing twice
            argv, run_env = commands[who]
            again = subprocess.run(argv, env=run_env, capture_output=True, text=True,
                                   timeout=120)
            assert again.returncode == 0, (who, again.stderr)
        assert_each_once(sandbox, *files)
        datasets = [d["name"] for d in sandbox.objects("datasets")]
        assert len(datasets) == len(set(datasets)) == 1, datasets
        made = base / "run-lock" / "oort-sync"
        assert os.stat(made).st_mode & 0o7777 == 0o1777
        for lock in made.glob("*.lock"):
            assert lock.stat().st_mode & 0o777 == 0o666
    finally:
        shutil.rmtree(base, ignore_errors=True)


def test_default_lock_folder_is_the_same_for_every_user(monkeypatch, tmp_path):
    """Not in a home (that was the bug): two users' environments give one folder, and
    on Linux it is /run/lock's."""
    monkeypatch.delenv("OORT_SYNC_LOCK_DIR")
    seen = set()
    for user in ("root", "alice"):
        monkeypatch.setenv("HOME", str(tmp_path / user))
        monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / user / "state"))
        seen.add(folder_lock_dir())
    assert len(seen) == 1
    (where,) = seen
    assert not str(where).startswith(str(tmp_path))
    if os.path.isdir("/run/lock"):
        assert where == Path("/run/lock/oort-sync")


def test_windows_locks_go_to_programdata(monkeypatch):
    monkeypatch.delenv("OORT_SYNC_LOCK_DIR")
    monkeypatch.setattr(sys, "platform", "win32")
    monkeypatch.setenv("ProgramData", "/ProgramData")
    assert folder_lock_dir() == Path("/ProgramData/oort-sync/locks")
    assert host.shared_lock_dir("oort-sync", {}) == Path(r"C:\ProgramData/oort-sync/locks")


def test_lock_folder_and_files_are_open_to_all_whatever_the_umask(tmp_path, monkeypatch):
    monkeypatch.setenv("OORT_SYNC_LOCK_DIR", str(tmp_path / "locks"))
    old = os.umask(0o077)
    try:
        lock = FolderLock(str(tmp_path), "home-a").acquire()
    finally:
        os.umask(old)
    try:
        assert os.stat(tmp_path / "locks").st_mode & 0o7777 == 0o1777
        assert os.stat(lock.path).st_mode & 0o777 == 0o666
        with pytest.raises(LockHeld, match=f"pid {os.getpid()}") as info:
            FolderLock(str(tmp_path), "home-b").acquire()
        assert "home-a" in info.value.message
    finally:
        lock.release()
    FolderLock(str(tmp_path), "home-b").acquire().release()  # free again, never stale


def _planted(tmp_path: Path, monkeypatch) -> Path:
    """The path the lock of `tmp_path / data` will have, in a fresh lock folder."""
    monkeypatch.setenv("OORT_SYNC_LOCK_DIR", str(tmp_path / "locks"))
    (tmp_path / "data").mkdir()
    folderlock.prepare_dir(tmp_path / "locks")
    return FolderLock(str(tmp_path / "data"), "h").path


def test_a_symlink_in_place_of_a_lock_is_never_followed(tmp_path, monkeypatch, caplog):
    victim = tmp_path / "victim"
    victim.write_text("precious")
    _planted(tmp_path, monkeypatch).symlink_to(victim)
    with pytest.raises(OSError, match="symbolic link"):
        FolderLock(str(tmp_path / "data"), "h").acquire()
    paths = cfg.resolve_paths(str(tmp_path / "home"))
    with caplog.at_level(logging.WARNING, logger="oort_sync"):
        with folder_locks([cfg.Folder(str(tmp_path / "data"))], paths):
            pass
    assert "no folder lock for" in caplog.text and "symbolic link" in caplog.text
    assert victim.read_text() == "precious"
    assert victim.stat().st_mode & 0o777 != 0o666


def test_a_fifo_or_a_hard_link_in_place_of_a_lock_is_refused(tmp_path, monkeypatch):
    path = _planted(tmp_path, monkeypatch)
    os.mkfifo(path)  # an open without O_NONBLOCK would wait here forever
    with pytest.raises(OSError, match="not a regular file"):
        FolderLock(str(tmp_path / "data"), "h").acquire()
    path.unlink()
    other = tmp_path / "someone-else's"
    other.write_text("theirs")
    os.link(other, path)
    with pytest.raises(OSError, match="hard link"):
        FolderLock(str(tmp_path / "data"), "h").acquire()
    assert other.read_text() == "theirs"


def test_a_lock_folder_writable_by_all_without_sticky_bit_is_refused(tmp_path, monkeypatch):
    loose = tmp_path / "loose"
    loose.mkdir()
    os.chmod(loose, 0o777)
    monkeypatch.setenv("OORT_SYNC_LOCK_DIR", str(loose))
    with pytest.raises(OSError, match="sticky"):
        FolderLock(str(tmp_path), "h")
