"""Which handler a path goes to: the URL map of the Arcsecond API surface.

Paths are split on ``/`` *before* percent-decoding, so a datafile name may contain any
character (``%2F`` included) without changing the route; each segment is then decoded
as UTF-8. Every API path is also served under ``/api``, as Arcsecond.local serves it to
the rest of its network.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from urllib.parse import unquote, urlsplit

from oort_lib.sandbox.store import KINDS

RESOURCES = frozenset({"telescopes", "datafiles", *KINDS})
FILES_PREFIX = "/_sandbox/files/"
API_PREFIX = "/api"
DIALECTS = ("2021", "2026", "both")

# Routes one generation has and the other lacks (404 on a server of the other one).
ONLY_2026 = frozenset({"healthcheck", "verify", "verify_org", "files"})
ONLY_2021 = frozenset({"uploadkey", "apikey", "datafiles", "datafile"})
# Routes that answer OPTIONS with a description (2026 generation), as DRF list views do.
LISTS = frozenset({"telescopes", "list", "files", "datafiles"})

# name -> methods allowed (HEAD is answered as GET)
METHODS: dict[str, tuple[str, ...]] = {
    "page": ("GET",),
    "healthcheck": ("GET",),
    "token": ("POST",),
    "verify": ("POST",),
    "verify_org": ("POST",),
    "profile": ("GET",),
    "uploadkey": ("GET",),
    "apikey": ("GET",),
    "organisation": ("GET",),
    "telescopes": ("GET",),
    "telescope": ("GET",),
    "list": ("GET", "POST"),
    "detail": ("GET",),
    "datafiles": ("GET", "POST"),
    "datafile": ("GET", "PATCH", "PUT"),
    "files": ("GET", "POST"),
}


@dataclass(frozen=True)
class Route:
    name: str
    org: str | None = None
    args: tuple[str, ...] = ()
    prefix: str = ""  # "/api" when the request came under the Arcsecond.local prefix

    @property
    def is_admin(self) -> bool:
        return self.name == "admin"

    @property
    def is_resource(self) -> bool:
        return self.name in ("telescopes", "telescope", "list", "detail", "datafiles",
                             "datafile", "files")

    def served_by(self, dialect: str) -> bool:
        """Whether a server speaking ``dialect`` has this route."""
        if dialect == "2021":
            return self.name not in ONLY_2026
        if dialect == "2026":
            return self.name not in ONLY_2021
        return True

    def is_upload(self, method: str) -> bool:
        return (self.name in ("datafiles", "files") and method == "POST") or (
            self.name == "datafile" and method in ("PATCH", "PUT")
        )


def raw_path(environ: dict) -> str:
    """The path exactly as the client sent it (still percent-encoded), without query."""
    raw = environ.get("REQUEST_URI") or environ.get("RAW_URI")
    if raw:
        path = urlsplit(raw).path if "://" in raw.split("?", 1)[0] else raw.split("?", 1)[0]
        return path or "/"
    # Not served by werkzeug's server: rebuild from the decoded WSGI path.
    from urllib.parse import quote

    decoded = environ.get("PATH_INFO", "/").encode("latin-1").decode("utf-8", "replace")
    return quote(decoded, safe="/")


def route(path: str) -> Route | None:
    """The route of a raw path, or None (404)."""
    if path == API_PREFIX or path.startswith(API_PREFIX + "/"):
        found = _route(path[len(API_PREFIX):] or "/")
        if found is None or found.is_admin:
            return None
        return replace(found, prefix=API_PREFIX)
    return _route(path)


def _route(path: str) -> Route | None:
    if path == "/":
        return Route("page")
    if path.startswith(FILES_PREFIX):
        segs = _decode(path[len(FILES_PREFIX):].rstrip("/").split("/"))
        return Route("admin", args=("files", *segs)) if segs and len(segs) == 2 else None
    if not path.startswith("/") or not path.endswith("/"):
        return None
    segs = _decode(path[1:-1].split("/"))
    if segs is None:
        return None
    head, n = segs[0], len(segs)
    if head == "auth":
        return _AUTH.get(tuple(segs))
    if segs == ["healthcheck"]:
        return Route("healthcheck")
    if head == "profiles":
        if n == 2:
            return Route("profile", args=(segs[1],))
        if n == 3 and segs[2] in ("uploadkey", "apikey"):
            return Route(segs[2], args=(segs[1],))
        return None
    if head == "organisations":
        return Route("organisation", args=(segs[1],)) if n == 2 else None
    if head == "_sandbox":
        return Route("admin", args=tuple(segs[1:])) if n >= 2 else None
    if head in RESOURCES:
        return _resource(None, segs)
    if n >= 2 and segs[1] in RESOURCES:
        return _resource(head, segs[1:])
    return None


def _resource(org: str | None, segs: list[str]) -> Route | None:
    head, n = segs[0], len(segs)
    if head == "datafiles":
        return Route("files", org) if n == 1 else None
    if head == "telescopes":
        if n == 1:
            return Route("telescopes", org)
        return Route("telescope", org, (segs[1],)) if n == 2 else None
    if n == 1:
        return Route("list", org, (head,))
    if n == 2:
        return Route("detail", org, (head, segs[1]))
    if head == "datasets" and segs[2] == "datafiles":
        if n == 3:
            return Route("datafiles", org, (segs[1],))
        if n == 4:
            return Route("datafile", org, (segs[1], segs[3]))
    return None


_AUTH = {
    ("auth", "token"): Route("token"),
    ("auth", "key", "verify"): Route("verify"),
    ("auth", "key", "verify-organisation"): Route("verify_org"),
}


def _decode(segs: list[str]) -> list[str] | None:
    try:
        out = [unquote(s, encoding="utf-8", errors="strict") for s in segs]
    except UnicodeDecodeError:
        return None
    return out if all(out) else None
