"""The folder locks: one run at a time per watched folder on the whole machine, whatever
the profile (`--home`) and whatever the user (root's systemd timer and a user's cron over
one shared folder).

The locks live where every user of the machine looks (host.shared_lock_dir: /run/lock on
Linux, the system's /tmp elsewhere, %ProgramData% on Windows), in a folder made like /tmp
(mode 1777: anyone creates a lock, only its owner removes it), one file per folder named
by a hash of its real path. A lock file is made writable by all (0666, whatever the umask)
so that another user's run can take it later, and it is never removed: removing a lock
file another run is about to take would let two runs hold "the" lock at once.

Opening a file in a folder every user writes to is opening what another user may have
put there: the open never follows a symbolic link, refuses anything but a plain file with
a single name (a FIFO would block, a hard link could point at someone's file), and never
creates over another user's file (Linux's fs.protected_regular refuses that even to root,
so an existing lock is opened without O_CREAT).

POSIX: a flock on the lock file, as for the run lock (never stale: the kernel drops it
with its holder); the holder's pid, start time and profile are written into the lock file
itself, since a side file of one user could not be replaced by another in a sticky
folder. Windows (no fcntl): filelock, with the holder beside it, as before.
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import stat
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

from oort_lib.errors import LockHeld
from oort_lib.state.lock import Holder, RunLock

LOCK_MODE = 0o666
log = logging.getLogger("oort_sync")


def folder_lock_dir() -> Path:
    """Where the folder locks live: $OORT_SYNC_LOCK_DIR, else one folder every user of
    the machine shares (host.shared_lock_dir). Raises nothing."""
    override = os.environ.get("OORT_SYNC_LOCK_DIR")
    if override:
        return Path(override)
    from oort_lib.host import shared_lock_dir

    return shared_lock_dir("oort-sync")


def prepare_dir(directory: Path, *, trusted: bool = False) -> None:
    """Make `directory` (mode 1777, like /tmp) if it is missing; check it otherwise.

    `trusted` (a folder the user named): a symbolic link to a folder is fine. Raises
    OSError, with a message naming the folder, when it cannot be made or must not be used:
    not a folder, a symbolic link (unless trusted), writable by all without the sticky bit
    (anyone could remove or replace the locks of others).
    """
    from oort_lib.host import WINDOWS, share_with_all_users, system

    directory = Path(directory)
    directory.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.mkdir(directory, 0o700)  # opened to all users below, once it is ours
    except FileExistsError:
        pass
    else:
        share_with_all_users(directory)
        return
    info = os.stat(directory) if trusted else os.lstat(directory)
    if stat.S_ISLNK(info.st_mode):
        raise OSError(errno.ELOOP, f"{directory} is a symbolic link, not the lock folder "
                                   "(remove it, or set OORT_SYNC_LOCK_DIR)")
    if not stat.S_ISDIR(info.st_mode):
        raise OSError(errno.ENOTDIR, f"{directory} is not a folder (remove it, or set "
                                     "OORT_SYNC_LOCK_DIR)")
    # Windows has ACLs, no sticky bit (and mode bits that always look writable by all).
    if (system() != WINDOWS and info.st_mode & stat.S_IWOTH
            and not info.st_mode & stat.S_ISVTX):
        raise OSError(errno.EPERM, f"{directory} is writable by all users without the "
                                   f"sticky bit: run `chmod 1777 {directory}`")
    for _ in range(50):
        if os.access(directory, os.W_OK | os.X_OK):
            return
        time.sleep(0.02)  # made a moment ago by another user's run, opened to all next
    raise OSError(errno.EACCES, f"{directory} is not writable by this user: run "
                                f"`chmod 1777 {directory}` as its owner")


class _SharedFlock:
    """A non-blocking flock on a lock file of the shared folder, opened safely (see the
    module's docstring); the holder is written into the file while the lock is held."""

    def __init__(self, path: Path):
        self.path = path
        self.fd: int | None = None
        self.writable = False

    def acquire(self) -> bool:
        """True if taken, False if another process holds it. Raises OSError when the
        file cannot be used (the message names it and what to do)."""
        import fcntl

        for _ in range(5):
            fd, self.writable = _open_lock_file(self.path)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as exc:
                os.close(fd)
                if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                    return False
                raise
            if _same_file(fd, self.path):
                self.fd = fd
                return True
            os.close(fd)  # removed or replaced while we opened it: lock what is there now
        raise OSError(errno.EAGAIN, f"{self.path} keeps being replaced")

    def write(self, data: dict) -> None:
        if self.fd is None or not self.writable:
            return  # a lock file another user left unwritable: the lock holds, unnamed
        text = json.dumps(data).encode("utf-8")
        os.ftruncate(self.fd, 0)
        os.lseek(self.fd, 0, os.SEEK_SET)
        os.write(self.fd, text)

    def release(self) -> None:
        if self.fd is None:
            return
        with contextlib.suppress(OSError):
            if self.writable:
                os.ftruncate(self.fd, 0)  # nobody holds it now
        os.close(self.fd)  # closing the descriptor drops the flock
        self.fd = None


_OPEN = (getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
         | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_CLOEXEC", 0))


def _open_lock_file(path: Path) -> tuple[int, bool]:
    """(descriptor, writable) of the lock file, made if missing. Raises OSError naming it."""
    while True:
        try:
            fd, writable = _open_existing(path)
        except FileNotFoundError:
            try:
                fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL | _OPEN, LOCK_MODE)
            except FileExistsError:
                continue  # another run made it a moment ago: open that one
            os.fchmod(fd, LOCK_MODE)  # the umask must not keep the other users out
            writable = True
        try:
            _check_plain(fd, path)
        except OSError:
            os.close(fd)
            raise
        return fd, writable


def _open_existing(path: Path) -> tuple[int, bool]:
    try:
        return os.open(path, os.O_RDWR | _OPEN), True
    except PermissionError:
        # Left 0644 by its owner: a read-only descriptor can still be flocked.
        return os.open(path, os.O_RDONLY | _OPEN), False
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise OSError(errno.ELOOP, f"{path} is a symbolic link, not a lock file: "
                                       "remove it") from None
        raise


def _check_plain(fd: int, path: Path) -> None:
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        raise OSError(errno.EINVAL, f"{path} is not a regular file: remove it")
    if info.st_nlink != 1:
        raise OSError(errno.EMLINK, f"{path} has other names (a hard link): remove it")


def _same_file(fd: int, path: Path) -> bool:
    try:
        now = os.lstat(path)
    except OSError:
        return False
    held = os.fstat(fd)
    return (now.st_dev, now.st_ino) == (held.st_dev, held.st_ino)


def _read_holder(path: Path) -> Holder:
    """The holder written in a lock file, or Holder(None, None). Raises nothing."""
    for attempt in range(10):
        try:
            fd = os.open(path, os.O_RDONLY | _OPEN)
        except OSError:
            return Holder(None, None)
        try:
            if stat.S_ISREG(os.fstat(fd).st_mode):
                raw = os.read(fd, 4096)
            else:
                raw = b""
        except OSError:
            raw = b""
        finally:
            os.close(fd)
        if raw or attempt == 9:
            break
        time.sleep(0.02)  # taken a moment ago: the holder is being written
    try:
        data = json.loads(raw)
        return Holder(int(data["pid"]), float(data["since"]), data.get("home"))
    except (ValueError, KeyError, TypeError):
        return Holder(None, None)


class FolderLock:
    """The machine-wide lock of one watched folder, keyed by its real path: two profiles
    or two users that watch one folder never upload it at the same time."""

    def __init__(self, folder: str, home: str):
        from oort_lib.host import has_flock, path_key

        self.folder = folder
        self.home = home
        directory = folder_lock_dir()
        prepare_dir(directory, trusted=bool(os.environ.get("OORT_SYNC_LOCK_DIR")))
        self.path = directory / f"{_digest(path_key(os.path.realpath(folder)))}.lock"
        self._portable = None if has_flock() else _PortableFolderLock(self)
        self._lock = _SharedFlock(self.path)

    def acquire(self) -> FolderLock:
        """Take the lock. Raises LockHeld naming the holder, OSError if it cannot be used."""
        if self._portable is not None:
            self._portable.acquire()
            return self
        if not self._lock.acquire():
            raise self._held(_read_holder(self.path))
        try:
            self._lock.write({"pid": os.getpid(), "since": time.time(), "home": self.home})
        except OSError:
            self._lock.release()  # a full disk: the caller says so; the lock is not kept
            raise
        return self

    def release(self) -> None:
        if self._portable is not None:
            self._portable.release()
        else:
            self._lock.release()

    def _held(self, holder: Holder) -> LockHeld:
        where = f"the profile in {holder.home}" if holder.home else "another profile"
        return LockHeld(
            f"{self.folder} is being uploaded by another oort-sync run ({where}, "
            f"{holder.describe()}); this one exits and the next scheduled run will go on."
        )


class _PortableFolderLock(RunLock):
    """Where there is no flock (Windows): filelock, the holder in a side file."""

    def __init__(self, owner: FolderLock):
        self.owner = owner
        self.home = owner.home
        super().__init__(owner.path)

    def _held(self, holder: Holder) -> LockHeld:
        return self.owner._held(holder)


def _digest(text: str) -> str:
    try:
        # hashlib's own BLAKE2b (hashlib.blake2b is this one), without importing hashlib,
        # which loads OpenSSL: ~5 ms of every run for one lock name.
        from _blake2 import blake2b
    except ImportError:  # a Python built without it: hashlib falls back to OpenSSL's
        from hashlib import blake2b

    return blake2b(text.encode("utf-8", "surrogateescape"), digest_size=16).hexdigest()


@contextlib.contextmanager
def folder_locks(folders: Iterable, paths) -> Iterator[None]:
    """Hold the folder lock of each folder (in a fixed order) for the block.

    Raises LockHeld naming the other run (and its profile) if one is held elsewhere.
    """
    held: list[FolderLock] = []
    home = str(paths.state_dir)
    try:
        for path in sorted({f.path for f in folders}):
            try:
                lock = FolderLock(path, home)
                held.append(lock.acquire())
            except OSError as exc:
                # No place for the lock: the run lock still holds, other profiles may not.
                why = exc.strerror or str(exc)
                if exc.filename:
                    why = f"{exc.filename}: {why}"
                log.warning("no folder lock for %s (%s): another profile or user could "
                            "upload it at the same time", path, why)
        yield
    finally:
        for lock in reversed(held):
            lock.release()
