"""The Oort-Cloud rules, made precise: which night, which kind of object, which names.

Pure functions, no I/O, so the rules can be tested exhaustively and reused by the planner,
the dry run and the report alike.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from datetime import timezone as dt_timezone
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

__all__ = [
    "CALIBRATION_KEYWORDS",
    "classify",
    "dataset_name",
    "is_calibration",
    "night_date",
    "target_name",
]

CALIBRATION_KEYWORDS = ("bias", "dark", "flat", "calib")

_ONE_DAY = timedelta(days=1)


@lru_cache(maxsize=32)
def _zone(name: str) -> ZoneInfo:
    """The zone called ``name``; raises ValueError if there is no such IANA zone."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, TypeError) as exc:
        # ZoneInfoNotFoundError is a KeyError; callers expect the ValueError of bad input.
        raise ValueError(f"unknown time zone {name!r}") from exc


def night_date(when: datetime, timezone: str | None = None) -> date:
    """The date of the night log ``when`` belongs to (nights run from noon to noon).

    Without ``timezone``, ``when`` is the local wall time as written (an aware value keeps
    its wall-clock reading, its offset is ignored). With ``timezone`` (an IANA name), a
    naive ``when`` is UTC, an aware one is taken as it is, and both are converted to that
    zone before the noon rule. Raises ValueError for an unknown zone.
    """
    if timezone is None:
        local = when
    else:
        zone = _zone(timezone)
        if when.tzinfo is None:
            when = when.replace(tzinfo=dt_timezone.utc)
        local = when.astimezone(zone)
    # Comparing the hour (not subtracting 12 h from an aware value) keeps the rule on the
    # wall clock even on the days a DST change makes the morning 11 or 13 hours long.
    day = local.date()
    return day if local.hour >= 12 else day - _ONE_DAY


def is_calibration(folder: str) -> bool:
    """True if a component of ``folder`` (relative, '/'-separated) names a calibration."""
    # The keywords hold no '/', so a substring test on the whole path is the same as a
    # test on each component, and cheaper.
    lowered = folder.lower()
    return any(keyword in lowered for keyword in CALIBRATION_KEYWORDS)


def dataset_name(folder: str, root_name: str) -> str:
    """The dataset (and observation/calibration) name of files in ``folder``."""
    return folder if folder else f"(folder {root_name})"


def target_name(obj: str | None, dataset: str) -> str:
    """An observation's target: the header's OBJECT when it says something, else the dataset."""
    if obj is not None:
        stripped = obj.strip()
        if stripped:
            return stripped
    return dataset


def classify(relpath: str, root_name: str) -> tuple[str, str]:
    """("calibration" | "observation", dataset name) of the file at ``relpath``."""
    folder = relpath.rpartition("/")[0]
    kind = "calibration" if is_calibration(folder) else "observation"
    return kind, dataset_name(folder, root_name)
