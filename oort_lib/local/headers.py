"""Read the observation date and target of a FITS or XISF file from its header only.

Headers are read block by block and parsed with astropy's ``Header``; the data units are
skipped with a seek, never read or decompressed. ``fits.open`` is not used because on a
``.gz`` or ``.bz2`` file it decompresses the whole stream before handing back even the
primary header. astropy and xisf are imported on first use: importing astropy costs about
half a second, which a run with nothing new to read must never pay.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone
from typing import IO, Any, NamedTuple

from oort_lib.errors import FileProblem, LocalTransient, NotWhole
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
from oort_lib.local.fitsfile import HeaderTooLong, fits_hdus, is_damage, reader_bug, silence
from oort_lib.local.localtime import longitude_from_geocentric, parse_longitude
from oort_lib.local.scan import display_name

__all__ = ["HeaderInfo", "read_header", "read_whole"]

# In order of trust. DATE is the date the file was written: only a fallback, so that an
# extension's DATE-OBS (HST, archives) beats the primary's DATE.
OBS_KEYWORDS = ("DATE-OBS", "DATE_OBS", "MJD-OBS", "JD")
DATE_KEYWORDS = (*OBS_KEYWORDS, "DATE")
# Only these may hold a date-only value completed by a time keyword.
OBS_DATE_KEYWORDS = ("DATE-OBS", "DATE_OBS")
TIME_KEYWORDS = ("TIME-OBS", "UT", "UTSTART")
JULIAN = {"MJD-OBS": from_mjd, "JD": from_jd}
LONGITUDE_KEYWORDS = ("SITELONG", "OBSGEO-L", "LONG-OBS")
FRAME_KEYWORDS = ("IMAGETYP", "FRAME", "OBSTYPE")
XISF_TIME_PROPERTY = "Observation:Time:Start"
XISF_OBJECT_PROPERTY = "Observation:Object:Name"
XISF_LONGITUDE_PROPERTY = "Observation:Location:Longitude"
# What the rules ask of an XISF header: only these are kept while its XML streams by.
_XISF_KEYWORDS = frozenset((*DATE_KEYWORDS, *TIME_KEYWORDS, *LONGITUDE_KEYWORDS,
                            *FRAME_KEYWORDS, "OBJECT", "DATE-LOC", "TIMESYS", "OBSGEO-X",
                            "OBSGEO-Y"))  # fmt: skip
_XISF_PROPERTIES = frozenset((XISF_TIME_PROPERTY, XISF_OBJECT_PROPERTY,
                              XISF_LONGITUDE_PROPERTY))  # fmt: skip

# Headers of this many HDUs at most are read (a .fz keeps its header in HDU 1, archives
# their DATE-OBS in extension 1 or 2): bounded work even for a file of a thousand HDUs.
_MAX_HDUS = 10

_NO_FITS_DATE = "no DATE-OBS, DATE_OBS, MJD-OBS, JD or DATE keyword"
_NO_XISF_DATE = f"{_NO_FITS_DATE} and no {XISF_TIME_PROPERTY} property"

# TIMESYS values that are UTC for a night's purpose (UT1 is within 0.9 s of UTC).
_UTC_SYSTEMS = frozenset({"UTC", "UT", "UT1", "GMT", "Z", "UTC(NIST)", "UTC(USNO)"})
# Converted with astropy.time (GPS through TAI).
_ASTROPY_SCALES = {"TT": "tt", "TDT": "tt", "ET": "tt", "TAI": "tai", "IAT": "tai",
                   "GPS": "tai", "TDB": "tdb", "TCG": "tcg", "TCB": "tcb"}  # fmt: skip

Getter = Callable[[str], Any]


@dataclass(frozen=True)
class HeaderInfo:
    """What a header says about when, where and what.

    ``date`` is the header time (naive when the header gives no zone; aware UTC when it
    says UTC through a ``Z``, an offset, a Julian date or TIMESYS). The fields after
    ``date_problem`` say where each fact came from, for `explain` and the manifest.
    """

    date: datetime | None
    target: str | None
    date_problem: str | None = None
    date_keyword: str | None = None  # "DATE-OBS", "DATE-OBS + TIME-OBS", "MJD-OBS"...
    date_hdu: int | None = None  # None for an XISF property
    date_raw: str | None = None  # the value(s) as written
    timesys: str | None = None  # TIMESYS when it was not UTC and the time was converted
    date_loc: datetime | None = None
    longitude: float | None = None  # degrees east
    longitude_keyword: str | None = None
    frame_type: str | None = None
    frame_keyword: str | None = None
    target_hdu: int | None = None
    notes: tuple[str, ...] = ()  # keywords passed over, and why

    @property
    def date_source(self) -> str | None:
        """'DATE-OBS in HDU 1' (or the XISF property), or None without a date."""
        if self.date is None or self.date_keyword is None:
            return None
        where = f" in HDU {self.date_hdu}" if self.date_hdu is not None else ""
        return f"{self.date_keyword}{where}"


def read_whole(path: str, size: int | None = None) -> HeaderInfo:
    """read_header of a file checked whole first (wholeness.check, its first `size`
    bytes), the file opened once for both.

    Raises NotWhole as the check does, except that a damaged file whose header cannot
    be read at all (garbage with a FITS name) raises that FileProblem: it is skipped for
    it, as ever. Raises read_header's errors otherwise.
    """
    from oort_lib.local.wholeness import check

    path = os.fspath(path)
    try:
        with open(path, "rb") as opened:
            try:
                check(path, size, opened=opened)
            except NotWhole as exc:
                if not exc.short:
                    read_header(path, opened)
                raise
            return read_header(path, opened)
    except OSError as exc:
        why = _os_reason(exc)
        raise LocalTransient(f"{display_name(path)}: {why}", why) from exc


def read_header(path: str, opened: IO[bytes] | None = None) -> HeaderInfo:
    """Read the date and target of the FITS or XISF file at ``path`` (header only).

    Dispatches on the name: ``.xisf`` is XISF, anything else FITS (plain, ``.gz``, ``.bz2``
    or tile-compressed ``.fz``; gzip and bzip2 are recognised by their magic bytes).
    Raises FileProblem when its header is truncated or corrupt (or has more than
    MAX_HEADER_CARDS cards), LocalTransient when the file cannot be read now (I/O error,
    vanished, permission denied: retried later) or when the reader fails in a way no
    damaged file explains (an internal error, retried with backoff); a readable header
    without a usable date is not an error (``date`` is None and ``date_problem`` says why).
    ``opened``: the FITS file, already open (left open).
    """
    path = os.fspath(path)
    shown = display_name(path)
    try:
        if path.lower().endswith(".xisf"):
            return _read_xisf(path, shown)
        return _read_fits(path, shown, opened)
    except FileProblem:
        raise
    except OSError as exc:
        why = _os_reason(exc)
        raise LocalTransient(f"{shown}: {why}", why) from exc


def _os_reason(exc: OSError) -> str:
    if isinstance(exc, PermissionError):
        return "permission denied"
    if isinstance(exc, FileNotFoundError):
        return "vanished before its header could be read"
    return f"unreadable: {exc.strerror or exc}"


# --- the choice of date, shared by FITS and XISF ------------------------------------------


def _text(value: Any) -> str | None:
    """A keyword value as text, or None when blank or not a plain value."""
    if isinstance(value, str):
        text = value.strip()
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        text = str(value)
    else:
        # astropy's Undefined (a card with no value) and the like.
        return None
    return text or None


class _Found(NamedTuple):
    when: datetime | None
    keyword: str
    raw: str
    problem: str | None  # why ``when`` is None
    blocking: bool = False  # an unreadable value: DATE must not silently replace it


def _one_keyword(keyword: str, value: str, get: Getter) -> _Found:
    """What one date keyword of one HDU gives; never raises."""
    if keyword in JULIAN:
        when = JULIAN[keyword](value)
        if when is None:
            return _Found(None, keyword, value, f"{keyword} '{value}' is not a Julian date "
                          "in 1900-2100")  # fmt: skip
        return _Found(when, keyword, value, None)
    if keyword in OBS_DATE_KEYWORDS and is_date_only(value):
        for time_keyword in TIME_KEYWORDS:
            time_value = get(time_keyword)
            if time_value is None:
                continue
            combined = combine_date_time(value, time_value)
            label, raw = f"{keyword} + {time_keyword}", f"{value} {time_value}"
            if combined is None:
                return _Found(None, label, raw, f"{keyword} '{value}' with {time_keyword} "
                              f"'{time_value}' is not a valid date and time", True)  # fmt: skip
            return _checked(_Found(combined, label, raw, None))
    parsed = parse_header_date(value)
    if parsed is None:
        return _Found(None, keyword, value, f"{keyword} '{value}' is not a valid date", True)
    return _checked(_Found(parsed, keyword, value, None))


def _checked(found: _Found) -> _Found:
    if plausible(found.when):
        return found
    # 0001-01-01 and the like: a capture program without a clock. No date for this
    # keyword, not an error: a less trusted keyword may still date the file.
    return found._replace(when=None, problem=f"{found.keyword} '{found.raw}' has a year "
                          f"outside {FIRST_YEAR}-{LAST_YEAR}")  # fmt: skip


def _pick_date(
    hdus: list[Getter], extra: list[_Found] = ()  # type: ignore[assignment]
) -> tuple[_Found | None, int | None, list[_Found]]:
    """The most trusted usable date: (found, HDU index or None, what was passed over).

    Observation keywords first (in OBS_KEYWORDS order, each over every HDU), then the
    ``extra`` dates (XISF properties), and DATE last, only when no observation keyword
    was present but unreadable: a present but unparsable DATE-OBS is reported, not
    silently replaced by the file-writing date.
    """
    passed: list[_Found] = []
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
            found = _one_keyword(keyword, value, get)
            if found.when is not None:
                return found, index, passed
            passed.append(found)
    return None, None, passed


def _in_utc(found: _Found, system: str | None) -> tuple[datetime, str | None]:
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
    return _convert_scale(naive, scale), system


def _convert_scale(when: datetime, scale: str) -> datetime:
    """``when`` on time scale ``scale`` as an aware UTC datetime (astropy.time, offline)."""
    from astropy.time import Time
    from astropy.utils import iers

    # Leap seconds come with the installed erfa/astropy; never fetch tables from the net.
    iers.conf.auto_download = False
    silence(Warning)
    utc = Time(when, scale=scale).utc.to_datetime()
    return utc.replace(tzinfo=timezone.utc)


def _first(hdus: list[Getter], keywords: tuple[str, ...], prefer: int | None = None):
    """(value, keyword, HDU index) of the first of ``keywords`` present, looking in HDU
    ``prefer`` first, or (None, None, None)."""
    for index in _order(len(hdus), prefer):
        for keyword in keywords:
            value = hdus[index](keyword)
            if value is not None:
                return value, keyword, index
    return None, None, None


def _longitude(hdus: list[Getter], prefer: int | None) -> tuple[float | None, str | None]:
    for index in _order(len(hdus), prefer):
        get = hdus[index]
        for keyword in LONGITUDE_KEYWORDS:
            value = get(keyword)
            if value is None:
                continue
            degrees = parse_longitude(_number_or_text(value))
            if degrees is not None:
                return degrees, f"{keyword} = {value}"
        degrees = longitude_from_geocentric(get("OBSGEO-X"), get("OBSGEO-Y"))
        if degrees is not None:
            return degrees, "OBSGEO-X/Y"
    return None, None


def _order(count: int, prefer: int | None) -> list[int]:
    order = list(range(count))
    if prefer is not None and prefer in order:
        order.remove(prefer)
        order.insert(0, prefer)
    return order


def _number_or_text(value: str) -> float | str:
    try:
        return float(value)
    except ValueError:
        return value


def _info(hdus: list[Getter], extra: list[_Found] | None = None,
          extra_target: str | None = None, no_date: str = _NO_FITS_DATE) -> HeaderInfo:
    """Everything the header says, from the getters of its HDUs (primary first).

    ``extra`` are XISF property dates, tried after the FITS observation keywords but
    before DATE; ``extra_target`` an XISF object name, used when no OBJECT is present.
    """
    found, index, passed = _pick_date(hdus, extra or [])
    notes = tuple(p.problem for p in passed if p.problem)
    when = timesys = None
    if found is not None:
        # TIMESYS of the HDU that gave the date, else the primary's (archives keep it there).
        system = hdus[index]("TIMESYS") if index is not None else None
        if system is None and hdus:
            system = hdus[0]("TIMESYS")
        when, timesys = _in_utc(found, system)
    # The primary's OBJECT; else the one of the HDU that gave the date; else any.
    target, _kw, target_hdu = _first(hdus, ("OBJECT",), 0 if hdus and hdus[0]("OBJECT")
                                     else index)  # fmt: skip
    if target is None and extra_target:
        target, target_hdu = extra_target, None
    date_loc_value, _kw, _hdu = _first(hdus, ("DATE-LOC",), index)
    date_loc = parse_header_date(date_loc_value) if date_loc_value else None
    longitude, longitude_keyword = _longitude(hdus, index)
    frame_value, frame_keyword, _hdu = _first(hdus, FRAME_KEYWORDS, index)
    return HeaderInfo(
        date=when,
        target=target,
        date_problem=None if when is not None else (notes[0] if notes else no_date),
        date_keyword=found.keyword if found else None,
        date_hdu=index,
        date_raw=found.raw if found else None,
        timesys=timesys,
        date_loc=date_loc if plausible(date_loc) else None,
        longitude=longitude,
        longitude_keyword=longitude_keyword,
        frame_type=frame_value,
        frame_keyword=frame_keyword,
        target_hdu=target_hdu,
        notes=notes,
    )


# --- FITS ---------------------------------------------------------------------------------


def _read_fits(path: str, shown: str, opened: IO[bytes] | None = None) -> HeaderInfo:
    getters: list[Getter] = []
    hdus = fits_hdus(path, _MAX_HDUS, _text, opened)
    try:
        for get, compressed in hdus:
            getters.append(get)
            # DATE-OBS is the most trusted keyword: past it, look further only for a
            # missing OBJECT, and only where skipping data is a cheap seek (finding it in
            # a compressed stream would decompress the whole file).
            if get("DATE-OBS") is not None and (getters[0]("OBJECT") is not None
                                                or get("OBJECT") is not None or compressed):
                break
    except Exception as exc:
        # astropy, gzip, bz2 and zlib each have their own errors for a damaged file
        # (ValueError, VerifyError, EOFError, BadGzipFile, zlib.error...); all mean the same.
        if isinstance(exc, OSError) and exc.errno is not None:
            raise
        if not is_damage(exc):
            raise reader_bug(shown, exc) from exc
        if not any(get(k) is not None for get in getters for k in DATE_KEYWORDS):
            if isinstance(exc, HeaderTooLong):  # "header larger than N cards": not corrupt
                raise FileProblem(f"{shown}: {exc}", str(exc)) from exc
            reason = str(exc) or type(exc).__name__
            why = f"truncated or corrupt FITS header ({reason})"
            raise FileProblem(f"{shown}: {why}", why) from exc
        # Damage after the HDUs that hold a date only cost us later keywords.
    finally:
        hdus.close()
    return _info(getters)


# --- XISF ---------------------------------------------------------------------------------


def _read_xisf(path: str, shown: str) -> HeaderInfo:
    from oort_lib.local.xisffile import keyword_value, property_value, read_metadata

    try:
        images, file_meta = read_metadata(path, _XISF_KEYWORDS, _XISF_PROPERTIES)
    except OSError:
        raise
    except Exception as exc:
        # xisffile decides what damage is (bad XML, not an XISF header) and says so with
        # ValueError; it tolerates odd but harmless content, so anything else is a bug.
        if not isinstance(exc, ValueError):
            raise reader_bug(shown, exc) from exc
        reason = str(exc) or type(exc).__name__
        why = f"corrupt XISF header ({reason})"
        raise FileProblem(f"{shown}: {why}", why) from exc

    keyword_sets = [image.get("FITSKeywords") or {} for image in images]
    property_sets = [image.get("XISFProperties") or {} for image in images] + [file_meta]
    getters: list[Getter] = [
        lambda k, kw=keywords: _text(keyword_value(kw.get(k))) for keywords in keyword_sets
    ]
    extra = []
    for properties in property_sets:
        value = _text(property_value(properties, XISF_TIME_PROPERTY))
        if value is None:
            continue
        when = parse_header_date(value)
        if when is None:
            extra.append(_Found(None, XISF_TIME_PROPERTY, value,
                                f"{XISF_TIME_PROPERTY} '{value}' is not a valid date"))
        else:
            extra.append(_checked(_Found(when, XISF_TIME_PROPERTY, value, None)))
    targets = (_text(property_value(p, XISF_OBJECT_PROPERTY)) for p in property_sets)
    info = _info(getters, extra, next((t for t in targets if t), None), _NO_XISF_DATE)
    if info.longitude is None:
        for properties in property_sets:
            value = property_value(properties, XISF_LONGITUDE_PROPERTY)
            degrees = parse_longitude(_number_or_text(value) if isinstance(value, str)
                                      else value)  # fmt: skip
            if degrees is not None:
                info = replace(info, longitude=degrees,
                               longitude_keyword=f"{XISF_LONGITUDE_PROPERTY} = {value}")
                break
    return info
