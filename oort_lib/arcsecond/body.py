"""The body of an upload: multipart/form-data streamed from disk, hashed as it goes.

Constant memory whatever the file size, a known Content-Length, and the content hash
computed from the very bytes sent, so a new file is read once in all (see digest.py).

Exactly the bytes planned, of the file planned: the file opened must be the one the
walk saw (same device and inode: not a symlink or a copy swapped in since), of the size
and time planned; a read that ends early, a file that grew, a size or time that moved by
the last data block, or a FITS HDU whose bytes contradict its DATASUM/CHECKSUM raise
from read(), before the final multipart boundary leaves.
The transport then closes the connection with the body incomplete, and a server stores
nothing of a body cut before its final boundary (the sandbox refuses it: multipart.py).
"""

from __future__ import annotations

import logging
import os
import stat
import threading
import time
import uuid as uuidlib
from collections.abc import Callable
from typing import NamedTuple
from urllib.parse import quote

from oort_lib.errors import Aborted, ChecksumMismatch, FileChanged, NotPlanned, local_problem
from oort_lib.local.digest import new_hash
from oort_lib.local.fitssum import StreamCheck

log = logging.getLogger("oort_sync")

_CHUNK = 1 << 20
# The multipart parameter encoding of the official client (arcsecond 4.5 sends through
# httpx, whose rule is that of urllib3 1.x and the HTML5 form encoding): `"` as %22, a
# backslash doubled, every C0 control character but ESC as %XX; all else raw UTF-8. A CR
# or LF sent raw would end the part header inside the name and corrupt the stored file.
# (urllib3 2.x encodes only CR, LF and `"` and leaves a backslash raw; the sandbox reads
# both. A server that does not decode keeps the encoded name: see FileBody.names.)
_PARAM_ESCAPES = {0x22: "%22", 0x5C: "\\\\",
                  **{code: f"%{code:02X}" for code in range(0x20) if code != 0x1B}}
_OPEN_FLAGS = getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0)
CHANGED_BEFORE = "changed since it was read; it is uploaded on a later run"
CHANGED_DURING = "changed during its upload; it is uploaded again later"
NOT_THE_FILE = ("another file than the one planned is at its path now (a symlink or a copy "
                "swapped in?); it is looked at again next run")


class Planned(NamedTuple):
    """What the plan saw of a file: the upload sends exactly that or nothing."""

    size: int
    mtime_ns: int
    dev: int = 0  # st_dev and st_ino of the walk; 0: unknown (not compared)
    ino: int = 0

    @classmethod
    def of(cls, item) -> Planned:
        """The plan of a run.item.Item."""
        return cls(item.size, item.mtime_ns, item.dev, item.ino)


def param(value: str) -> str:
    """A multipart header parameter's value, encoded as the official client does."""
    return value.translate(_PARAM_ESCAPES)


class FileBody:
    """A multipart/form-data body streamed from disk: constant memory, known length.

    `fields` are small text parts sent before the file, in the order given (the 2026
    generation reads `dataset`, `is_raw` and `tags` there). `filename_star` adds the RFC
    5987 `filename*` beside the encoded UTF-8 name for non-ASCII names (2021 servers);
    the 2026 official client sends the encoded name only, and so do we there.
    `planned`: the size, time and identity the plan saw (None: what the open finds).

    Raises NotPlanned when the path holds another file than the one planned, FileChanged
    when its size or time moved since the plan, LocalTransient when it cannot be opened.
    read() raises the same FileChanged when the file moves while it streams,
    ChecksumMismatch when a FITS HDU's bytes contradict its DATASUM/CHECKSUM, Aborted on
    the abort event, LocalTransient on an I/O error.
    """

    def __init__(
        self,
        path: str,
        filename: str,
        *,
        planned: Planned | None = None,
        fields: list[tuple[str, str]] | None = None,
        filename_star: bool = True,
        progress: Callable[[int], None] | None = None,
        abort: threading.Event | None = None,
    ):
        self.boundary = uuidlib.uuid4().hex
        self.filename = filename
        disposition = f'form-data; name="file"; filename="{param(filename)}"'
        if filename_star and not filename.isascii():
            disposition += f"; filename*=UTF-8''{quote(filename, safe='')}"
        parts = "".join(
            f'--{self.boundary}\r\nContent-Disposition: form-data; name="{param(name)}"'
            f"\r\n\r\n{value}\r\n"
            for name, value in fields or ()
        )
        self._head = (
            f"{parts}--{self.boundary}\r\nContent-Disposition: {disposition}\r\n"
            "Content-Type: application/octet-stream\r\n\r\n"
        ).encode("utf-8", "surrogateescape")
        self._tail = f"\r\n--{self.boundary}--\r\n".encode()
        self._file = _open(path)
        try:
            self.planned = _check_open(self._file, path, planned)
        except BaseException:
            self._file.close()
            raise
        self._left = self.planned.size
        self._hash = new_hash()
        # FITS checksums verified on the bytes as they leave: a mismatch raises before
        # the last data block, so the body never completes. Idle once it knows the file
        # has none to verify (not FITS, no checksum cards: the rest is only skipped).
        self._check = StreamCheck(filename)
        # Always the planned length: the server reads that many bytes, never more.
        self.len = len(self._head) + self.planned.size + len(self._tail)
        self._stage = 0
        self._progress = progress
        self._abort = abort
        self.moved = time.monotonic()  # the last time the transport took a block

    @property
    def content_type(self) -> str:
        return f"multipart/form-data; boundary={self.boundary}"

    @property
    def names(self) -> tuple[str, ...]:
        """The names a server may give this file back: as it is, and as it went on the
        wire (a server that does not decode the parameter keeps it so)."""
        sent = param(self.filename)
        return (self.filename,) if sent == self.filename else (self.filename, sent)

    def read(self, size: int = -1) -> bytes:
        # Larger reads than the transport asks for: fewer Python calls per megabyte.
        if self._abort is not None and self._abort.is_set():
            raise Aborted()
        self.moved = time.monotonic()
        if self._stage == 0:
            self._stage = 1
            return self._head
        if self._stage == 1:
            if self._left == 0:  # (an empty file: nothing to read, only to check)
                self._last_check()
                return self._finish()
            data = self._read(min(max(size, _CHUNK), self._left))
            self._left -= len(data)
            self._hash.update(data)
            if self._check.active:
                self._feed(data)
            if self._progress:
                self._progress(len(data))  # may wait (bandwidth limit): checked after
            if self._left == 0:
                self._last_check()
            return data
        if self._stage == 2:
            return self._finish()
        return b""

    def _feed(self, data: bytes) -> None:
        """Verify the checksums over the next file bytes (raises ChecksumMismatch)."""
        try:
            self._check.feed(data)
        except ChecksumMismatch:
            raise
        except Exception:  # noqa: BLE001 - a bug of the checker is not the file's damage
            # The bytes sent are still exactly the file's; only their check is lost.
            log.exception("checksum verification of %s stopped", self.filename)
            self._check.active = False

    def _read(self, size: int) -> bytes:
        try:
            data = self._file.read(size)
        except OSError as exc:
            # An I/O error of the disk (EIO): not the connection's fault. Raised
            # through the transport untouched, like Aborted.
            raise local_problem(exc, "upload") from None
        if not data:
            sent = self.planned.size - self._left
            raise FileChanged(f"ended after {sent:,} of its {self.planned.size:,} bytes "
                              "during its upload", CHANGED_DURING)
        return data

    def _last_check(self) -> None:
        """Before the last data block leaves: the file has not grown, and its size and
        time are still those planned (raises FileChanged)."""
        try:
            more = self._file.read(1)
            now = os.fstat(self._file.fileno())
        except OSError as exc:
            raise local_problem(exc, "upload") from None
        if more or (now.st_size, now.st_mtime_ns) != self.planned[:2]:
            raise FileChanged(f"changed during its upload ({now.st_size:,} bytes now, "
                              f"{self.planned.size:,} planned)", CHANGED_DURING)
        self._stage = 2
        self._check.finish()

    def _finish(self) -> bytes:
        self._stage = 3
        self._file.close()
        return self._tail

    def close(self) -> None:
        self._file.close()

    @property
    def complete(self) -> bool:
        return self._stage == 3

    @property
    def verified(self) -> int:
        """FITS HDUs whose DATASUM/CHECKSUM matched the bytes sent."""
        return self._check.verified

    def hexdigest(self) -> str:
        """Hash of the file bytes sent (the whole file once `complete`)."""
        return self._hash.hexdigest()


def _opener(path: str, flags: int) -> int:
    # Non-blocking: a FIFO swapped in under the name must not hang the open (it is then
    # refused by its type); no effect on the reads of a regular file.
    return os.open(path, flags | _OPEN_FLAGS)


def _open(path: str):
    """The file at `path`, opened for reading (raises LocalTransient)."""
    try:
        # Symlinks are followed: the walk follows those that point inside the watched
        # folder. What was opened is then compared with what the walk saw (_check_open).
        return open(path, "rb", opener=_opener)  # noqa: SIM115 - closed by the body
    except OSError as exc:
        # Vanished, moved, permission changed since the walk: the file's problem, not
        # the server's (LocalTransient: retried later, never a permanent failure).
        raise local_problem(exc, "upload") from None


def _check_open(handle, path: str, planned: Planned | None) -> Planned:
    """The plan of the file opened at `path`: `planned` when it is that file, unchanged
    (raises NotPlanned, FileChanged, LocalTransient)."""
    try:
        st = os.fstat(handle.fileno())
    except OSError as exc:
        raise local_problem(exc, "upload") from None
    if not stat.S_ISREG(st.st_mode):
        raise NotPlanned(f"{NOT_THE_FILE} (not a regular file now)", NOT_THE_FILE)
    if planned is None:
        return Planned(st.st_size, st.st_mtime_ns, st.st_dev, st.st_ino)
    if (planned.ino and st.st_ino and (st.st_dev, st.st_ino) != (planned.dev, planned.ino)
            and _identity(path) != (planned.dev, planned.ino)):
        # (Checked on the path too: some filesystems, overlayfs before Linux 4.19 among
        # them, give an open file another identity than its path's stat, which the walk
        # saw. A file swapped in gives another identity to both.)
        raise NotPlanned(f"{NOT_THE_FILE} (device and inode {st.st_dev}:{st.st_ino}, "
                         f"planned {planned.dev}:{planned.ino})", NOT_THE_FILE)
    if (st.st_size, st.st_mtime_ns) != planned[:2]:
        raise FileChanged(f"{CHANGED_BEFORE} ({st.st_size:,} bytes now, {planned.size:,} "
                          "planned)", CHANGED_BEFORE)
    return planned


def _identity(path: str) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino
