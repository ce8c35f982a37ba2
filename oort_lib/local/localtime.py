"""The local time of an observation, and where it came from.

Nights are local, but headers mostly carry UTC (N.I.N.A., Ekos, SharpCap and MaxIm DL
write DATE-OBS in UTC, with or without a ``Z``). The local wall time is taken, in order of
trust, from:

1. the watched folder's time zone (an IANA name): the header time is UTC, converted;
2. the header's ``DATE-LOC`` (the local wall time N.I.N.A. and others write);
3. the site longitude (``SITELONG``, ``OBSGEO-L``, ``LONG-OBS``, or the telescope's
   coordinates): local mean solar time, UTC + longitude / 15 h, which puts local noon
   within about half an hour of the sun's meridian passage, as the night rule wants;
4. the Oort docs' assumption: the header time is already local (``assumed`` is True, and
   the user is told to set ``--timezone``).

Pure functions, no I/O.
"""

from __future__ import annotations

import math
import re
from datetime import datetime, timedelta
from datetime import timezone as dt_timezone
from typing import NamedTuple

__all__ = [
    "ASSUMED",
    "CLOCK_TOLERANCE",
    "LocalTime",
    "local_time",
    "longitude_from_geocentric",
    "mean_solar_time",
    "parse_longitude",
]

# How far DATE-LOC may stray from DATE-OBS converted to the folder's zone before the user
# is told: capture PCs synchronise their clocks to a few seconds, exposures last minutes.
CLOCK_TOLERANCE = timedelta(minutes=5)

ASSUMED = "assumed local"
TIMEZONE = "time zone"
DATE_LOC = "DATE-LOC"
LONGITUDE = "longitude"

# The Oort docs' assumption as a source (explain: "local time: ..., from <detail>"), and
# the advice that goes with it as its one warning (said once, as explain's note).
_ASSUMED = ("the header time as written, taken as local time (no time zone for the folder, "
            "no DATE-LOC, no site longitude)")
_ADVICE = ("if the capture program writes UTC (N.I.N.A., Ekos, SharpCap, MaxIm DL do), "
           "watch the folder again with --timezone=ZONE")


class LocalTime(NamedTuple):
    """A local wall time, the kind of source that gave it and a sentence saying which."""

    when: datetime  # naive: the wall clock at the observatory
    source: str  # "time zone", "DATE-LOC", "longitude" or "assumed local"
    detail: str  # for people: "time zone Australia/Sydney (folder setting)"
    warnings: tuple[str, ...] = ()

    @property
    def assumed(self) -> bool:
        return self.source == ASSUMED


def _as_utc(when: datetime) -> datetime:
    """An aware UTC value: a naive header time is UTC (the FITS standard's default)."""
    if when.tzinfo is None:
        return when.replace(tzinfo=dt_timezone.utc)
    return when.astimezone(dt_timezone.utc)


def mean_solar_time(when: datetime, longitude: float) -> datetime:
    """The naive local mean solar time at ``longitude`` (degrees, east positive) of
    ``when`` (naive means UTC). Raises OverflowError only for instants within a day of
    datetime's limits (years 1 and 9999), which header readers never hand over."""
    shift = timedelta(hours=longitude / 15.0)
    return (_as_utc(when) + shift).replace(tzinfo=None)


def local_time(
    when: datetime,
    *,
    timezone: str | None = None,
    date_loc: datetime | None = None,
    longitude: float | None = None,
    longitude_source: str | None = None,
) -> LocalTime:
    """The local wall time of the header time ``when``, from the most trustworthy source.

    ``timezone`` is the folder's IANA zone, ``date_loc`` the header's DATE-LOC (its wall
    clock is used, an offset it carries is ignored), ``longitude`` the site's (degrees,
    east positive) and ``longitude_source`` the keyword or record it came from. Raises
    ValueError for an unknown zone; never raises for header values.
    """
    if timezone is not None:
        from oort_lib.local.rules import zone

        local = _as_utc(when).astimezone(zone(timezone)).replace(tzinfo=None)
        warnings: tuple[str, ...] = ()
        if date_loc is not None:
            wall = date_loc.replace(tzinfo=None)
            if abs(wall - local) > CLOCK_TOLERANCE:
                warnings = (
                    f"DATE-LOC {wall.isoformat(sep=' ')} disagrees with the header's UTC "
                    f"time in {timezone} ({local.isoformat(sep=' ')}): the capture "
                    "computer's clock or time zone may be wrong",
                )
        return LocalTime(local, TIMEZONE, f"time zone {timezone} (folder setting)", warnings)
    if date_loc is not None:
        wall = date_loc.replace(tzinfo=None)
        return LocalTime(wall, DATE_LOC, "DATE-LOC (local time written by the capture program)",
                         _offset_warnings(wall, when))  # fmt: skip
    if longitude is not None:
        side = "E" if longitude >= 0 else "W"
        where = f" ({longitude_source})" if longitude_source else ""
        return LocalTime(
            mean_solar_time(when, longitude),
            LONGITUDE,
            f"local mean solar time at longitude {abs(longitude):.4f}° {side}{where}",
        )
    # The wall clock as written, its offset ignored: the Oort docs' rule.
    return LocalTime(when.replace(tzinfo=None), ASSUMED, _ASSUMED, (_ADVICE,))


def _offset_warnings(wall: datetime, when: datetime) -> tuple[str, ...]:
    """A warning when DATE-LOC minus the (UTC) header time is no time zone offset."""
    offset = wall - _as_utc(when).replace(tzinfo=None)
    quarter = timedelta(minutes=15)
    # Zone offsets are whole quarters of an hour within -12 h .. +14 h.
    off_grid = abs(offset - round(offset / quarter) * quarter)
    if timedelta(hours=-12, minutes=-5) <= offset <= timedelta(hours=14, minutes=5) and (
        off_grid <= CLOCK_TOLERANCE
    ):
        return ()
    return (
        f"DATE-LOC {wall.isoformat(sep=' ')} is {_hours(offset)} from the header's UTC time: "
        "not a time zone offset; the capture computer's clock or time zone may be wrong",
    )


def _hours(delta: timedelta) -> str:
    minutes = round(delta.total_seconds() / 60)
    sign = "-" if minutes < 0 else "+"
    return f"{sign}{abs(minutes) // 60}h{abs(minutes) % 60:02d}"


_SEXAGESIMAL = re.compile(
    r"""(?P<sign>[+-])?\s*(?P<deg>\d{1,3}(?:\.\d*)?)
        (?:\s*[:d°\s]\s*(?P<min>\d{1,2}(?:\.\d*)?)
           (?:\s*[:m'\s]\s*(?P<sec>\d{1,2}(?:\.\d*)?)\s*(?:s|")?)?)?
        \s*(?P<side>[EWew])?""",
    re.VERBOSE,
)


def parse_longitude(value: object) -> float | None:
    """Degrees east in [-180, 180) from a header longitude, or None. Never raises.

    Accepts a number (degrees, east positive; 0-360 is folded) and text in decimal or
    sexagesimal degrees (``+151 12 30.5``, ``-70:44:12``, ``70d44m12s W``). Minutes and
    seconds below 60 only: anything else is not a longitude.
    """
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        degrees = float(value)
    elif isinstance(value, str):
        match = _SEXAGESIMAL.fullmatch(value.strip().strip("'\" "))
        if match is None:
            return None
        degrees = float(match["deg"])
        minutes = float(match["min"] or 0)
        seconds = float(match["sec"] or 0)
        if minutes >= 60 or seconds >= 60 or (match["min"] and "." in match["deg"]):
            return None
        degrees += minutes / 60 + seconds / 3600
        negative = match["sign"] == "-"
        if match["side"]:
            if match["sign"]:
                return None  # "-70 W": which one does it mean?
            negative = match["side"] in "Ww"
        degrees = -degrees if negative else degrees
    else:
        return None
    if not math.isfinite(degrees) or not -180 <= degrees <= 360:
        return None
    return (degrees + 180) % 360 - 180


def longitude_from_geocentric(x: object, y: object) -> float | None:
    """Degrees east from OBSGEO-X/OBSGEO-Y (metres, geocentric), or None. Never raises."""
    try:
        fx, fy = float(x), float(y)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    # Within 1 km of the axis the longitude means nothing (and 0, 0 is a blank default).
    if not (math.isfinite(fx) and math.isfinite(fy)) or math.hypot(fx, fy) < 1000:
        return None
    return math.degrees(math.atan2(fy, fx))


def folder_clock(timezone: str | None, longitude: float | None) -> str:
    """What gives the local time of a folder's files whose header has no DATE-LOC or site
    longitude of its own, for people: the folder's time zone, else the telescope's
    longitude (`longitude`, degrees east), else the header clock taken as local time."""
    if timezone:
        return f"time zone {timezone} (header times in UTC, converted)"
    if longitude is not None:
        return f"local mean solar time at the telescope's longitude {longitude:.2f}°"
    return "the header time taken as local time"
