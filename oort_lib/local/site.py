"""A telescope's site as the server gives it, and what it says about a folder's nights.

A 2026 Arcsecond server builds night logs itself, at the site of the dataset's telescope
(servernight.py). Where a telescope object carries its site is uncertain: the official
client reads only ``uuid``, ``name`` and ``observing_site``; the 2021 generation and the
sandbox give ``coordinates`` (an object with ``longitude``: docs/arcsecond-api.md,
"Telescopes and organisations"). So the site is read tolerantly:

- the longitude (degrees east) from ``coordinates.longitude``, else a ``longitude`` of the
  telescope itself, else from an ``observing_site`` given as an object (its own
  ``coordinates`` or ``longitude``);
- the time zone (an IANA name) from ``time_zone``, ``timezone`` or ``tz`` in the same
  places; a name that is no IANA zone is ignored (the longitude is then used).

Pure functions, no I/O.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from datetime import timezone as dt_timezone
from typing import NamedTuple

__all__ = ["DISAGREEMENT", "NO_SITE", "Site", "east", "site_of", "site_offset",
           "site_warnings"]  # fmt: skip

# Beyond this the folder's time zone and the site's clock put some frames on other nights.
DISAGREEMENT = timedelta(hours=1)

NO_SITE = "set its site on Arcsecond, or nights follow the header clock"

_ZONE_KEYS = ("time_zone", "timezone", "tz")


class Site(NamedTuple):
    """Where a telescope is, as far as nights go (None: the server does not say)."""

    longitude: float | None = None  # degrees east, -180 <= longitude < 180
    timezone: str | None = None  # an IANA name

    @property
    def known(self) -> bool:
        return self.longitude is not None or self.timezone is not None

    def describe(self) -> str:
        """For people: "time zone Pacific/Honolulu", "longitude -70.74°" or "no site"."""
        if self.timezone is not None:
            return f"time zone {self.timezone}"
        if self.longitude is not None:
            return f"longitude {east(self.longitude):.2f}°"
        return "no site"


def east(longitude: float) -> float:
    """A longitude in degrees east folded into [-180, 180) (0-360 values are common)."""
    return (longitude + 180.0) % 360.0 - 180.0


def _longitude(value: object) -> float | None:
    if isinstance(value, bool):
        return None
    try:
        degrees = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    if not math.isfinite(degrees) or not -180.0 <= degrees <= 360.0:
        return None
    return east(degrees)


def _zone(value: object) -> str | None:
    if not isinstance(value, str) or not value.strip():
        return None
    from oort_lib.local.rules import zone

    name = value.strip()
    try:
        zone(name)
    except ValueError:
        return None
    return name


def site_of(telescope: object) -> Site:
    """The site of a telescope object as the server answered it. Never raises: a field
    of another shape than expected is no site."""
    if not isinstance(telescope, dict):
        return Site()
    # The telescope's own coordinates and fields first, then its observing site's (in
    # 2026 usually a UUID only: nothing to read there).
    observing = telescope.get("observing_site")
    observing = observing if isinstance(observing, dict) else {}
    places = [place for place in (telescope.get("coordinates"), telescope,
                                  observing.get("coordinates"), observing)
              if isinstance(place, dict)]
    longitude = next((found for place in places
                      if (found := _longitude(place.get("longitude"))) is not None), None)
    zone = next((found for place in places for key in _ZONE_KEYS
                 if (found := _zone(place.get(key))) is not None), None)
    return Site(longitude, zone)


def _zone_offset(name: str, at: datetime) -> timedelta:
    from oort_lib.local.rules import zone

    return at.astimezone(zone(name)).utcoffset() or timedelta(0)


def site_offset(site: Site, at: datetime) -> timedelta | None:
    """How far the site's clock is ahead of UTC at the aware instant ``at`` (the time
    zone's offset then, else local mean solar time's), or None without a site. Never
    raises: a zone that is no zone counts as absent, as in server_night."""
    if site.timezone is not None:
        try:
            return _zone_offset(site.timezone, at)
        except ValueError:
            pass  # not a zone after all: the longitude, as server_night does
    if site.longitude is not None:
        return timedelta(hours=east(site.longitude) / 15.0)
    return None


def _hours(delta: timedelta) -> str:
    return f"{round(abs(delta.total_seconds()) / 900) / 4:g} h"


def site_warnings(site: Site, *, telescope: str, timezone: str | None,
                  at: datetime | None = None) -> list[str]:
    """What a person must know about the nights of a 2026 folder on ``telescope`` whose
    site is ``site`` and whose own time zone setting is ``timezone``: a telescope with no
    site, a --timezone that the server never sees, and whether the two disagree by more
    than an hour at ``at`` (aware; default now). Raises ValueError for an unknown
    ``timezone`` (the settings checked it already)."""
    at = at or datetime.now(dt_timezone.utc)
    notes = []
    if not site.known:
        notes.append(f"telescope {telescope} has no site on Arcsecond: {NO_SITE}.")
    if timezone:
        used = (f"the telescope's site ({site.describe()})" if site.known
                else "the header clock, the telescope having no site")
        note = f"--timezone={timezone} does not reach a 2026 server: it files nights by {used}"
        offset = site_offset(site, at)
        gap = None if offset is None else offset - _zone_offset(timezone, at)
        if gap is not None and abs(gap) > DISAGREEMENT:
            note += (f"; {timezone} and the site disagree by {_hours(gap)}, and the "
                     "server uses the site")
        notes.append(note + ".")
    return notes


def nights_lines(site: Site, *, telescope: str, timezone: str | None,
                 at: datetime | None = None) -> list[str]:
    """What `watch` says of a 2026 folder's nights: the server dates them from the
    telescope's site (else the header clock), and the warnings of site_warnings.
    Raises ValueError for an unknown ``timezone``."""
    if site.known:
        how = f"from the telescope's site ({site.describe()})"
    else:
        how = "from the header clock (the telescope has no site on Arcsecond)"
    return [f"Nights: dated by the server {how}, local noon to local noon",
            *(f"Warning: {note}" for note in site_warnings(
                site, telescope=telescope, timezone=timezone, at=at))]


def telescope_lines(telescope: dict, watched: list[tuple[str, str | None]]) -> list[str]:
    """What `telescopes` says under a telescope of a 2026 server: its site, or that it
    has none, and for each of its watched folders (path, --timezone) with a time zone
    that the server never sees. Raises ValueError for an unknown time zone of a folder
    (the settings checked them already)."""
    site = site_of(telescope)
    name = str(telescope.get("name") or telescope.get("uuid"))
    if site.known:
        lines = [f"      site: {site.describe()} (the server dates nights by it)"]
    else:
        lines = [f"      no site on Arcsecond: {NO_SITE}"]
    for path, timezone in watched:
        if timezone:
            lines += [f"      watched folder {path}: {note}" for note in site_warnings(
                site, telescope=name, timezone=timezone) if note.startswith("--timezone")]
    return lines
