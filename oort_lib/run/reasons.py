"""Failure reasons as classified messages ("server error 503", "connection reset").

A reason is what `status` and the report group files by, so it must be the same for
every file that failed the same way: no request URL, no path, no object id. The full
message, URL included, goes to the log.
"""

from __future__ import annotations

import re

from oort_lib.errors import (
    ConnectionFailed,
    NotJson,
    OortError,
    RemoteError,
    Timeout,
    Trickling,
)
from oort_lib.state.status import Status

# A URL, without the punctuation that ends it in a sentence ("https://x: refused").
_URL = re.compile(r"\b[a-z][a-z0-9+.-]*://\S+?(?=[:.,;)]*(?:\s|$))", re.I)
# "POST /datasets/1b2c.../: " and the like, at the start of a server message.
_REQUEST = re.compile(r"^(?:(?:GET|POST|PUT|PATCH|DELETE|HEAD|OPTIONS)\s+)?/\S*:\s*")
# The reason of each kind of failed connection (ConnectionFailed.KINDS).
_CONNECTION = {
    "reset": "connection reset",
    "refused": "connection refused",
    "aborted": "connection aborted",
    "broken pipe": "connection broken",
    "name not found": "server name not found",
    "timed out": "connection timed out",
    "tls": "TLS error",
    "certificate": "TLS certificate refused",
}
CONNECTION_FAILED = "connection failed"
NOT_JSON = "answer not understood (not JSON; a proxy page?)"
# The whole answer's deadline (a server that trickles), and one read's timeout.
TRICKLES = "the server gave no complete answer within {} s (it trickles)"
NO_ANSWER = "no answer within {} s"


def classify(exc: OortError) -> str:
    """The reason recorded for a file that failed with `exc` (same failure, same text)."""
    message = exc.message
    status = getattr(exc, "status", None) if isinstance(exc, RemoteError) else None
    if isinstance(exc, NotJson):  # whatever its status: a 200 page from a proxy, say
        return NOT_JSON
    if status is not None and status >= 400:  # a 2xx with an error body is no refusal
        if status == 429:
            return "server busy (429 too many requests)"
        if status >= 500:
            return f"server error {status}"
        if status == 404:
            return "not found on the server (404)"
        if status in (401, 403):
            return f"refused by the server ({status})"
        detail = _strip(message)
        return f"refused by the server ({status}: {detail})" if detail else (
            f"refused by the server ({status})")
    if not isinstance(exc, RemoteError):
        return _strip(message)
    if isinstance(exc, Trickling):
        return TRICKLES.format(f"{exc.seconds:g}")
    if isinstance(exc, Timeout):
        return NO_ANSWER.format(f"{exc.seconds:g}")
    if isinstance(exc, NotJson):
        return NOT_JSON
    if isinstance(exc, ConnectionFailed):
        return _CONNECTION.get(exc.kind, CONNECTION_FAILED)
    return _from_words(message)


def _from_words(message: str) -> str:
    """The reason of a RemoteError whose type does not say what failed (a plain
    TransientError, say), read from its message."""
    lowered = message.lower()
    waited = re.search(r"no (complete )?answer within ([\d.]+) s", message)
    if waited:
        return (TRICKLES if waited.group(1) else NO_ANSWER).format(waited.group(2))
    if "not json" in lowered:
        return NOT_JSON
    if "connection" in lowered or "unreachable" in lowered:
        return _CONNECTION.get(ConnectionFailed.kind_in(message), CONNECTION_FAILED)
    return _strip(message)


def _strip(message: str) -> str:
    """The message without URLs and without a leading `METHOD /path:`."""
    text = _REQUEST.sub("", message.strip())
    text = _URL.sub("the server", text)
    return " ".join(text.split())[:200]


# The reason of a file found on the server rather than sent from here (uploader.py), the
# start of each of its variants: counted apart from the uploads, never its bytes.
ALREADY = "already on the server"
# The same, as SQL on the manifest's files.
FOUND_SQL = f"(status = '{Status.UPLOADED}' AND COALESCE(reason, '') LIKE '{ALREADY}%')"

# Reasons made of a kind and each file's own detail: status and the report group files
# by the kind, not by the detail ("no date found (DATE-OBS 'x' is not a valid date)").
NO_DATE = "no date found"
_KINDS = (NO_DATE,)


def kind_of(reason: str) -> tuple[str, str | None]:
    """(the group of `reason`, the file's own detail or None): "no date found (DATE-OBS
    'x' is not a valid date)" is ("no date found", "DATE-OBS 'x' is not a valid date");
    a reason of no known kind is its own group."""
    for kind in _KINDS:
        if reason == kind:
            return kind, None
        if reason.startswith(kind + " (") and reason.endswith(")"):
            return kind, reason[len(kind) + 2:-1]
    return reason, None
