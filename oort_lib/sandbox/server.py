"""The HTTP/1.1 request handler of the sandbox's threaded server (keep-alive included).

werkzeug's development server closes the connection after every answer (its handler
always sends ``Connection: close``). Clients reuse connections, and benchmarks of many
small uploads measure exactly that, so the request handler here keeps HTTP/1.1
connections alive: it bounds each request body by its Content-Length (or chunked
framing), reads whatever the application left unread before answering, and frames every
answer with a Content-Length or chunked encoding.
"""

from __future__ import annotations

import logging
import socket
import struct
import threading
import time
from email.utils import formatdate

from werkzeug.serving import WSGIRequestHandler, make_server

from oort_lib.sandbox.faults import DropConnection

log = logging.getLogger("oort_lib.sandbox")

_DRAIN_CHUNK = 1 << 20


class ClientGone(ConnectionError):
    """The client closed the connection before sending the whole request body."""


class RequestBody:
    """The request body, never read past its end, so the next request stays intact."""

    def __init__(self, raw, length: int | None):
        self._raw = raw
        self._left = length  # None: read until the (dechunked) stream ends

    def read(self, size: int = -1) -> bytes:
        if self._left == 0:
            return b""
        if self._left is not None and (size is None or size < 0 or size > self._left):
            size = self._left
        data = self._raw.read(size if size is not None else -1)
        if self._left is not None:
            if not data:
                raise ClientGone("connection closed in the middle of the request body")
            self._left -= len(data)
        elif not data:
            self._left = 0
        return data

    def drain(self) -> None:
        while self.read(_DRAIN_CHUNK):
            pass


class _Handler(WSGIRequestHandler):
    protocol_version = "HTTP/1.1"
    # Idle keep-alive connections are closed after this long so their threads end.
    timeout = 120

    def setup(self) -> None:
        super().setup()
        if self.connection.family in (socket.AF_INET, socket.AF_INET6):
            # One write per small answer plus no Nagle delay: no 40 ms stalls on keep-alive.
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.server.tracker.opened(self)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.tracker.closed(self)

    def log(self, type: str, message: str, *args) -> None:
        log.debug("%s %s", type, message % args if args else message)

    def log_request(self, code="-", size="-") -> None:
        pass

    def run_wsgi(self) -> None:
        if self.headers.get("Expect", "").lower().strip(" \t") == "100-continue":
            self.wfile.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        environ = self.make_environ()
        length = environ.get("CONTENT_LENGTH", "")
        if environ.get("wsgi.input_terminated"):
            body = RequestBody(environ["wsgi.input"], None)
        else:
            body = RequestBody(self.rfile, int(length) if length.isdigit() else 0)
        environ["wsgi.input"] = body
        environ["wsgi.input_terminated"] = True
        self.environ = environ
        self._sent = False
        try:
            self._run(environ, body)
        except DropConnection:
            self._reset()
        except (ConnectionError, TimeoutError):
            self.close_connection = True
        except Exception:
            log.exception("sandbox: error while answering %s %s", self.command, self.path)
            self.close_connection = True
            if not self._sent:
                self._send_error()

    def _run(self, environ: dict, body: RequestBody) -> None:
        started: list = []

        def start_response(status, headers, exc_info=None):
            started[:] = [status, headers]
            return self._legacy_write

        result = self.server.app(environ, start_response)
        try:
            body.drain()
            chunks = iter(result)
            first = next(chunks, b"")
            status, headers = started
            head, chunked = self._head(status, headers)
            self._write(head, first, chunked)
            for chunk in chunks:
                self._write(b"", chunk, chunked)
            if chunked:
                self.wfile.write(b"0\r\n\r\n")
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                close()

    def _legacy_write(self, data: bytes) -> None:
        raise NotImplementedError("the sandbox app never uses the WSGI write() callable")

    def _head(self, status: str, headers: list[tuple[str, str]]) -> tuple[bytes, bool]:
        code = int(status.split(None, 1)[0])
        names = {name.lower() for name, _ in headers}
        # The clock a server with a wrong one would show (Faults.clock_skew).
        skew = float(getattr(getattr(self.server.app, "faults", None), "clock_skew", 0.0))
        lines = [f"HTTP/1.1 {status}", "Server: oort-sync-sandbox",
                 f"Date: {formatdate(time.time() + skew, usegmt=True)}"]
        lines += [f"{name}: {value}" for name, value in headers]
        for name, value in headers:
            if name.lower() == "connection" and value.lower() == "close":
                self.close_connection = True
        chunked = (
            "content-length" not in names
            and self.command != "HEAD"
            and code >= 200
            and code not in (204, 304)
        )
        if chunked:
            lines.append("Transfer-Encoding: chunked")
        if self.close_connection and "connection" not in names:
            lines.append("Connection: close")
        elif self.request_version == "HTTP/1.0":
            lines.append("Connection: keep-alive")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"), chunked

    def _write(self, head: bytes, data: bytes, chunked: bool) -> None:
        if self.command == "HEAD":
            data = b""
        if chunked and data:
            data = b"%x\r\n%s\r\n" % (len(data), data)
        if head or data:
            self.wfile.write(head + data if head else data)
            self._sent = True

    def _send_error(self) -> None:
        body = b'{"detail": "A server error occurred."}'
        head = (f"HTTP/1.1 500 Internal Server Error\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n").encode()
        try:
            self.wfile.write(head + body)
        except OSError:
            pass

    def _reset(self) -> None:
        """Abort the connection with a TCP reset: the client sees an error, not an answer."""
        self.close_connection = True
        try:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                       struct.pack("ii", 1, 0))
            # The reader holds a reference to the socket: without closing it first, close()
            # would not really close the socket and no reset would be sent.
            self.rfile.close()
            self.connection.close()
        except OSError:
            pass


class _Tracker:
    """The open client connections, so stop() can end keep-alive connections too."""

    def __init__(self):
        self._lock = threading.Lock()
        self._open: set[_Handler] = set()
        self.accepted = 0

    def opened(self, handler: _Handler) -> None:
        with self._lock:
            self._open.add(handler)
            self.accepted += 1

    def closed(self, handler: _Handler) -> None:
        with self._lock:
            self._open.discard(handler)

    def count(self) -> int:
        with self._lock:
            return len(self._open)

    def shutdown_all(self) -> None:
        with self._lock:
            handlers = list(self._open)
        for handler in handlers:
            try:
                handler.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def make_threaded_server(host: str, port: int, app):
    """A threaded werkzeug server using the keep-alive handler above."""
    server = make_server(host, port, app, threaded=True, request_handler=_Handler)
    server.tracker = _Tracker()
    return server
