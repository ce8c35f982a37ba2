"""Links from the report to the objects on the server's web pages: the cloud, an
organisation's portal, Arcsecond.local or the sandbox's page.

The cloud's addresses are those Oort-Cloud 1.x's monitor linked to: a personal night log
at `https://www.arcsecond.io/nightlogs/<uuid>`, a dataset at `.../datasets/<uuid>`, an
organisation's night at `https://<subdomain>.arcsecond.io/nights/<date>`. A portal's
dataset (`https://<subdomain>.arcsecond.io/datasets/<uuid>`) and Arcsecond.local's pages
(the same portal layout on the web port, 5555) follow the same scheme. The sandbox has
one page, with an anchor per night log and dataset.
"""

from __future__ import annotations

from typing import NamedTuple
from urllib.parse import quote, urlsplit

from oort_lib.state.destination import parse

CLOUD_API = "api.arcsecond.io"
CLOUD_WEB = "https://www.arcsecond.io"
LOCAL_WEB_PORT = 5555
LOCAL_API_PORT = 8800


class Site(NamedTuple):
    kind: str  # "cloud", "portal", "local", "sandbox"
    base: str  # the web address, no trailing slash


def site(destination_key: str | None) -> Site | None:
    """Where the objects of a manifest destination are shown, or None if unknown."""
    dest = parse(destination_key)
    if dest is None:
        return None
    parts = urlsplit(dest.api)
    host = parts.hostname or ""
    org = dest.organisation
    if host == CLOUD_API:
        if org:
            return Site("portal", f"https://{quote(org, safe='')}.arcsecond.io")
        return Site("cloud", CLOUD_WEB)
    if parts.port == LOCAL_API_PORT or parts.path.rstrip("/").endswith("/api") or org == "local":
        netloc = f"[{host}]" if ":" in host else host
        return Site("local", f"{parts.scheme}://{netloc}:{LOCAL_WEB_PORT}")
    if host in ("127.0.0.1", "localhost", "::1"):
        return Site("sandbox", dest.api.rstrip("/"))  # its page is served at /
    return None


def night_log(where: Site | None, uuid: str | None, date: str | None) -> str | None:
    if where is None:
        return None
    if where.kind == "sandbox":
        return f"{where.base}/#nightlog-{uuid}" if uuid else None
    if where.kind in ("portal", "local"):
        return f"{where.base}/nights/{quote(date)}" if date else None
    return f"{where.base}/nightlogs/{quote(uuid)}" if uuid else None


def dataset(where: Site | None, uuid: str | None) -> str | None:
    if where is None or not uuid:
        return None
    if where.kind == "sandbox":
        return f"{where.base}/#dataset-{uuid}"
    return f"{where.base}/datasets/{quote(uuid)}"


def anchor(url: str | None, text: str) -> str:
    """The HTML link to `url` (opens there, in the browser; loads nothing into the
    report), after a space; "" without a URL."""
    if not url:
        return ""
    import html

    return (f' <a class="server" href="{html.escape(url, quote=True)}" '
            f'rel="noopener noreferrer">{html.escape(text, quote=True)}</a>')
