"""A look at what answers an https:// API URL whose TLS handshake failed: a server
that speaks plain http there (Arcsecond.local, the sandbox) is told apart from a broken
or intercepted TLS connection, and the user is told the URL to use instead."""

from __future__ import annotations

import socket
from urllib.parse import urlsplit, urlunsplit

from oort_lib.errors import PlainHttpServer

PROBE_SECONDS = 3.0


def speaks_plain_http(url: str, timeout: float = PROBE_SECONDS) -> bool:
    """True when the host and port of `url` answer a plain HTTP request. What is sent is
    `HEAD / HTTP/1.0` and the Host header: no key, nothing of the user. Raises nothing."""
    parts = urlsplit(url)
    try:
        host, port = parts.hostname, parts.port or 443
        with socket.create_connection((host, port), timeout=timeout) as sock:
            sock.settimeout(timeout)
            sock.sendall(f"HEAD / HTTP/1.0\r\nHost: {parts.netloc}\r\n\r\n".encode("ascii"))
            return sock.recv(5) == b"HTTP/"
    except (OSError, ValueError, UnicodeError):
        return False


def plain_http_server(url: str) -> PlainHttpServer:
    """The error for the https:// `url` whose server speaks plain http: the http:// URL
    to log in to, with --allow-http where the server is on the network (never for a
    public host: the key would cross the internet in clear)."""
    from oort_lib.arcsecond.address import host_kind

    parts = urlsplit(url)
    plain = urlunsplit(("http", *parts[1:]))
    kind = host_kind(parts.hostname or "")
    said = f"The server at {url} speaks plain http, not https"
    if kind == "public":
        return PlainHttpServer(
            f"{said}; the key goes to a public host only over https: check the address "
            "(the port?), or ask whoever runs the server.")
    if kind == "loopback":
        return PlainHttpServer(
            f"{said}: use {plain} (`oort-sync login --api={plain}`; for a server on your "
            "network, such as Arcsecond.local, add --allow-http).")
    return PlainHttpServer(
        f"{said} (as Arcsecond.local is served): use `oort-sync login --api={plain} "
        "--allow-http` (the key then travels unencrypted on your network).")
