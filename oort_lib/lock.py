"""The run lock: one `oort-sync run` at a time per state directory.

filelock takes an OS lock (flock) on the lock file. The kernel drops it when the holder
dies, however it dies, so a lock can never go stale; the holder's pid and start time
sit in a side file that is only believed while the lock is actually held.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

from .errors import LockHeld


@dataclass(frozen=True)
class Holder:
    pid: int | None
    since: float | None

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
        return Holder(int(data["pid"]), float(data["since"]))
    except (OSError, ValueError, KeyError, TypeError):
        return Holder(None, None)


class RunLock:
    """Context manager holding the run lock. Raises LockHeld at once if another run has it."""

    def __init__(self, lock_path: Path):
        from filelock import FileLock

        self.path = Path(lock_path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = FileLock(str(self.path), thread_local=False)

    def acquire(self) -> RunLock:
        from filelock import Timeout

        try:
            self._lock.acquire(timeout=0)
        except Timeout:
            holder = _read_holder(self.path)
            raise LockHeld(
                f"Another oort-sync run holds the lock ({holder.describe()}); "
                "this one exits and the next scheduled run will go on."
            ) from None
        info = _info_path(self.path)
        tmp = info.with_name(info.name + ".tmp")
        tmp.write_text(json.dumps({"pid": os.getpid(), "since": time.time()}))
        os.replace(tmp, info)
        return self

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
    """Who runs now, or None when no run holds the lock (probes without waiting)."""
    lock_path = Path(lock_path)
    if not lock_path.exists():
        return None
    probe = RunLock(lock_path)
    try:
        probe.acquire()
    except LockHeld:
        return _read_holder(lock_path)
    # We took it only to look: give it back without touching the holder file we wrote.
    probe.release()
    return None
