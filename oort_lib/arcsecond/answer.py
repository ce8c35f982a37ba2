"""What a server's answer says: its first human message, its wait, and whether it is the
duplicate answer for the file just sent.

Both generations answer an upload whose name is taken with
`{"detail": ["<name> already exists in dataset <uuid>."]}` (2021) or the same sentence as a
plain `detail` string (2026). The phrase alone proves nothing: a server may say it of
another file, in another sentence ("storage quota reached; nothing already exists in
dataset..."), or echo a file name that contains it. Only the sentence that starts with
the name being sent, in a message field of the answer, says that this file is there.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from email.utils import parsedate_to_datetime

import requests

DUPLICATE = "already exists in dataset"  # the one phrase both generations answer
# Where Django REST framework and the Arcsecond servers put what they have to say: the
# generic keys, and the fields of an upload (a validation error names its field).
MESSAGE_KEYS = ("detail", "error", "errors", "message", "non_field_errors", "file",
                "filename", "name")
# How a server may set the name off: bare, or between quotes of either kind.
_QUOTES = (("", ""), ('"', '"'), ("'", "'"), ("\u201c", "\u201d"), ("\u2018", "\u2019"),
           ("`", "`"))
_ERROR_KEYS = {"error", "errors", "detail", "message", "status", "code", "non_field_errors"}


def error_message(response: requests.Response, key: str | None = None) -> str:
    """The first human message of an error answer, never a raw dump, never the key."""
    return scrub(_first_message(response), key)


def scrub(text: str, key: str | None) -> str:
    """`text` with the key masked (a server may echo what it was sent)."""
    if key and len(key) >= 4 and key in text:
        text = text.replace(key, "****")
    return text


def is_duplicate(response: requests.Response, names: Iterable[str]) -> bool:
    """True when the answer says that a file of one of `names` (the name sent, as the
    server may write it back) already exists in the dataset.

    A message field must start with the name (maybe quoted) followed by the phrase; the
    phrase anywhere else, or after another name, is another refusal.
    """
    wanted = [name for name in names if name]
    if not wanted:
        return False
    for text in messages(_json(response)):
        text = text.strip()
        for name in wanted:
            for opening, closing in _QUOTES:
                if text.startswith(f"{opening}{name}{closing} {DUPLICATE}"):
                    return True
    return False


def messages(data) -> Iterator[str]:
    """The strings of an answer's message fields (a string or a list of strings each),
    or of a bare list of strings (what a DRF ValidationError of a list answers)."""
    if isinstance(data, dict):
        for key in MESSAGE_KEYS:
            yield from _strings(data.get(key))
    elif isinstance(data, list):
        yield from _strings(data)


def _strings(value) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, list):
        yield from (item for item in value if isinstance(item, str))


def _json(response: requests.Response):
    try:
        return response.json()
    except ValueError:
        return None


def _first_message(response: requests.Response) -> str:
    data = _json(response)
    found = None
    if isinstance(data, dict):
        for key in ("detail", "error", "non_field_errors", "message"):
            if key in data:
                found = data[key]
                break
        else:
            for key, value in data.items():
                first = value[0] if isinstance(value, list) and value else value
                if isinstance(first, str):
                    found = f"{key}: {first}"
                    break
    elif isinstance(data, list) and data:
        found = data[0]
    if isinstance(found, list):
        found = found[0] if found else None
    if isinstance(found, str) and found.strip():
        return found.strip()[:300]
    return f"HTTP {response.status_code} {response.reason or ''}".strip()


def retry_after(response: requests.Response | None) -> float | None:
    """Seconds the answer asks to wait (`Retry-After`: seconds or an HTTP date), or None."""
    value = response.headers.get("Retry-After") if response is not None else None
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return None


def is_error_body(data) -> bool:
    """A dict that only says something went wrong: an "error" (or "errors") entry and
    nothing but error-ish fields beside it."""
    return (isinstance(data, dict) and bool({"error", "errors"} & set(data))
            and set(data) <= _ERROR_KEYS)
