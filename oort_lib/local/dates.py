"""Strict parsing of the date strings found in FITS and XISF headers.

A header date decides which night log a file lands in, so a wrong guess is worse than no
date at all: every accepted form is spelled out below, and anything else (impossible
values, ambiguous day/month orders, free text) gives ``None``.

Accepted:

- ISO 8601 extended form: ``YYYY-MM-DD``, optionally followed by ``T`` (or ``t``, one
  space, or a space and ``T`` as Orion Camera Studio writes) and ``hh:mm[:ss[.fff...]]``
  with any number of fractional digits, optionally followed by ``Z`` (UTC) or an offset
  ``+hh:mm``, ``+hhmm`` or ``+hh``.
- The legacy FITS form ``dd/mm/yy``, which the FITS standard defines for 1900-1999 only,
  and its four-digit-year form ``dd/mm/yyyy`` (day first, as in the FITS form).
- Single-digit minutes and seconds after a two-digit hour (``02:45:1.875``, written by
  IRAF): unambiguous, unlike a single-digit hour, month or day.

Julian dates (``MJD-OBS``, ``JD``) are numbers, converted by ``from_mjd`` / ``from_jd``.
A date whose year is outside 1900-2100 is not an observation date (``0001-01-01`` is what
a capture program without a clock writes); ``plausible`` tells, and header readers use it.

A small explicit grammar decides which texts are dates at all; python-dateutil's strict
ISO parser (``isoparse``) then builds the value. The grammar keeps out the forms that
``isoparse`` (or ``datetime.fromisoformat``) would also accept but no header writer
produces, such as week dates or ``24:00``; ``fromisoformat`` is not used because on
Python 3.10 it rejects ``Z`` and fractions other than 3 or 6 digits.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

__all__ = [
    "FIRST_YEAR",
    "LAST_YEAR",
    "combine_date_time",
    "from_jd",
    "from_mjd",
    "is_date_only",
    "parse_header_date",
    "plausible",
]

FIRST_YEAR = 1900
LAST_YEAR = 2100
_MJD_EPOCH = datetime(1858, 11, 17, tzinfo=timezone.utc)
_JD_MINUS_MJD = 2400000.5

_TIME = r"""
    (?P<hour>\d{2}):(?P<minute>\d{1,2})
    (?::(?P<second>\d{1,2})(?:[.,](?P<fraction>\d+))?)?
    (?P<zone>[Zz]|[+-]\d{2}(?::?\d{2})?)?
"""
_ISO = re.compile(
    r"(?P<year>\d{4})-(?P<month>\d{2})-(?P<day>\d{2})(?P<sep>[Tt ]|[ ][Tt])?(?(sep)"
    + _TIME
    + r")",
    re.VERBOSE,
)
_TIME_ONLY = re.compile(_TIME, re.VERBOSE)
_LEGACY = re.compile(r"(?P<day>\d{2})/(?P<month>\d{2})/(?P<year>\d{2}|\d{4})")

_QUOTES_AND_SPACES = " \t'\""


def _clean(value: object) -> str | None:
    if not isinstance(value, str):
        return None
    # FITS string values arrive with their quotes and padding when a caller reads raw cards.
    return value.strip().strip(_QUOTES_AND_SPACES)


def _zone(text: str | None) -> timezone | None:
    """The tzinfo of a ``Z``/offset suffix; raises ValueError for an impossible offset."""
    if text is None:
        return None
    if text in ("Z", "z"):
        return timezone.utc
    sign = -1 if text[0] == "-" else 1
    digits = text[1:].replace(":", "")
    hours = int(digits[:2])
    minutes = int(digits[2:] or "0")
    if hours > 23 or minutes > 59:
        raise ValueError(f"offset {text} out of range")
    return timezone(sign * timedelta(hours=hours, minutes=minutes))


def _time_parts(match: re.Match[str]) -> tuple[int, int, int, int, timezone | None]:
    """hour, minute, second, microsecond and tzinfo of a matched time; raises ValueError."""
    hour = int(match["hour"])
    minute = int(match["minute"])
    second = int(match["second"] or "0")
    fraction = match["fraction"] or ""
    # Truncate rather than round: rounding 59.9999999 would carry into the next minute.
    microsecond = int(fraction[:6].ljust(6, "0"))
    if second == 60:
        # A leap second is a real instant that datetime cannot hold; its night is unaffected.
        second, microsecond = 59, 999_999
    tzinfo = _zone(match["zone"])
    # datetime() itself rejects hour 24 and second 61, so no further checks are needed here.
    return hour, minute, second, microsecond, tzinfo


def _parse(value: object) -> tuple[datetime, bool] | None:
    """The datetime and whether the text carried a time of day, or None."""
    text = _clean(value)
    if not text:
        return None
    try:
        match = _ISO.fullmatch(text)
        if match is not None:
            from dateutil.parser import isoparse

            if match["hour"] is None:
                return isoparse(text), False
            if match["hour"] == "24":
                return None  # ISO's "end of day" means the next day: too clever to trust
            _time_parts(match)  # the same range checks as a TIME-OBS value
            text = _padded(text, match)
            if match["sep"] != "T":
                # " T" (Orion Camera Studio), "t" and " " all mean "T" to isoparse.
                start, end = match.span("sep")
                text = text[:start] + "T" + text[end:]
            parsed = isoparse(text.replace(",", "."))
            if parsed.tzinfo is not None:
                parsed = parsed.replace(tzinfo=timezone(parsed.utcoffset()))
            return parsed, True
        match = _LEGACY.fullmatch(text)
        if match is not None:
            year = int(match["year"])
            year += 1900 if len(match["year"]) == 2 else 0
            return datetime(year, int(match["month"]), int(match["day"])), False
    except ValueError:
        # Month 13, February 30, hour 25, offset +25:00: a real-looking but impossible value.
        return None
    return None


def _padded(text: str, match: re.Match[str]) -> str:
    """``text`` with single-digit minutes and seconds padded and a leap second folded, the
    form isoparse reads."""
    parts = []
    last = 0
    for group in ("minute", "second"):
        if match[group] is None:
            continue
        start, end = match.span(group)
        value = match[group].zfill(2)
        if group == "second" and value == "60":
            # A leap second is a real instant that datetime cannot hold; its night is
            # unaffected.
            value = "59.999999"
            end = match.end("fraction") if match["fraction"] else end
        parts.append(text[last:start] + value)
        last = end
    return "".join(parts) + text[last:]


def plausible(when: datetime | None) -> bool:
    """True if ``when`` is a date an observation can have (a year in 1900-2100)."""
    return when is not None and FIRST_YEAR <= when.year <= LAST_YEAR


def from_mjd(value: object) -> datetime | None:
    """The aware UTC datetime of a Modified Julian Date (a number or numeric text), or None
    when it is not a number or falls outside 1900-2100. Never raises."""
    number = _number(value)
    if number is None:
        return None
    # Check the range on the number first: timedelta overflows on absurd values.
    if not 15020 <= number <= 88070:  # 1900-01-01 .. 2100-12-31
        return None
    when = _MJD_EPOCH + timedelta(days=number)
    return when if plausible(when) else None


def from_jd(value: object) -> datetime | None:
    """The aware UTC datetime of a Julian Date, as ``from_mjd``. Never raises."""
    number = _number(value)
    return None if number is None else from_mjd(number - _JD_MINUS_MJD)


def _number(value: object) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        number = float(value)
    else:
        text = _clean(value)
        if not text:
            return None
        try:
            number = float(text)
        except ValueError:
            return None
    # NaN and infinities compare false with every bound; refuse them here.
    return number if number == number and abs(number) < 1e12 else None


def parse_header_date(value: str) -> datetime | None:
    """Parse a header date string strictly; never raises.

    Returns a naive datetime for values without a zone (date-only values give midnight),
    an aware one for ``Z`` (UTC) or an explicit offset, and None for anything unparsable,
    impossible or ambiguous.
    """
    parsed = _parse(value)
    return parsed[0] if parsed is not None else None


def is_date_only(value: str) -> bool:
    """True if ``value`` is a valid date without a time of day (``YYYY-MM-DD``, ``dd/mm/yy``)."""
    parsed = _parse(value)
    return parsed is not None and not parsed[1]


def combine_date_time(date_value: str, time_value: str) -> datetime | None:
    """Join a date-only value (DATE-OBS) and a ``hh:mm[:ss[.fff]]`` value (TIME-OBS, UT...).

    The time may carry ``Z`` or an offset, which makes the result aware. Returns None if
    either part is unparsable, or if ``date_value`` already carries a time of day (the
    two could disagree, and picking one would be a guess). Never raises.
    """
    parsed = _parse(date_value)
    text = _clean(time_value)
    if parsed is None or parsed[1] or not text:
        return None
    match = _TIME_ONLY.fullmatch(text)
    if match is None:
        return None
    try:
        hour, minute, second, micro, tzinfo = _time_parts(match)
        return parsed[0].replace(
            hour=hour, minute=minute, second=second, microsecond=micro, tzinfo=tzinfo
        )
    except ValueError:
        return None
