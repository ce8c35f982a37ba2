"""A streaming ``multipart/form-data`` reader for uploads of any size.

The file part is written to a temporary file chunk by chunk (hashing as it goes), so a
4 GB upload costs the server a few megabytes of memory. Written here rather than taken
from werkzeug's form parser so that the filename is decoded exactly as senders encode it:
``requests``/urllib3 2.x and browsers percent-encode ``"``, CR and LF (the HTML5 rule);
httpx (the official client's transport, and oort-sync) and urllib3 1.x also every other
C0 control character but ESC, and double a backslash; other characters, unicode
included, go as raw UTF-8. RFC 5987 ``filename*`` is honoured when present.

A body cut before its final boundary is refused and nothing is stored: the client went
away (ConnectionError from the request body) or the body ended early (MultipartError),
and the part already spooled to a temporary file is removed. That is how a client
aborts an upload whose file changed while it streamed (arcsecond/body.py).
"""

from __future__ import annotations

import hashlib
import os
import queue
import re
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol
from urllib.parse import unquote

CHUNK = 1 << 20
MAX_PART_HEADERS = 64 * 1024
MAX_TEXT_PART = 64 * 1024  # a text field (dataset, is_raw, tags) is a few bytes
MAX_TEXT_TOTAL = 1 << 20


class MultipartError(ValueError):
    """The body is not well-formed multipart/form-data."""


class Readable(Protocol):
    def read(self, size: int = -1) -> bytes: ...


@dataclass
class Received:
    """The file part of an upload, stored in ``path`` (a temporary file)."""

    filename: str
    path: Path
    size: int
    sha256: str


@dataclass
class Form:
    """A received multipart body: its file part (if any) and its text fields.

    ``fields`` maps each text field name to its values in the order sent (a field may be
    repeated, as ``tags`` is when a client sends one part per tag).
    """

    file: Received | None
    fields: dict[str, list[str]]


def boundary_of(content_type: str | None) -> bytes | None:
    if not content_type:
        return None
    kind, params = _parse_header_value(content_type)
    if kind.lower() != "multipart/form-data":
        return None
    boundary = params.get("boundary", "")
    if not boundary or len(boundary) > 200:
        return None
    try:
        return boundary.encode("ascii")
    except UnicodeEncodeError:
        return None


def receive_form(stream: Readable, boundary: bytes, tmp_dir: Path, field: str = "file"
                 ) -> Form:
    """Read the whole body: the first file part named ``field``, and every text field.

    Text fields (parts without a filename) may come before or after the file part; they
    are decoded as UTF-8. Other file parts are read and discarded. Raises
    MultipartError for a malformed body (one cut before its final boundary included) or
    an oversized text field, and what ``stream`` raises (a client gone); on any error
    the temporary file is removed before the exception propagates: a body cut before
    its final boundary is refused and nothing is stored.
    """
    reader = _Reader(stream)
    dash = b"--" + boundary
    reader.skip_past(dash, "no multipart boundary found")
    received: Received | None = None
    fields: dict[str, list[str]] = {}
    text_total = 0
    try:
        while True:
            if reader.peek(2) == b"--":
                break
            reader.skip_line_end()
            headers = reader.part_headers()
            name, filename = _disposition(headers.get("content-disposition", ""))
            if received is None and name == field and filename is not None:
                received = _store_part(reader, b"\r\n" + dash, filename, tmp_dir)
            elif name is not None and filename is None:
                value = _text_part(reader, b"\r\n" + dash)
                text_total += len(value)
                if text_total > MAX_TEXT_TOTAL:
                    raise MultipartError("too much text in the multipart fields")
                fields.setdefault(name, []).append(value)
            else:
                reader.copy_until(b"\r\n" + dash, None)
        reader.drain()
    except BaseException:
        if received is not None:
            _unlink(received.path)
        raise
    return Form(file=received, fields=fields)


def _text_part(reader: _Reader, delimiter: bytes) -> str:
    data = bytearray()

    def keep(chunk: memoryview) -> None:
        # Checked as it arrives, so a huge "text" part cannot fill the memory.
        if len(data) + len(chunk) > MAX_TEXT_PART:
            raise MultipartError("a multipart text field is too long")
        data.extend(chunk)

    reader.copy_until(delimiter, keep)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise MultipartError("a multipart text field is not valid UTF-8") from None


def _store_part(reader: _Reader, delimiter: bytes, filename: str, tmp_dir: Path) -> Received:
    fd, name = tempfile.mkstemp(prefix="upload-", dir=tmp_dir)
    path = Path(name)
    try:
        with _Spool(fd) as spool:
            size = reader.copy_until(delimiter, spool.put)
            digest = spool.finish()
    except BaseException:
        _unlink(path)
        raise
    return Received(filename=filename, path=path, size=size, sha256=digest)


class _Spool:
    """Hashes and writes the received bytes, on a helper thread once the file is big.

    Hashing and disk writes release the GIL, so on a helper thread they overlap with
    receiving and boundary searching instead of adding to them; the queue bounds the
    memory held. Small files are written inline: starting a thread would cost more.
    """

    INLINE = 4 << 20

    def __init__(self, fd: int):
        self._out = os.fdopen(fd, "wb", buffering=0)
        self._digest = hashlib.sha256()
        self._inline_left = self.INLINE
        self._queue: queue.Queue = queue.Queue(maxsize=8)
        self._error: BaseException | None = None
        self._thread: threading.Thread | None = None

    def __enter__(self) -> _Spool:
        return self

    def __exit__(self, *exc) -> None:
        self._stop()
        self._out.close()

    def put(self, data: memoryview) -> None:
        if self._error is not None:
            raise self._error
        if self._thread is None and len(data) <= self._inline_left:
            self._inline_left -= len(data)
            self._consume(data)
            return
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="sandbox-spool",
                                            daemon=True)
            self._thread.start()
        self._queue.put(data)

    def finish(self) -> str:
        self._stop()
        if self._error is not None:
            raise self._error
        return self._digest.hexdigest()

    def _stop(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            self._queue.put(None)
            self._thread.join()

    def _consume(self, data: memoryview) -> None:
        self._digest.update(data)
        view = memoryview(data)
        while view:  # an unbuffered write may be partial
            view = view[self._out.write(view):]

    def _run(self) -> None:
        while True:
            data = self._queue.get()
            if data is None:
                return
            if self._error is not None:
                continue
            try:
                self._consume(data)
            except BaseException as exc:  # handed to the receiving thread
                self._error = exc


def _unlink(path: Path) -> None:
    try:
        path.unlink()
    except OSError:
        pass


class _Reader:
    def __init__(self, stream: Readable):
        self._stream = stream
        self._buf = bytearray()

    def _fill(self) -> bool:
        data = self._stream.read(CHUNK)
        if not data:
            return False
        self._buf += data
        return True

    def peek(self, size: int) -> bytes:
        while len(self._buf) < size and self._fill():
            pass
        return bytes(self._buf[:size])

    def skip_past(self, marker: bytes, error: str) -> None:
        while True:
            i = self._buf.find(marker)
            if i >= 0:
                del self._buf[: i + len(marker)]
                return
            del self._buf[: max(0, len(self._buf) - len(marker) + 1)]
            if not self._fill():
                raise MultipartError(error)

    def skip_line_end(self) -> None:
        # RFC 2046 allows linear white space between a boundary and its CRLF.
        while True:
            i = self._buf.find(b"\r\n")
            if i >= 0:
                if self._buf[:i].strip(b" \t"):
                    raise MultipartError("garbage after a multipart boundary")
                del self._buf[: i + 2]
                return
            if len(self._buf) > 1024 or not self._fill():
                raise MultipartError("truncated multipart body")

    def part_headers(self) -> dict[str, str]:
        if self.peek(2) == b"\r\n":
            del self._buf[:2]
            return {}
        while True:
            i = self._buf.find(b"\r\n\r\n")
            if i >= 0:
                raw = bytes(self._buf[:i])
                del self._buf[: i + 4]
                break
            if len(self._buf) > MAX_PART_HEADERS:
                raise MultipartError("multipart part headers are too long")
            if not self._fill():
                raise MultipartError("truncated multipart body")
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise MultipartError("multipart part headers are not valid UTF-8") from None
        headers: dict[str, str] = {}
        for line in text.split("\r\n"):
            name, sep, value = line.partition(":")
            if not sep:
                raise MultipartError("malformed multipart part header")
            headers[name.strip().lower()] = value.strip()
        return headers

    def copy_until(self, delimiter: bytes, sink) -> int:
        """Pass the bytes before ``delimiter`` to ``sink`` (None drops them).

        Works on whole received chunks and hands out memoryviews of them, so each byte
        is copied once on its way from the socket to the sink.
        """
        keep = len(delimiter) - 1
        total = 0
        pending = bytes(self._buf)
        self._buf.clear()
        while True:
            i = pending.find(delimiter)
            if i >= 0:
                total += i
                if sink is not None and i:
                    sink(memoryview(pending)[:i])
                self._buf += memoryview(pending)[i + len(delimiter):]
                return total
            # Everything except a possible delimiter prefix at the end is content.
            ready = len(pending) - keep
            if ready > 0:
                total += ready
                if sink is not None:
                    sink(memoryview(pending)[:ready])
                pending = pending[ready:]
            data = self._stream.read(CHUNK)
            if not data:
                raise MultipartError("truncated multipart body")
            pending += data

    def drain(self) -> None:
        self._buf.clear()
        while self._stream.read(CHUNK):
            pass


_HTML5_ESCAPES = re.compile(r"%(22|[01][0-9A-Fa-f])")
_ESC = 0x1B  # never encoded by senders: a literal "%1B" in a name stays as it is


def _unescape(match: re.Match) -> str:
    code = int(match.group(1), 16)
    return match.group(0) if code == _ESC else chr(code)


def _disposition(value: str) -> tuple[str | None, str | None]:
    """(field name, filename) of a Content-Disposition: form-data header."""
    kind, params = _parse_header_value(value)
    if kind.lower() != "form-data":
        return None, None
    filename = None
    if "filename*" in params:
        charset, _, rest = params["filename*"].partition("'")
        _, _, encoded = rest.partition("'")
        try:
            filename = unquote(encoded, encoding=charset or "utf-8", errors="strict")
        except (LookupError, UnicodeDecodeError):
            raise MultipartError("undecodable filename* in multipart part") from None
    elif "filename" in params:
        filename = _HTML5_ESCAPES.sub(_unescape, params["filename"])
    return params.get("name"), filename


def _parse_header_value(value: str) -> tuple[str, dict[str, str]]:
    """Split ``type; a=b; c="d"`` into its main value and lower-cased parameters.

    In quoted strings only ``\\"`` and ``\\\\`` are escapes: HTML5 senders do not escape
    backslashes, so any other backslash is kept as it is (and such names are refused
    later), rather than silently eaten.
    """
    main, _, rest = value.partition(";")
    params: dict[str, str] = {}
    i, n = 0, len(rest)
    while i < n:
        while i < n and rest[i] in " \t;":
            i += 1
        start = i
        while i < n and rest[i] not in "=;":
            i += 1
        key = rest[start:i].strip().lower()
        if i >= n or rest[i] == ";":
            if key:
                params[key] = ""
            continue
        i += 1
        while i < n and rest[i] in " \t":
            i += 1
        if i < n and rest[i] == '"':
            i += 1
            out = []
            while i < n and rest[i] != '"':
                if rest[i] == "\\" and i + 1 < n and rest[i + 1] in '"\\':
                    i += 1
                out.append(rest[i])
                i += 1
            i += 1
            val = "".join(out)
        else:
            start = i
            while i < n and rest[i] != ";":
                i += 1
            val = rest[start:i].strip()
        if key:
            params[key] = val
    return main.strip(), params
