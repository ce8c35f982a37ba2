"""The values of the config file, one kind at a time: how the text of a setting is read
and checked, and how a value is written back (config.py's table says which key is which).

A reader takes the text and the key. It raises ConfigError saying what is wrong with the
value, naming the key; config.load_settings puts the file and the line in front.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable

from oort_lib.errors import ConfigError
from oort_lib.state.tags import parse_tags

DIALECTS = ("auto", "2021", "2026")
# The order a backlog is uploaded in (run/ordering.py): the newest night first, or the oldest.
ORDERS = ("newest", "oldest")


def text(raw: str, key: str) -> str | None:
    """Any text; None if empty."""
    return raw.strip() or None


def show_text(value: str) -> str | None:
    """Empty text is not written."""
    return value or None


def show_list(separator: str) -> Callable[[Iterable[str]], str | None]:
    """A writer of a list of texts joined by `separator`; an empty one is not written."""
    return lambda values: separator.join(values) or None


def address(raw: str, key: str) -> str:
    """The server's address, without a trailing slash."""
    return raw.strip().rstrip("/")


def web_address(raw: str, key: str) -> str | None:
    """An http(s):// URL with a host and nothing odd in it (a webhook's); None if empty.
    Only its shape is checked here, so that a typo stops at load: which hosts may be sent
    to (https://, plain http:// to this machine only) is checked where it is used
    (views/notify.py, with arcsecond/address.py's rules)."""
    value = raw.strip()
    if not value:
        return None
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(value)
        shaped = parts.scheme in ("https", "http") and bool(parts.hostname)
    except ValueError:  # a bracketed host that is no address, say
        shaped = False
    if not shaped or any(c.isspace() for c in value):
        raise ConfigError(f"{key} = {raw.strip()!r} is not a web address; write the whole "
                          "URL (e.g. https://hooks.slack.com/services/...).")
    return value


def number(kind: type, low: float, high: float) -> Callable[[str, str], float]:
    """A reader of `kind` (int or float) numbers from `low` to `high`."""

    def read(raw: str, key: str) -> float:
        try:
            value = kind(raw)
        except ValueError:
            raise ConfigError(f"{key} = {raw!r} is not a {kind.__name__} number.") from None
        if not low <= value <= high:
            raise ConfigError(f"{key} = {raw} must be between {low} and {high}.")
        return value

    return read


def flag(raw: str, key: str) -> bool:
    value = raw.strip().lower()
    if value in ("1", "yes", "true", "on"):
        return True
    if value in ("0", "no", "false", "off", ""):
        return False
    raise ConfigError(f"{key} = {raw!r}: use true or false.")


def show_flag(value: bool) -> str:
    return str(value).lower()


def dialect(raw: str, key: str) -> str:
    """Which API generation to speak: one of DIALECTS."""
    if raw.strip() not in DIALECTS:
        raise ConfigError(f"{key} = {raw!r}: use auto, 2021 or 2026.")
    return raw.strip()


def upload_order(raw: str, key: str) -> str:
    """Which night of a backlog goes first: one of ORDERS (any case)."""
    value = raw.strip().lower()
    if value not in ORDERS:
        raise ConfigError(f"{key} = {raw!r}: use newest (last night first) or oldest.")
    return value


def bwlimit(raw: str, key: str) -> str | None:
    """An upload rate or a timetable (state/rates.py), kept as written: the run reads it
    again; checked here so that a typo stops at load."""
    from oort_lib.state.rates import parse

    parse(raw)
    return raw.strip() or None


def folder_path(raw: str, key: str) -> str:
    """A watched folder's path as written, `~` expanded; kept unresolved (a symlink such
    as `nights/current` is followed again at every run). Raises ConfigError when it is
    relative: it would depend on the folder cron happens to start in."""
    expanded = os.path.expanduser(raw.strip())
    if expanded.startswith("~"):
        raise ConfigError(f"{key} = {raw!r}: no such user's home.")
    if not os.path.isabs(expanded):
        raise ConfigError(f"{key} = {raw!r} is relative; write the full path "
                          "(e.g. /home/you/data or ~/data).")
    return os.path.normpath(expanded)


def zone(hint: str) -> Callable[[str, str], str | None]:
    """A reader of an IANA time zone name, `hint` ending the message for any other name:
    a typo (America/Santigo) must stop with a message at load, not fail every file later."""

    def read(raw: str, key: str) -> str | None:
        if not raw.strip():
            return None
        from oort_lib.local.rules import zone

        try:
            zone(raw.strip())
        except ValueError:
            raise ConfigError(f"{key} = {raw.strip()}: not an IANA time zone name"
                              f"{hint}") from None
        return raw.strip()

    return read


def tags(raw: str, key: str) -> tuple[str, ...]:
    """Comma-separated labels (tags.py)."""
    return parse_tags(raw)


def classify(raw: str, key: str) -> str:
    """How calibrations are told: by `folder` name or by `header` frame type."""
    value = (raw or "folder").strip().lower()
    if value not in ("folder", "header"):
        raise ConfigError(f"{key} = {raw!r} must be folder or header.")
    return value


def longitude(raw: str, key: str) -> float | None:
    """Degrees east; None if empty."""
    if not raw.strip():
        return None
    try:
        value = float(raw)
    except ValueError:
        value = float("nan")
    if not -180.0 <= value <= 360.0:  # also refuses nan
        raise ConfigError(f"{key} = {raw!r}: degrees east, -180 to 360.")
    return value


def excludes(raw: str, key: str) -> tuple[str, ...]:
    """Glob patterns (local/exclude.py), one per line (indented continuation lines)."""
    from oort_lib.local.exclude import check

    return check(line for line in raw.splitlines() if line.strip())
