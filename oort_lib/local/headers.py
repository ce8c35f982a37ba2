"""Read the observation date, target and frame facts (exposure, filter, frame type) of a
FITS or XISF file from its header only.

Headers are read block by block and their cards by fitscards (astropy's ``Header`` only
for the cards it leaves to astropy); the data units are skipped with a seek, never read or
decompressed. ``fits.open`` is not used because on a ``.gz`` or ``.bz2`` file it
decompresses the whole stream before handing back even the primary header. Importing
astropy costs about half a second, which a run should pay only for an odd header.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from datetime import datetime
from typing import IO, Any

from oort_lib.errors import FileProblem, LocalTransient, NotWhole
from oort_lib.local.dates import parse_header_date, plausible
from oort_lib.local.fitsfile import HeaderTooLong, fits_hdus, is_damage, reader_bug
from oort_lib.local.headerdate import (
    DATE_KEYWORDS,
    TIME_KEYWORDS,
    Found,
    Getter,
    checked,
    in_utc,
    pick_date,
    text_value,
)
from oort_lib.local.localtime import longitude_from_geocentric, parse_longitude
from oort_lib.local.scan import display_name

__all__ = ["HeaderInfo", "read_header", "read_whole"]

LONGITUDE_KEYWORDS = ("SITELONG", "OBSGEO-L", "LONG-OBS")
FRAME_KEYWORDS = ("IMAGETYP", "FRAME", "OBSTYPE")
EXPOSURE_KEYWORDS = ("EXPTIME", "EXPOSURE")  # seconds, in this order
FILTER_KEYWORD = "FILTER"
XISF_TIME_PROPERTY = "Observation:Time:Start"
XISF_OBJECT_PROPERTY = "Observation:Object:Name"
XISF_LONGITUDE_PROPERTY = "Observation:Location:Longitude"
XISF_EXPOSURE_PROPERTY = "Instrument:ExposureTime"  # seconds
XISF_FILTER_PROPERTY = "Instrument:Filter:Name"
# What the rules ask of an XISF header: only these are kept while its XML streams by.
_XISF_KEYWORDS = frozenset((*DATE_KEYWORDS, *TIME_KEYWORDS, *LONGITUDE_KEYWORDS,
                            *FRAME_KEYWORDS, *EXPOSURE_KEYWORDS, FILTER_KEYWORD, "OBJECT",
                            "DATE-LOC", "TIMESYS", "OBSGEO-X", "OBSGEO-Y"))  # fmt: skip
_XISF_PROPERTIES = frozenset((XISF_TIME_PROPERTY, XISF_OBJECT_PROPERTY,
                              XISF_LONGITUDE_PROPERTY, XISF_EXPOSURE_PROPERTY,
                              XISF_FILTER_PROPERTY))  # fmt: skip

# Headers of this many HDUs at most are read (a .fz keeps its header in HDU 1, archives
# their DATE-OBS in extension 1 or 2): bounded work even for a file of a thousand HDUs.
_MAX_HDUS = 10

_NO_FITS_DATE = "no DATE-OBS, DATE_OBS, MJD-OBS, JD or DATE keyword"
_NO_XISF_DATE = f"{_NO_FITS_DATE} and no {XISF_TIME_PROPERTY} property"


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
    exposure: float | None = None  # seconds: EXPTIME, else EXPOSURE (XISF: else the property)
    filter: str | None = None  # FILTER (XISF: else Instrument:Filter:Name)

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
            degrees = parse_longitude(_number_ortext_value(value))
            if degrees is not None:
                return degrees, f"{keyword} = {value}"
        degrees = longitude_from_geocentric(get("OBSGEO-X"), get("OBSGEO-Y"))
        if degrees is not None:
            return degrees, "OBSGEO-X/Y"
    return None, None


def _seconds(value: Any) -> float | None:
    """An exposure time as a number of seconds (>= 0, finite), or None."""
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        return None
    return seconds if 0 <= seconds < float("inf") else None


def _exposure(hdus: list[Getter], prefer: int | None) -> float | None:
    for keyword in EXPOSURE_KEYWORDS:
        seconds = _seconds(_first(hdus, (keyword,), prefer)[0])
        if seconds is not None:
            return seconds
    return None


def _order(count: int, prefer: int | None) -> list[int]:
    order = list(range(count))
    if prefer is not None and prefer in order:
        order.remove(prefer)
        order.insert(0, prefer)
    return order


def _number_ortext_value(value: str) -> float | str:
    try:
        return float(value)
    except ValueError:
        return value


def _info(hdus: list[Getter], extra: list[Found] | None = None,
          extra_target: str | None = None, no_date: str = _NO_FITS_DATE) -> HeaderInfo:
    """Everything the header says, from the getters of its HDUs (primary first).

    ``extra`` are XISF property dates, tried after the FITS observation keywords but
    before DATE; ``extra_target`` an XISF object name, used when no OBJECT is present.
    """
    found, index, passed = pick_date(hdus, extra or [])
    notes = tuple(p.problem for p in passed if p.problem)
    when = timesys = None
    if found is not None:
        # TIMESYS of the HDU that gave the date, else the primary's (archives keep it there).
        system = hdus[index]("TIMESYS") if index is not None else None
        if system is None and hdus:
            system = hdus[0]("TIMESYS")
        when, timesys = in_utc(found, system)
    # The primary's OBJECT; else the one of the HDU that gave the date; else any.
    target, _kw, target_hdu = _first(hdus, ("OBJECT",), 0 if hdus and hdus[0]("OBJECT")
                                     else index)  # fmt: skip
    if target is None and extra_target:
        target, target_hdu = extra_target, None
    date_loc_value, _kw, _hdu = _first(hdus, ("DATE-LOC",), index)
    date_loc = parse_header_date(date_loc_value) if date_loc_value else None
    longitude, longitude_keyword = _longitude(hdus, index)
    frame_value, frame_keyword, _hdu = _first(hdus, FRAME_KEYWORDS, index)
    filter_value, _kw, _hdu = _first(hdus, (FILTER_KEYWORD,), index)
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
        exposure=_exposure(hdus, index),
        filter=filter_value,
    )


# --- FITS ---------------------------------------------------------------------------------


def _read_fits(path: str, shown: str, opened: IO[bytes] | None = None) -> HeaderInfo:
    getters: list[Getter] = []
    hdus = fits_hdus(path, _MAX_HDUS, text_value, opened)
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
        lambda k, kw=keywords: text_value(keyword_value(kw.get(k))) for keywords in keyword_sets
    ]
    extra = []
    for properties in property_sets:
        value = text_value(property_value(properties, XISF_TIME_PROPERTY))
        if value is None:
            continue
        when = parse_header_date(value)
        if when is None:
            extra.append(Found(None, XISF_TIME_PROPERTY, value,
                                f"{XISF_TIME_PROPERTY} '{value}' is not a valid date"))
        else:
            extra.append(checked(Found(when, XISF_TIME_PROPERTY, value, None)))
    targets = (text_value(property_value(p, XISF_OBJECT_PROPERTY)) for p in property_sets)
    info = _info(getters, extra, next((t for t in targets if t), None), _NO_XISF_DATE)
    if info.longitude is None:
        for properties in property_sets:
            value = property_value(properties, XISF_LONGITUDE_PROPERTY)
            degrees = parse_longitude(_number_ortext_value(value) if isinstance(value, str)
                                      else value)  # fmt: skip
            if degrees is not None:
                info = replace(info, longitude=degrees,
                               longitude_keyword=f"{XISF_LONGITUDE_PROPERTY} = {value}")
                break
    # The FITS keywords first (as for the object), then PixInsight's properties.
    if info.exposure is None:
        exposures = (_seconds(property_value(p, XISF_EXPOSURE_PROPERTY)) for p in property_sets)
        info = replace(info, exposure=next((e for e in exposures if e is not None), None))
    if info.filter is None:
        filters = (text_value(property_value(p, XISF_FILTER_PROPERTY)) for p in property_sets)
        info = replace(info, filter=next((f for f in filters if f), None))
    return info
