"""The API address: which URLs oort-sync sends the key to.

https:// anywhere; plain http:// on loopback, and to a machine on the LAN only when the
user said so (`login --allow-http`, Arcsecond.local); never to a public host. Parsed
strictly, so that a URL cannot hide its real host (`http://HOST\\@127.0.0.1`).
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from oort_lib.errors import ConfigError


def check_base_url(url: str, *, allow_http: bool = False) -> str:
    """Normalise the API URL (no trailing slash; a path such as `/api` is kept).

    https:// anywhere; plain http:// on loopback, and on a LAN host (a private address,
    or a name like `nas.local`) only with `allow_http` (Arcsecond.local); never to a
    public host, where the key would cross the internet in clear.

    Raises ConfigError for anything else: another scheme, user info (`user@host`, which
    can hide the real host), a query or fragment, odd characters in the host.
    """
    url = url.strip().rstrip("/")
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
    if where == "lan":
        raise ConfigError(
            f"API URL {url}: plain http:// to a machine on your network (Arcsecond.local?) "
            "needs `oort-sync login --allow-http`: the key travels in clear on that network."
        )
    raise ConfigError(
        f"API URL {url}: plain http:// is refused for a public host "
        "(the key would travel in clear); use https://."
    )


def plain_http_off_loopback(url: str) -> bool:
    """True for an http:// URL to another machine (the key travels in clear there)."""
    parts = urlsplit(url)
    return parts.scheme == "http" and host_kind(parts.hostname or "") != "loopback"


def host_kind(host: str) -> str:
    """"loopback", "lan" (private address or local name) or "public"."""
    import ipaddress  # only here: not a cost for every run

    host = host.strip("[]").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return "loopback"
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        local = ("." not in host or host.endswith((".local", ".lan", ".home.arpa",
                                                   ".internal", ".localdomain")))
        return "lan" if local else "public"
    if address.is_loopback:
        return "loopback"
    if address.is_private or address.is_link_local:
        return "lan"
    return "public"
