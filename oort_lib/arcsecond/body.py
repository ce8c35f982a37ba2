"""The body of an upload: multipart/form-data streamed from disk, hashed as it goes.

Constant memory whatever the file size, a known Content-Length, and the content hash
computed from the very bytes sent, so a new file is read once in all (see digest.py).
"""

from __future__ import annotations

import os
import threading
import time
import uuid as uuidlib
from collections.abc import Callable
from urllib.parse import quote

from oort_lib.errors import Aborted, local_problem
from oort_lib.local.digest import new_hash

_CHUNK = 1 << 20


class FileBody:
    """A multipart/form-data body streamed from disk: constant memory, known length.

    `fields` are small text parts sent before the file, in the order given (the 2026
    generation reads `dataset`, `is_raw` and `tags` there). `filename_star` adds the RFC
    5987 `filename*` beside the raw UTF-8 name for non-ASCII names (2021 servers); the
    2026 official client sends the raw name only, and so do we there.
    """

    def __init__(
        self,
        path: str,
        filename: str,
        *,
        fields: list[tuple[str, str]] | None = None,
        filename_star: bool = True,
        progress: Callable[[int], None] | None = None,
        abort: threading.Event | None = None,
    ):
        self.boundary = uuidlib.uuid4().hex
        quoted = filename.replace("\\", "\\\\").replace('"', '\\"')
        disposition = f'form-data; name="file"; filename="{quoted}"'
        if filename_star and not filename.isascii():
            disposition += f"; filename*=UTF-8''{quote(filename, safe='')}"
        parts = "".join(
            f'--{self.boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'
            f"{value}\r\n"
            for name, value in fields or ()
        )
        self._head = (
            f"{parts}--{self.boundary}\r\nContent-Disposition: {disposition}\r\n"
            "Content-Type: application/octet-stream\r\n\r\n"
        ).encode("utf-8", "surrogateescape")
        self._tail = f"\r\n--{self.boundary}--\r\n".encode()
        try:
            self._file = open(path, "rb")  # noqa: SIM115 - closed in close()/read()
        except OSError as exc:
            # Vanished, moved, permission changed since the walk: the file's problem, not
            # the server's (LocalTransient: retried later, never a permanent failure).
            raise local_problem(exc, "upload") from None
        try:
            self.file_size = os.fstat(self._file.fileno()).st_size
        except OSError as exc:
            self._file.close()
            raise local_problem(exc, "upload") from None
        self._hash = new_hash()
        self.len = len(self._head) + self.file_size + len(self._tail)
        self._stage = 0
        self._progress = progress
        self._abort = abort
        self.moved = time.monotonic()  # the last time the transport took a block

    @property
    def content_type(self) -> str:
        return f"multipart/form-data; boundary={self.boundary}"

    def read(self, size: int = -1) -> bytes:
        # Larger reads than the transport asks for: fewer Python calls per megabyte.
        if self._abort is not None and self._abort.is_set():
            raise Aborted()
        self.moved = time.monotonic()
        if self._stage == 0:
            self._stage = 1
            return self._head
        if self._stage == 1:
            try:
                data = self._file.read(max(size, _CHUNK))
            except OSError as exc:
                # An I/O error of the disk (EIO): not the connection's fault. Raised
                # through the transport untouched, like Aborted.
                raise local_problem(exc, "upload") from None
            if data:
                self._hash.update(data)
                if self._progress:
                    self._progress(len(data))
                return data
            self._stage = 2
            self._file.close()
            return self._tail
        return b""

    def close(self) -> None:
        self._file.close()

    @property
    def complete(self) -> bool:
        return self._stage == 2

    def hexdigest(self) -> str:
        """Hash of the file bytes sent (the whole file once `complete`)."""
        return self._hash.hexdigest()
