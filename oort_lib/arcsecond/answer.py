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

import string
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


MESSAGE_LIMIT = 300  # characters of a server's message kept (after masking)
MASK = "****"
KEY_RUN = 8  # this many consecutive characters of the key are the key (a cut key too)
_FOLD = str.maketrans(string.ascii_uppercase, string.ascii_lowercase)


def error_message(response: requests.Response, key: str | None = None) -> str:
    """The first human message of an error answer, never a raw dump, never the key."""
    return scrub(_first_message(response), key, MESSAGE_LIMIT)


def scrub(text: str, key: str | None, limit: int | None = None) -> str:
    """`text` with the key masked, then cut to `limit` characters: the one masking of
    what a server says (it may echo what it was sent). Raises nothing.

    Masked: the key in any case (a server may upper-case what it echoes) and every run
    of KEY_RUN or more consecutive characters of it (a key the server cut or wrapped).
    Masking comes first: a key straddling the cut would otherwise lose only its end to
    the cut and escape the mask whole.
    """
    if limit is None:
        return _mask(text, key) if key and len(key) >= 4 else text
    # A huge message is not scanned whole: the part that can reach the cut is. Its end
    # may hold the start of a key shorter than a run once this bound cut it: dropped.
    bound = limit + len(key or "") + KEY_RUN
    cut = len(text) > bound
    text = text[:bound]
    if key and len(key) >= 4:
        text = _mask(text, key)
    if cut:
        text = text[:-(KEY_RUN - 1)]
    return text[:limit]


def _mask(text: str, key: str) -> str:
    width = min(KEY_RUN, len(key))
    folded_key = key.translate(_FOLD)  # ASCII folding keeps every index in place
    pieces = {folded_key[i:i + width] for i in range(len(key) - width + 1)}
    folded = text.translate(_FOLD)
    hidden = [False] * len(text)
    for start in range(len(text) - width + 1):
        if folded[start:start + width] in pieces:
            hidden[start:start + width] = [True] * width
    if not any(hidden):
        return text
    out, index = [], 0
    while index < len(text):
        if hidden[index]:
            while index < len(text) and hidden[index]:
                index += 1
            out.append(MASK)
        else:
            out.append(text[index])
            index += 1
    return "".join(out)


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
        return found.strip()  # cut by error_message, after the key is masked
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
