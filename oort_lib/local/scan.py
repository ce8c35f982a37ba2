"""Walk a watched folder: which files are candidates for upload, and why the others are not.

This is the hot path of a run that has nothing to do (100,000 files must cost about what
``rsync --dry-run`` costs), so the per-file work is kept to one ``stat`` (the one
``DirEntry`` caches), a few string operations on the name and one small object.
"""

from __future__ import annotations

import errno
import os
import re
import stat
from collections import deque
from collections.abc import Iterator
from operator import attrgetter
from typing import NamedTuple

from oort_lib.errors import FileProblem
from oort_lib.local.exclude import EXCLUDED

__all__ = [
    "FITS_EXTENSIONS",
    "Entry",
    "Skipped",
    "display_name",
    "is_candidate",
    "is_transient",
    "key_name",
    "name_of_key",
    "walk",
]

_FITS_BASE = (
    ".fits", ".fit", ".fts", ".ft", ".mt", ".imfits", ".imfit", ".uvfits", ".uvfit",
    ".pha", ".rmf", ".arf", ".rsp", ".pi", ".fz",
)  # fmt: skip
FITS_EXTENSIONS: tuple[str, ...] = (
    *_FITS_BASE,
    *(ext + ".gz" for ext in _FITS_BASE),
    *(ext + ".bz2" for ext in _FITS_BASE),
    ".xisf",
)

NOT_CANDIDATE = "not FITS or XISF"
EMPTY = "empty file"
PERMISSION_DENIED = "permission denied"
SYMLINK_LOOP = "symlink loop"
SYMLINK_OUTSIDE = "symlink points outside the watched folder"
BROKEN_SYMLINK = "broken symlink"
VANISHED = "vanished during the walk"

_BY_NAME = attrgetter("name")

# Where the system allows it, a folder is opened once and listed and its files stat'ed
# through that descriptor (fstatat by name): the kernel resolves one name per file rather
# than the whole path again, ~20% off the stat calls that are most of a no-change tick.
_BY_FD = os.scandir in os.supports_fd and hasattr(os, "O_DIRECTORY")
_FOLDER_FLAGS = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | getattr(os, "O_CLOEXEC", 0)


# NamedTuples, not frozen dataclasses: one is built per file of the tree, and a frozen
# dataclass's __init__ costs ~1 us more per object (20 ms over 20,000 files).
class Entry(NamedTuple):
    """A candidate file: ``path`` to open, ``relpath`` ('/'-separated, valid UTF-8) to show."""

    path: str
    relpath: str
    size: int
    mtime_ns: int
    # The file's identity as the walk saw it: the upload opens it and compares, so that a
    # symlink or another file swapped in under the name is never what gets sent.
    dev: int = 0
    ino: int = 0


class Skipped(NamedTuple):
    """A file or folder that will not be uploaded, and why (one of the reasons above).

    ``mtime_ns`` is known when the file itself could be looked at (permission denied).
    """

    path: str
    relpath: str
    reason: str
    size: int = 0
    mtime_ns: int | None = None


def is_transient(reason: str) -> bool:
    """True for the reasons that may go away by themselves (permission denied, vanished,
    an I/O error): the planner retries those files like a remote transient failure."""
    return reason in (PERMISSION_DENIED, VANISHED) or reason.startswith("unreadable")


def is_candidate(name: str) -> bool:
    """True if ``name`` has a FITS or XISF extension (case-insensitive)."""
    return name.lower().endswith(FITS_EXTENSIONS)


def display_name(name: str) -> str:
    """``name`` as valid UTF-8 text: undecodable bytes become ``\\xNN`` escapes."""
    return name.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def key_name(name: str) -> str:
    """A name as the manifest keys it: valid UTF-8 text that maps back to one name only.

    Undecodable bytes become ``\\xNN`` and a literal backslash ``\\\\``, so the byte
    0xE9 and a name that really holds the four characters ``\\xe9`` never share a key.
    Names without a backslash or odd bytes (all of them on Windows) are unchanged.
    """
    if name.isascii() and "\\" not in name:
        return name
    return display_name(name.replace("\\", "\\\\"))


_ESCAPE = re.compile(r"\\(\\|x[0-9a-f]{2})")


def name_of_key(key: str) -> str:
    """The inverse of key_name: the name (odd bytes as surrogates, like os.listdir)."""
    if "\\" not in key:
        return key
    return _ESCAPE.sub(lambda m: "\\" if m[1] == "\\" else chr(0xDC00 + int(m[1][1:], 16)),
                       key)


def _reason(exc: OSError) -> str:
    if isinstance(exc, PermissionError):
        return PERMISSION_DENIED
    if isinstance(exc, (FileNotFoundError, NotADirectoryError)):
        return VANISHED
    if exc.errno == errno.ELOOP:
        return SYMLINK_LOOP
    return f"unreadable: {exc.strerror or exc}"


class _Access:
    """Decides from an existing stat whether this process may read a file.

    Checking the mode bits costs no system call; ``os.access`` (one call) is asked only
    when the bits say no, because ACLs can grant what the bits deny.
    """

    __slots__ = ("uid", "gids")

    def __init__(self) -> None:
        from oort_lib.host import effective_ids

        # None on Windows: no mode bits and an os.access that ignores ACLs, so nothing to
        # check before opening; a file the ACLs deny fails when read, and is reported then.
        self.uid, self.gids = effective_ids() or (None, set())

    def readable(self, path: str, st: os.stat_result) -> bool:
        if self.uid == 0:
            return True
        if st.st_uid == self.uid:
            allowed = st.st_mode & stat.S_IRUSR
        elif st.st_gid in self.gids:
            allowed = st.st_mode & stat.S_IRGRP
        else:
            allowed = st.st_mode & stat.S_IROTH
        if allowed:
            return True
        try:
            return os.access(path, os.R_OK, effective_ids=os.access in os.supports_effective_ids)
        except OSError:
            return False


def _root_problem(root: str) -> FileProblem:
    return FileProblem(f"{display_name(root)}: watched folder is missing (disk unmounted?)")


def walk(root: str, exclude=None) -> Iterator[Entry | Skipped]:
    """Yield every non-hidden file under ``root`` as an Entry or a Skipped, in name order.

    A folder that cannot be listed gives one Skipped (with the folder's relpath) and the
    walk goes on; callers must not take the files below it as deleted. Symlinked folders
    are walked after all real folders, and only if their target is inside ``root`` and was
    not walked already. Raises FileProblem if ``root`` is missing, is not a folder or
    cannot be listed at all (a caller must never read that as "every file was deleted").
    `exclude` (exclude.matcher) gives a Skipped "excluded by PATTERN" for a file or folder
    it matches; an excluded folder is not entered.
    """
    root = os.path.abspath(os.fspath(root))
    try:
        root_stat = os.stat(root)
    except OSError as exc:
        raise _root_problem(root) from exc
    if not stat.S_ISDIR(root_stat.st_mode):
        raise _root_problem(root)
    try:
        # Listing the root up front turns "cannot read it" into one clear error rather
        # than a walk that looks like an empty folder.
        os.scandir(root).close()
    except OSError as exc:
        from oort_lib.host import unreadable_folder_hint

        raise FileProblem(
            f"{display_name(root)}: watched folder cannot be read ({_reason(exc)})"
            + unreadable_folder_hint(exc)
        ) from exc

    real_root = os.path.realpath(root)
    inside_prefix = real_root if real_root.endswith(os.sep) else real_root + os.sep
    access = _Access()
    # Root reads everything: skip even the method call on the hot path.
    check_access = access.uid not in (0, None)
    visited: set[tuple[int, int]] = set()
    # (path, relpath prefix ending in '/', identity to claim) of folders still to walk.
    # Real folders go on `stack`; symlinked ones wait in `deferred` until every real
    # folder has claimed its identity, so a link never steals a real folder's files.
    stack: list[tuple[str, str, tuple[int, int]]] = [
        (root, "", (root_stat.st_dev, root_stat.st_ino))
    ]
    deferred: deque[tuple[str, str, tuple[int, int]]] = deque()

    while stack or deferred:
        folder, prefix, identity = stack.pop() if stack else deferred.popleft()
        if identity in visited:
            # Reached twice: through a symlink to a folder already walked (or a bind mount
            # of an ancestor); walking it again would upload the same files twice.
            yield Skipped(folder, prefix.rstrip("/"), SYMLINK_LOOP)
            continue
        visited.add(identity)
        fd = None
        try:
            if _BY_FD:
                fd = os.open(folder, _FOLDER_FLAGS)
            with os.scandir(folder if fd is None else fd) as listing:
                entries = sorted(listing, key=_BY_NAME)
        except OSError as exc:
            if fd is not None:
                os.close(fd)
            if folder == root:
                # Gone between the check above and now: unmounted, not emptied.
                raise _root_problem(root) from exc
            yield Skipped(folder, prefix.rstrip("/"), _reason(exc))
            continue
        try:
            yield from _files(folder, prefix, entries, stack, deferred, exclude,
                              inside_prefix, real_root, access if check_access else None)
        finally:
            if fd is not None:
                os.close(fd)


def _files(folder: str, prefix: str, entries: list[os.DirEntry[str]], stack: list,
           deferred: deque, exclude, inside_prefix: str, real_root: str,
           access: _Access | None) -> Iterator[Entry | Skipped]:
    """walk()'s work in one listed folder: its files and skips; its subfolders go onto
    `stack` (symlinked ones onto `deferred`). `access` is None when everything is readable.
    """
    base = folder if folder.endswith(os.sep) else folder + os.sep
    candidate_suffixes = FITS_EXTENSIONS
    fits_entry, new = Entry, tuple.__new__
    skipped = Skipped
    subfolders: list[tuple[str, str, tuple[int, int]]] = []
    for entry in entries:
        name = entry.name
        if name[0] == ".":
            continue
        relpath = prefix + (name if name.isascii() and "\\" not in name
                            else key_name(name))
        path = base + name
        if exclude is not None:
            pattern = exclude(relpath, entry.is_dir())
            if pattern is not None:
                yield skipped(path, relpath, EXCLUDED + pattern)
                continue
        try:
            if entry.is_file(follow_symlinks=False):  # most entries: asked first
                st = entry.stat(follow_symlinks=False)
            elif entry.is_symlink():
                item = _symlink(entry, path, relpath, inside_prefix, real_root)
                if type(item) is tuple:  # a folder to walk later (Skipped is a tuple too)
                    deferred.append(item)
                    continue
                if item is not None:
                    yield item
                    continue
                st = entry.stat()
            elif entry.is_dir(follow_symlinks=False):
                st = entry.stat(follow_symlinks=False)
                if not st.st_ino:  # Windows: DirEntry.stat() leaves st_ino/st_dev at 0
                    st = os.stat(path, follow_symlinks=False)
                subfolders.append((path, relpath + "/", (st.st_dev, st.st_ino)))
                continue
            else:
                st = entry.stat(follow_symlinks=False)
        except OSError as exc:
            yield skipped(path, relpath, _reason(exc))
            continue

        size = st.st_size
        if not name.lower().endswith(candidate_suffixes) or not stat.S_ISREG(st.st_mode):
            # FIFOs and devices are "not FITS" too: opening a FIFO would hang the run.
            yield skipped(path, relpath, NOT_CANDIDATE, size)
        elif size == 0:
            yield skipped(path, relpath, EMPTY)
        elif access is not None and not access.readable(path, st):
            yield skipped(path, relpath, PERMISSION_DENIED, size, st.st_mtime_ns)
        else:
            # tuple.__new__ itself: the NamedTuple's own __new__ is a Python call per file.
            yield new(fits_entry, (path, relpath, size, st.st_mtime_ns, st.st_dev, st.st_ino))
    # Reversed so that popping the stack walks subfolders in name order.
    stack.extend(reversed(subfolders))


def _symlink(
    entry: os.DirEntry[str], path: str, relpath: str, inside_prefix: str, real_root: str
) -> Skipped | tuple[str, str, tuple[int, int]] | None:
    """What to do with a symlink: a Skipped, a folder to walk later, or None for a file.

    Raises OSError from the stat of the target (the caller turns it into a reason).
    """
    try:
        st = entry.stat()
        if not st.st_ino:  # Windows: DirEntry.stat() leaves st_ino/st_dev at 0
            st = os.stat(path)
    except FileNotFoundError:
        return Skipped(path, relpath, BROKEN_SYMLINK)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return Skipped(path, relpath, SYMLINK_LOOP)
        raise
    target = os.path.realpath(path)
    if target != real_root and not target.startswith(inside_prefix):
        return Skipped(path, relpath, SYMLINK_OUTSIDE)
    if stat.S_ISDIR(st.st_mode):
        return path, relpath + "/", (st.st_dev, st.st_ino)
    return None
