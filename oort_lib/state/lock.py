"""The run lock: one `oort-sync run` at a time per state directory (the folder locks,
one run per watched folder on the whole machine, are in folderlock.py).

An OS lock (flock) on the lock file: the kernel drops it when the holder dies, however it
dies, so a lock can never go stale. The holder's pid and start time sit in a side file
that is only believed while the lock is actually held.

On POSIX the flock is taken directly with fcntl: importing filelock costs ~26 ms
(measured), a tenth of a no-change cron tick over 20,000 files. filelock, which takes the
same kind of lock, is used where fcntl does not exist (Windows).
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import NamedTuple

from oort_lib.errors import LockHeld


class Holder(NamedTuple):
    pid: int | None
    since: float | None
    home: str | None = None  # the holder's state folder (folder locks)

    def describe(self) -> str:
        since = (
            time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(self.since))
            if self.since
            else "an unknown time"
        )
        return f"pid {self.pid if self.pid else '?'} since {since}"


def _info_path(lock_path: Path) -> Path:
    return lock_path.with_name(lock_path.name + ".holder")


def _read_holder(lock_path: Path) -> Holder:
    try:
        data = json.loads(_info_path(lock_path).read_text())
        return Holder(int(data["pid"]), float(data["since"]), data.get("home"))
    except (OSError, ValueError, KeyError, TypeError):
        return Holder(None, None)


class _FlockLock:
    """A non-blocking exclusive flock, held as long as the file descriptor is open."""

    def __init__(self, path: str):
        self.path = path
        self.fd: int | None = None

    @property
    def is_locked(self) -> bool:
        return self.fd is not None

    def acquire(self) -> bool:
        import fcntl

        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            return False
        self.fd = fd
        return True

    def release(self) -> None:
        if self.fd is not None:
            os.close(self.fd)  # closing the descriptor drops the flock
            self.fd = None


class _PortableLock:
    def __init__(self, path: str):
        from filelock import FileLock

        self._lock = FileLock(path, thread_local=False)

    @property
    def is_locked(self) -> bool:
        return self._lock.is_locked

    def acquire(self) -> bool:
        from filelock import Timeout

        try:
            self._lock.acquire(timeout=0)
        except Timeout:
            return False
        return True

    def release(self) -> None:
        self._lock.release()


class RunLock:
    """Context manager holding the run lock. Raises LockHeld at once if another run has it."""

    home: str | None = None  # written beside the pid for the folder locks

    def __init__(self, lock_path: Path):
        self.path = Path(lock_path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        from oort_lib.host import has_flock

        kind = _FlockLock if has_flock() else _PortableLock
        self._lock = kind(str(self.path))

    def acquire(self) -> RunLock:
        if not self._lock.acquire():
            raise self._held(_read_holder(self.path)) from None
        info = _info_path(self.path)
        tmp = info.with_name(f"{info.name}.{os.getpid()}.tmp")
        data = {"pid": os.getpid(), "since": time.time()}
        if self.home:
            data["home"] = self.home
        try:
            tmp.write_text(json.dumps(data))
            os.replace(tmp, info)
        except OSError:
            self._lock.release()  # a full disk: the caller says so; the lock is not kept
            raise
        return self

    def _held(self, holder: Holder) -> LockHeld:
        return LockHeld(
            f"Another oort-sync run holds the lock ({holder.describe()}); "
            "this one exits and the next scheduled run will go on."
        )

    def release(self) -> None:
        if self._lock.is_locked:
            try:
                _info_path(self.path).unlink()
            except FileNotFoundError:
                pass
            self._lock.release()

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


def current_holder(lock_path: Path) -> Holder | None:
    """Who runs now, or None when no run holds the lock.

    On POSIX this never touches the lock: taking it, even for a moment, to look made a
    run starting at that moment exit 75. A run writes the holder file right after it
    locks and removes it before it unlocks; a killed run leaves it behind, so it is
    believed only while the lock is seen held (/proc/locks on Linux) or, where that
    cannot be seen, while its process is alive.
    """
    lock_path = Path(lock_path)
    if not lock_path.exists():
        return None
    from oort_lib.host import has_flock

    if has_flock():
        holder = _read_holder(lock_path)
        if holder.pid is None:
            return None
        held = _flock_seen(lock_path)
        if held is None:
            held = _alive(holder.pid)
        return holder if held else None
    probe = RunLock(lock_path)
    try:
        probe.acquire()
    except LockHeld:
        return _read_holder(lock_path)
    # We took it only to look: give it back without touching the holder file we wrote.
    probe.release()
    return None


def _flock_seen(lock_path: Path) -> bool | None:
    """Whether the kernel lists a flock on the lock file (Linux), None if it cannot tell."""
    try:
        inode = os.stat(lock_path).st_ino
        with open("/proc/locks", encoding="ascii", errors="replace") as locks:
            table = locks.read()
    except OSError:
        return None
    for line in table.splitlines():
        fields = line.split()
        if len(fields) > 5 and "FLOCK" in fields and fields[5].endswith(f":{inode}"):
            return True
    return False


def process_alive(pid: int) -> bool:
    """Whether process `pid` exists (True when it cannot be told: on Windows, where the
    POSIX probe would end the process)."""
    if os.name == "nt":
        return True
    return _alive(pid)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)  # POSIX only (on Windows this would end the process)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # exists, belongs to someone else
    return True


class LockState(NamedTuple):
    """The run lock as `doctor` looks at it (lock_state)."""

    holder: Holder | None  # the run holding it now, if one does
    holder_alive: bool  # that holder's process is alive (False: held, but it is gone)
    leftover: Holder | None  # the note of a run that ended without removing it


def lock_state(lock_path: Path) -> LockState:
    """Who holds the run lock, whether that process lives, and the note a killed run
    left behind (harmless: the next run replaces it). A held lock whose pid is gone is
    held by another process that inherited its file (a child the run started). Never
    takes the lock on POSIX (see current_holder); where it must take it to look
    (Windows), raises the OSError of a lock file it cannot write."""
    from oort_lib.host import has_flock

    holder = current_holder(lock_path)
    if holder is not None:
        # Without flock (Windows) nothing inherits the lock, and os.kill would end the pid.
        alive = holder.pid is None or not has_flock() or _alive(holder.pid)
        return LockState(holder, alive, None)
    note = _read_holder(Path(lock_path))
    return LockState(None, False, note if note.pid is not None else None)
