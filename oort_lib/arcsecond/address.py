"""The API address: which URLs oort-sync sends the key to.

https:// anywhere; plain http:// on loopback, and to a machine on the LAN only when the
user said so (`login --allow-http`, Arcsecond.local); never to a public host. Parsed
strictly, so that a URL cannot hide its real host (`http://HOST\\@127.0.0.1`).

A host is judged by the address it stands for, not by its looks: `134744072`,
`0x08080808` and `010.8.8.8` have no dot or a dot-less look of a LAN name, yet every
resolver reads them as 8.8.8.8 (inet_aton's numbers: decimal, octal, hex, 1 to 4 parts);
and a LAN name (`nas.local`) is sent the key in clear only if every address it resolves
to is on loopback or the LAN (check_resolved, before the first request).
"""

from __future__ import annotations

import re
import socket
from collections.abc import Callable
from urllib.parse import urlsplit

from oort_lib.errors import ConfigError, InsecureAddress, ServerUnreachable

_NUMBER = re.compile(r"0x[0-9a-f]*|[0-9]+")  # a part of an inet_aton address


def check_base_url(url: str, *, allow_http: bool = False) -> str:
    """Normalise the API URL (no trailing slash; a path such as `/api` is kept).

    https:// anywhere; plain http:// on loopback, and on a LAN host (a private address,
    or a name like `nas.local`) only with `allow_http` (Arcsecond.local); never to a
    public host, where the key would cross the internet in clear.

    Raises ConfigError for anything else: another scheme, user info (`user@host`, which
    can hide the real host), a query or fragment, odd characters in the host.
    """
    url = url.strip().rstrip("/")
    if "://" not in url and url:
        raise ConfigError(f"API URL {url!r} has no scheme: did you mean {_with_scheme(url)}?")
    try:
        parts = urlsplit(url)
        host = parts.hostname
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError:
        raise ConfigError(f"API URL {url!r} is not a valid URL.") from None
    if parts.scheme not in ("https", "http") or not host:
        raise ConfigError(f"API URL {url!r} is not an https:// URL.")
    if "@" in parts.netloc or "\\" in url or parts.query or parts.fragment:
        raise ConfigError(f"API URL {url!r}: give only scheme, host, port and path "
                          "(no user@, no ? or #).")
    if not re.fullmatch(r"[a-z0-9.\-]+|[0-9a-f:.]+", host):
        raise ConfigError(f"API URL {url!r}: the host name has characters no host has.")
    if parts.scheme == "https":
        return url
    where = host_kind(host)
    if where == "loopback" or (where == "lan" and allow_http):
        return url
    if where == "numbers":
        raise ConfigError(
            f"API URL {url}: the host {host} is made of numbers but is no address; write "
            "the server's address as four decimal numbers (http://192.168.1.10:5555)."
        )
    number = numeric_address(host)
    shown = f"{host} is the address {number}: " if number and str(number) != host else ""
    if where == "lan":
        raise ConfigError(
            f"API URL {url}: plain http:// to a machine on your network (Arcsecond.local?) "
            "needs `oort-sync login --allow-http`: the key travels in clear on that network."
        )
    raise ConfigError(
        f"API URL {url}: {shown}plain http:// is refused for a public host "
        "(the key would travel in clear); use https://."
    )


def _with_scheme(url: str) -> str:
    """`url` (`api.arcsecond.io`) with the scheme its host takes: https://, http:// on this
    machine, either on the network (Arcsecond.local is served in plain http)."""
    host = urlsplit(f"//{url}").hostname or ""
    kind = host_kind(host) if re.fullmatch(r"[a-z0-9.\-]+|[0-9a-f:.]+", host) else "public"
    if kind == "loopback":
        return f"http://{url}"
    if kind == "lan":
        return f"https://{url}, or http://{url} with --allow-http (Arcsecond.local)"
    return f"https://{url}"


def plain_http_off_loopback(url: str) -> bool:
    """True for an http:// URL to another machine (the key travels in clear there)."""
    parts = urlsplit(url)
    return parts.scheme == "http" and host_kind(parts.hostname or "") != "loopback"


def host_kind(host: str) -> str:
    """"loopback", "lan" (private address or local name), "public", or "numbers" (a host
    made only of numbers that is no address: refused). Raises nothing."""
    import ipaddress  # only here: not a cost for every run

    host = _plain(host)
    if host == "localhost" or host.endswith(".localhost"):
        return "loopback"
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        if _numeric(host):
            number = numeric_address(host)
            return "numbers" if number is None else address_kind(number)
        local = ("." not in host or host.endswith((".local", ".lan", ".home.arpa",
                                                   ".internal", ".localdomain")))
        return "lan" if local else "public"
    return address_kind(address)


def address_kind(address) -> str:
    """"loopback", "lan" or "public" for an ipaddress address (an IPv4 address written
    as IPv6, `::ffff:8.8.8.8`, is judged as the IPv4 one). Raises nothing."""
    mapped = getattr(address, "ipv4_mapped", None)
    if mapped is not None:
        address = mapped
    if address.is_loopback:
        return "loopback"
    if address.is_private or address.is_link_local:
        return "lan"
    return "public"


def _plain(host: str) -> str:
    host = host.strip("[]").lower()
    return host[:-1] if host.endswith(".") and not host.endswith("..") else host


def _numeric(host: str) -> bool:
    return all(_NUMBER.fullmatch(part) for part in host.split("."))


def numeric_address(host: str):
    """The IPv4 address a resolver reads in a host made only of numbers, the way
    inet_aton does (1 to 4 parts; decimal, octal after a leading 0, hex after 0x; the last
    part fills the bytes left: `134744072`, `8.8.2056`, `010.8.8.8` are all 8.8.8.8),
    or None when it is not one. Computed here, not by the platform's inet_aton, so the
    verdict is the same everywhere. Raises nothing."""
    import ipaddress

    host = _plain(host)
    parts = host.split(".")
    if not _numeric(host) or not 1 <= len(parts) <= 4:
        return None
    values = []
    for part in parts:
        if part.startswith("0x"):
            digits, base = part[2:], 16
        elif len(part) > 1 and part.startswith("0"):
            digits, base = part[1:], 8
        else:
            digits, base = part, 10
        try:
            values.append(int(digits, base))
        except ValueError:  # "0x" alone, or an 8 or a 9 after a leading 0
            return None
    *head, last = values
    if any(value > 255 for value in head) or last >= 256 ** (4 - len(head)):
        return None
    number = last
    for index, value in enumerate(head):
        number += value << (24 - 8 * index)
    return ipaddress.IPv4Address(number)


# --- what a LAN name resolves to ---------------------------------------------------------


def needs_resolving(url: str) -> bool:
    """True for a plain http:// URL whose host is a name (not an address, not localhost):
    what check_resolved must see before the key is sent there. Raises nothing."""
    import ipaddress

    parts = urlsplit(url)
    host = _plain(parts.hostname or "")
    if parts.scheme != "http" or not host or host_kind(host) == "loopback":
        return False
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return not _numeric(host)
    return False


def addresses_of(host: str, port: int) -> list[str]:
    """The addresses `host` resolves to (what the connection will use). Raises OSError
    (socket.gaierror) when it resolves to none."""
    found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in found]


def check_resolved(url: str, resolve: Callable[[str, int], list[str]] | None = None) -> None:
    """Before the key goes in clear to a name: every address it resolves to must be on
    loopback or the LAN (a name that looks local can still resolve to a public host: a
    search domain, a hostile DNS). Does nothing for https:// and for addresses.

    `resolve` replaces addresses_of (tests). Raises InsecureAddress (exit code 2, ends a
    run) naming a public address the name resolves to; ServerUnreachable when it
    resolves to nothing (the server off, or the name mistyped: nothing was sent).
    """
    import ipaddress

    if not needs_resolving(url):
        return
    parts = urlsplit(url)
    host = parts.hostname or ""
    try:
        found = (resolve or addresses_of)(host, parts.port or 80)
    except (OSError, UnicodeError) as exc:
        why = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
        found, failure = [], why
    else:
        failure = "no address"
    if not found:
        raise ServerUnreachable(
            f"The API host {host} cannot be found on the network ({failure}): check the "
            "name in the API URL and that the server is on, or give its address "
            "(`oort-sync login --api=http://192.168.1.10:5555/api --allow-http`)."
        )
    for text in found:
        try:
            kind = address_kind(ipaddress.ip_address(text.split("%")[0]))
        except ValueError:
            kind = "public"  # not an address we can judge: never sent the key in clear
        if kind == "public":
            raise InsecureAddress(
                f"API URL {url}: {host} resolves to {text}, a public address; plain "
                "http:// is only for a server on your network (the key travels in clear). "
                "Use https://, or the server's LAN address."
            )
