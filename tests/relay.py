"""A capturing relay: a reverse proxy on loopback that keeps every request as it arrived.

    with Relay(sandbox.url) as relay:
        ...  # point a client at relay.url; relay.seen holds what it sent

Each request is read whole (a chunked body is de-chunked, and said so), kept with its
header lines in the order and spelling they were sent, forwarded to the target (the
sandbox), and the target's answer is sent back, after which the connection is closed.
`parts()` splits a multipart body the way a server reads it.
"""

from __future__ import annotations

import http.client
import socket
import threading
from dataclasses import dataclass
from urllib.parse import urlsplit

HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length",
              "proxy-connection", "te", "trailer", "upgrade"}


@dataclass
class Captured:
    method: str
    target: str  # the path and query, as sent
    headers: list[tuple[str, str]]  # as sent: order and spelling kept
    body: bytes  # de-chunked
    chunked: bool

    @property
    def path(self) -> str:
        return self.target.split("?", 1)[0]

    def header(self, name: str) -> str | None:
        found = [v for k, v in self.headers if k.lower() == name.lower()]
        assert len(found) <= 1, f"{name} sent {len(found)} times"
        return found[0] if found else None


@dataclass
class Part:
    lines: list[bytes]  # the part's header lines, raw
    content: bytes

    @property
    def name(self) -> str:
        disposition = next(line for line in self.lines
                           if line.lower().startswith(b"content-disposition:"))
        return disposition.split(b'name="', 1)[1].split(b'"', 1)[0].decode()


def parts(request: Captured) -> tuple[str, list[Part], bytes, bytes]:
    """(boundary, parts, what precedes the first boundary, what follows the last)."""
    content_type = request.header("Content-Type") or ""
    boundary = content_type.split("boundary=", 1)[1].strip('"')
    pieces = request.body.split(b"--" + boundary.encode())
    found = []
    for piece in pieces[1:-1]:
        assert piece.startswith(b"\r\n") and piece.endswith(b"\r\n"), piece[:80]
        head, _, content = piece[2:-2].partition(b"\r\n\r\n")
        found.append(Part(head.split(b"\r\n"), content))
    return boundary, found, pieces[0], pieces[-1]


class Relay:
    def __init__(self, target: str):
        where = urlsplit(target)
        self.target = (where.hostname, where.port)
        self.seen: list[Captured] = []
        self._sock = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._sock.getsockname()[1]}"
        threading.Thread(target=self._accept, daemon=True).start()

    def requests(self, method: str, path: str) -> list[Captured]:
        return [r for r in self.seen if r.method == method and r.path == path]

    def close(self) -> None:
        self._sock.close()

    def __enter__(self) -> Relay:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        with conn, conn.makefile("rb") as reader:
            line = reader.readline()
            if not line:
                return
            method, target, _version = line.decode("latin-1").split(" ", 2)
            headers = []
            while (line := reader.readline()) not in (b"\r\n", b"\n", b""):
                name, _, value = line.decode("latin-1").partition(":")
                headers.append((name, value.strip()))
            lengths = [v for k, v in headers if k.lower() == "content-length"]
            chunked = any(k.lower() == "transfer-encoding" and "chunked" in v.lower()
                          for k, v in headers)
            body = _dechunked(reader) if chunked else reader.read(int(lengths[0])) \
                if lengths else b""
            self.seen.append(Captured(method, target, headers, body, chunked))
            status, reason, answer_headers, answer = self._forward(method, target, headers, body)
            head = [f"HTTP/1.1 {status} {reason}"]
            head += [f"{k}: {v}" for k, v in answer_headers if k.lower() not in HOP_BY_HOP]
            head += [f"Content-Length: {len(answer)}", "Connection: close"]
            conn.sendall(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + answer)

    def _forward(self, method, target, headers, body):
        upstream = http.client.HTTPConnection(*self.target, timeout=60)
        try:
            upstream.putrequest(method, target, skip_host=True, skip_accept_encoding=True)
            for name, value in headers:
                if name.lower() not in HOP_BY_HOP:
                    upstream.putheader(name, value)
            upstream.putheader("Content-Length", str(len(body)))
            upstream.putheader("Connection", "close")
            upstream.endheaders(body)
            answer = upstream.getresponse()
            return answer.status, answer.reason, answer.getheaders(), answer.read()
        finally:
            upstream.close()


def _dechunked(reader) -> bytes:
    body = b""
    while True:
        size = int(reader.readline().split(b";")[0].strip(), 16)
        if size == 0:
            while reader.readline() not in (b"\r\n", b"\n", b""):
                pass  # trailers
            return body
        body += reader.read(size)
        reader.readline()
