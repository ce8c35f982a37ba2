"""The Oort-Cloud rules, made precise: which night, which kind of object, which names.

Pure functions, no I/O, so the rules can be tested exhaustively and reused by the planner,
the dry run and the report alike.
"""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta
from datetime import timezone as dt_timezone
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

__all__ = [
    "CALIBRATION_KEYWORDS",
    "CLASSIFY_MODES",
    "classify",
    "decide_kind",
    "FRAME_CLASSES",
    "frame_class",
    "frame_kind",
    "dataset_name",
    "is_calibration",
    "night_date",
    "target_name",
    "zone",
]

CALIBRATION_KEYWORDS = ("bias", "dark", "flat", "calib")

_ONE_DAY = timedelta(days=1)


@lru_cache(maxsize=32)
def zone(name: str) -> ZoneInfo:
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
        if when.tzinfo is None:
            when = when.replace(tzinfo=dt_timezone.utc)
        local = when.astimezone(zone(timezone))
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


# --- calibration or observation from the header's frame type ------------------------------

CLASSIFY_MODES = ("folder", "header")

# Spellings of N.I.N.A. ("LIGHT", "FLAT", "DARKFLAT"), MaxIm DL ("Light Frame", "Flat
# Field", "Bias Frame"), SGP, Ekos/INDI ("Light", "Bias"), ASIAIR, PixInsight ("Master
# Dark") and the archives ("OBJECT", "zero", "SKYFLAT", "DOMEFLAT", "arc", "comp").
# Compared without case, spaces, dashes or underscores; a word inside ("masterflat",
# "flatfield", "darkflat") is enough for the calibration words, which no light frame uses.
_CALIBRATION_WORDS = ("bias", "zero", "offset", "dark", "flat", "calib", "twilight")
_CALIBRATION_NAMES = frozenset(
    {"arc", "arcs", "comp", "comparison", "lamp", "arclamp", "wavecal", "wave"}
)
_OBSERVATION_NAMES = frozenset(
    {"light", "lightframe", "lights", "object", "obj", "science", "sci", "target",
     "masterlight", "std", "standard"}
)  # fmt: skip
_NOT_LETTERS = re.compile(r"[^a-z]")


def frame_kind(frame_type: str | None) -> str | None:
    """"calibration", "observation", or None when the frame type says neither."""
    if not isinstance(frame_type, str):
        return None
    word = _NOT_LETTERS.sub("", frame_type.lower())
    if not word:
        return None
    if word in _CALIBRATION_NAMES or any(w in word for w in _CALIBRATION_WORDS):
        return "calibration"
    if word in _OBSERVATION_NAMES:
        return "observation"
    return None


def decide_kind(
    relpath: str, mode: str = "folder", frame_type: str | None = None,
    frame_keyword: str | None = None,
) -> tuple[str, str]:
    """("calibration" | "observation", why) of the file at ``relpath``.

    ``mode`` "folder" (the Oort docs' rule) looks at the folder names only; "header" takes
    the frame type (IMAGETYP, FRAME or OBSTYPE, named by ``frame_keyword``) and falls back
    to the folder names when it says nothing usable. Raises ValueError for another mode.
    """
    if mode not in CLASSIFY_MODES:
        raise ValueError(f"unknown classification mode {mode!r} (use folder or header)")
    folder = relpath.rpartition("/")[0]
    if mode == "header":
        kind = frame_kind(frame_type)
        if kind is not None:
            return kind, f"header: {frame_keyword or 'frame type'} = '{frame_type}'"
    lowered = folder.lower()
    word = next((k for k in CALIBRATION_KEYWORDS if k in lowered), None)
    if word is not None:
        kind, why = "calibration", f"folder '{folder}' contains '{word}'"
    else:
        kind, why = "observation", "no folder name contains bias, dark, flat or calib"
    if mode == "header":
        said = (f"{frame_keyword} = '{frame_type}' names no frame type" if frame_type
                else "no IMAGETYP, FRAME or OBSTYPE in the header")  # fmt: skip
        why = f"{said}; {why}"
    return kind, why


# --- light, bias, dark, flat or other: what `nights` counts -------------------------------

FRAME_CLASSES = ("light", "flat", "dark", "bias", "other")
# Checked in this order within one word: a "darkflat" (N.I.N.A.) or "flat dark" is a dark
# taken for the flats; "offset" and "zero" are other programs' names for a bias.
_CLASS_WORDS = (("bias", "bias"), ("zero", "bias"), ("offset", "bias"), ("dark", "dark"),
                ("flat", "flat"), ("twilight", "flat"))  # fmt: skip
_FOLDER_WORDS = (("bias", "bias"), ("dark", "dark"), ("flat", "flat"))


def frame_class(frame_type: str | None, folder: str, kind: str | None) -> str:
    """"light", "flat", "dark", "bias" or "other" of a frame.

    The header's frame type (IMAGETYP/FRAME/OBSTYPE, the spellings frame_kind knows)
    first; else the words bias, dark or flat in ``folder`` (relative, '/'-separated; the
    deepest folder naming one wins); else "light" for a file the rules made an
    observation (``kind``), "other" for any other (a `calib` folder, an arc lamp...).
    """
    if isinstance(frame_type, str):
        word = _NOT_LETTERS.sub("", frame_type.lower())
        if word:
            found = next((name for key, name in _CLASS_WORDS if key in word), None)
            if found is not None:
                return found
            if word in _OBSERVATION_NAMES:
                return "light"
            if word in _CALIBRATION_NAMES or "calib" in word:
                return "other"
    for part in reversed(folder.lower().split("/")):
        found = next((name for key, name in _FOLDER_WORDS if key in part), None)
        if found is not None:
            return found
    return "light" if kind == "observation" else "other"
