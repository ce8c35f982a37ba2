"""The night a 2026 Arcsecond server files a file under, and what decided it.

One function for both sides, so that they cannot drift: the client's prediction (the dry
run, `explain`, the manifest and so the report) and the sandbox's own night logs.

The rule (inferred, see the README's "Arcsecond's two API generations"): the server knows
the file's header and the telescope's site on Arcsecond, nothing of the watched folder.
The local time is the header's UTC time in the site's time zone if the server gives one,
else local mean solar time at the site's longitude, else the header's clock as written
(a time with an offset is read in UTC); nights run from local noon to local noon. The
folder's --timezone, DATE-LOC and a longitude in the header play no part.

Pure functions, no I/O.
"""

from __future__ import annotations

from datetime import date, datetime
from datetime import timezone as dt_timezone
from typing import NamedTuple

from oort_lib.local.localtime import mean_solar_time
from oort_lib.local.rules import night_date, zone
from oort_lib.local.site import Site, east

__all__ = ["HEADER_CLOCK", "SITE_LONGITUDE", "SITE_ZONE", "ServerNight", "night_label",
           "server_night"]  # fmt: skip

# What gave the local time (the manifest's time_source of a 2026 file).
SITE_ZONE = "site time zone"
SITE_LONGITUDE = "site longitude"
HEADER_CLOCK = "header clock"


class ServerNight(NamedTuple):
    """The night a 2026 server gives a file, the local time it read, and why."""

    night: date
    local: datetime  # naive: the wall clock the server reads
    source: str  # SITE_ZONE, SITE_LONGITUDE or HEADER_CLOCK
    label: str  # "night by the telescope's site at longitude -70.74°"
    detail: str  # where the local time comes from, for `explain`


def night_label(site: Site | None) -> str:
    """How the server dates the nights of a telescope at ``site``, for people."""
    return _words(_source(site or Site()), site or Site())[0]


def _source(site: Site) -> str:
    if site.timezone is not None:
        try:
            zone(site.timezone)
            return SITE_ZONE
        except ValueError:
            pass  # not a zone: the longitude, if there is one
    return SITE_LONGITUDE if site.longitude is not None else HEADER_CLOCK


def _words(source: str, site: Site) -> tuple[str, str]:
    if source == SITE_ZONE:
        return (f"night by the telescope's site, time zone {site.timezone}",
                f"time zone {site.timezone} (the telescope's site on Arcsecond, as the "
                "server reads it)")
    if source == SITE_LONGITUDE:
        where = f"longitude {east(site.longitude or 0.0):.2f}°"
        return (f"night by the telescope's site at {where}",
                f"local mean solar time at {where} (the telescope's site on Arcsecond, "
                "as the server reads it)")
    return ("night by the header clock: the telescope has no site on Arcsecond",
            "the header clock as written (the telescope has no site on Arcsecond: the "
            "server takes the header time as local time)")


def server_night(header_date: datetime, site: Site | None) -> ServerNight:
    """The night a 2026 server files a file dated ``header_date`` (naive: UTC, as FITS
    says, or the capture program's clock) under, for a telescope at ``site`` (None or an
    empty Site: no site). Raises OverflowError only for dates within a day of datetime's
    limits, which header readers never give."""
    site = site or Site()
    if header_date.tzinfo is not None:
        header_date = header_date.astimezone(dt_timezone.utc).replace(tzinfo=None)
    source = _source(site)
    if source == SITE_ZONE:
        local = (header_date.replace(tzinfo=dt_timezone.utc)
                 .astimezone(zone(site.timezone or "UTC")).replace(tzinfo=None))
    elif source == SITE_LONGITUDE:
        local = mean_solar_time(header_date, east(site.longitude or 0.0))
    else:
        local = header_date
    label, detail = _words(source, site)
    return ServerNight(night_date(local), local, source, label, detail)
