"""Which keyword dates a frame, and that date in UTC: the choice shared by the FITS and
XISF readers (headers.py), in order of trust, every value checked for plausibility.

A header getter (`Getter`) answers a keyword's value in one HDU, or None.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any, NamedTuple

from oort_lib.local.dates import (
    FIRST_YEAR,
    LAST_YEAR,
    combine_date_time,
    from_jd,
    from_mjd,
    is_date_only,
    parse_header_date,
    plausible,
)
from oort_lib.local.fitsfile import silence

Getter = Callable[[str], Any]

# In order of trust. DATE is the date the file was written: only a fallback, so that an
# extension's DATE-OBS (HST, archives) beats the primary's DATE.
OBS_KEYWORDS = ("DATE-OBS", "DATE_OBS", "MJD-OBS", "JD")
DATE_KEYWORDS = (*OBS_KEYWORDS, "DATE")
# Only these may hold a date-only value completed by a time keyword.
OBS_DATE_KEYWORDS = ("DATE-OBS", "DATE_OBS")
TIME_KEYWORDS = ("TIME-OBS", "UT", "UTSTART")
JULIAN = {"MJD-OBS": from_mjd, "JD": from_jd}
# TIMESYS values that are UTC for a night's purpose (UT1 is within 0.9 s of UTC).
_UTC_SYSTEMS = frozenset({"UTC", "UT", "UT1", "GMT", "Z", "UTC(NIST)", "UTC(USNO)"})
# Converted with astropy.time (GPS through TAI).
_ASTROPY_SCALES = {"TT": "tt", "TDT": "tt", "ET": "tt", "TAI": "tai", "IAT": "tai",
                   "GPS": "tai", "TDB": "tdb", "TCG": "tcg", "TCB": "tcb"}  # fmt: skip

def text_value(value: Any) -> str | None:
    """A keyword value as text, or None when blank or not a plain value."""
    if isinstance(value, str):
        text = value.strip()
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        text = str(value)
    else:
        # astropy's Undefined (a card with no value) and the like.
        return None
    return text or None


class Found(NamedTuple):
    when: datetime | None
    keyword: str
    raw: str
    problem: str | None  # why ``when`` is None
    blocking: bool = False  # an unreadable value: DATE must not silently replace it


def one_keyword(keyword: str, value: str, get: Getter) -> Found:
    """What one date keyword of one HDU gives; never raises."""
    if keyword in JULIAN:
        when = JULIAN[keyword](value)
        if when is None:
            return Found(None, keyword, value, f"{keyword} '{value}' is not a Julian date "
                          "in 1900-2100")  # fmt: skip
        return Found(when, keyword, value, None)
    if keyword in OBS_DATE_KEYWORDS and is_date_only(value):
        for time_keyword in TIME_KEYWORDS:
            time_value = get(time_keyword)
            if time_value is None:
                continue
            combined = combine_date_time(value, time_value)
            label, raw = f"{keyword} + {time_keyword}", f"{value} {time_value}"
            if combined is None:
                return Found(None, label, raw, f"{keyword} '{value}' with {time_keyword} "
                              f"'{time_value}' is not a valid date and time", True)  # fmt: skip
            return checked(Found(combined, label, raw, None))
    parsed = parse_header_date(value)
    if parsed is None:
        return Found(None, keyword, value, f"{keyword} '{value}' is not a valid date", True)
    return checked(Found(parsed, keyword, value, None))


def checked(found: Found) -> Found:
    if plausible(found.when):
        return found
    # 0001-01-01 and the like: a capture program without a clock. No date for this
    # keyword, not an error: a less trusted keyword may still date the file.
    return found._replace(when=None, problem=f"{found.keyword} '{found.raw}' has a year "
                          f"outside {FIRST_YEAR}-{LAST_YEAR}")  # fmt: skip


def pick_date(
    hdus: list[Getter], extra: list[Found] = ()  # type: ignore[assignment]
) -> tuple[Found | None, int | None, list[Found]]:
    """The most trusted usable date: (found, HDU index or None, what was passed over).

    Observation keywords first (in OBS_KEYWORDS order, each over every HDU), then the
    ``extra`` dates (XISF properties), and DATE last, only when no observation keyword
    was present but unreadable: a present but unparsable DATE-OBS is reported, not
    silently replaced by the file-writing date.
    """
    passed: list[Found] = []
    for keyword in DATE_KEYWORDS:
        if keyword == "DATE":
            for found in extra:
                if found.when is not None:
                    return found, None, passed
                passed.append(found)
            if any(f.blocking for f in passed):
                break
        for index, get in enumerate(hdus):
            value = get(keyword)
            if value is None:
                continue
            found = one_keyword(keyword, value, get)
            if found.when is not None:
                return found, index, passed
            passed.append(found)
    return None, None, passed


def in_utc(found: Found, system: str | None) -> tuple[datetime, str | None]:
    """The date in UTC according to TIMESYS (and the system, when converted)."""
    when = found.when
    assert when is not None  # only called for a found date
    system = system.upper() if system else None
    if system is None or (when.tzinfo is not None and found.keyword not in JULIAN):
        return when, None  # no TIMESYS, or an explicit Z or offset that says it all
    if system in _UTC_SYSTEMS:
        return when.replace(tzinfo=timezone.utc), None
    scale = _ASTROPY_SCALES.get(system)
    if scale is None:
        return when, None  # LOCAL or unknown: as written
    naive = when.replace(tzinfo=None)
    if system == "GPS":
        naive += timedelta(seconds=19)  # GPS = TAI - 19 s
    return convert_scale(naive, scale), system


def convert_scale(when: datetime, scale: str) -> datetime:
    """``when`` on time scale ``scale`` as an aware UTC datetime (astropy.time, offline)."""
    from astropy.time import Time
    from astropy.utils import iers

    # Leap seconds come with the installed erfa/astropy; never fetch tables from the net.
    iers.conf.auto_download = False
    silence(Warning)
    utc = Time(when, scale=scale).utc.to_datetime()
    return utc.replace(tzinfo=timezone.utc)
