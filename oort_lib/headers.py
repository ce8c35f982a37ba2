"""Read the observation date and target of a FITS or XISF file from its header only.

Headers are read block by block and parsed with astropy's ``Header``; the data units are
skipped with a seek, never read or decompressed. ``fits.open`` is not used because on a
``.gz`` or ``.bz2`` file it decompresses the whole stream before handing back even the
primary header. astropy and xisf are imported on first use: importing astropy costs about
half a second, which a run with nothing new to read must never pay.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from .dates import combine_date_time, is_date_only, parse_header_date
from .errors import FileProblem
from .fitsfile import CARD, data_size, open_fits, read_header_bytes
from .scan import display_name

__all__ = ["HeaderInfo", "read_header"]

DATE_KEYWORDS = ("DATE-OBS", "DATE_OBS", "DATE")
# Only these may hold a date-only value completed by a time keyword: DATE is the date the
# file was written, unrelated to the time of the observation.
OBS_DATE_KEYWORDS = ("DATE-OBS", "DATE_OBS")
TIME_KEYWORDS = ("TIME-OBS", "UT", "UTSTART")
XISF_TIME_PROPERTY = "Observation:Time:Start"
XISF_OBJECT_PROPERTY = "Observation:Object:Name"

# Stop looking for an HDU with a date after this many: beyond, it is not an image file.
_MAX_HDUS = 256
# An XISF header declared larger than this is damaged (real ones are a few KB to a few MB).
_MAX_XISF_HEADER = 64 * 1024 * 1024

# Header bytes outside printable ASCII (a UTF-8 or Latin-1 OBJECT written by careless
# software) make astropy refuse the whole card; one '?' per byte keeps the 80 columns.
_PRINTABLE = bytes(b if 0x20 <= b <= 0x7E else 0x3F for b in range(256))

_NO_FITS_DATE = "no DATE-OBS, DATE_OBS or DATE keyword"
_NO_XISF_DATE = f"{_NO_FITS_DATE} and no {XISF_TIME_PROPERTY} property"


@dataclass(frozen=True)
class HeaderInfo:
    """What a header says: the date (naive or aware), the target, why there is no date."""

    date: datetime | None
    target: str | None
    date_problem: str | None = None


def read_header(path: str) -> HeaderInfo:
    """Read the date and target of the FITS or XISF file at ``path`` (header only).

    Dispatches on the name: ``.xisf`` is XISF, anything else FITS (plain, ``.gz``, ``.bz2``
    or tile-compressed ``.fz``; gzip and bzip2 are recognised by their magic bytes).
    Raises FileProblem when the file cannot be read or its header is truncated or corrupt;
    a readable header without a usable date is not an error (``date`` is None and
    ``date_problem`` says why).
    """
    path = os.fspath(path)
    shown = display_name(path)
    try:
        if path.lower().endswith(".xisf"):
            return _read_xisf(path, shown)
        return _read_fits(path, shown)
    except FileProblem:
        raise
    except OSError as exc:
        why = _os_reason(exc)
        raise FileProblem(f"{shown}: {why}", why) from exc


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
    elif isinstance(value, (int, float)):
        text = str(value)
    else:
        # astropy's Undefined (a card with no value) and the like.
        return None
    return text or None


def _pick_date(get: Callable[[str], str | None]) -> tuple[datetime | None, str | None] | None:
    """(date, problem) from one HDU's keywords, or None if it has no date keyword at all.

    The first date keyword present decides: a present but unparsable DATE-OBS is reported,
    not silently replaced by DATE (the date the file was written, possibly days later).
    """
    for keyword in DATE_KEYWORDS:
        value = get(keyword)
        if value is None:
            continue
        if keyword in OBS_DATE_KEYWORDS and is_date_only(value):
            for time_keyword in TIME_KEYWORDS:
                time_value = get(time_keyword)
                if time_value is None:
                    continue
                combined = combine_date_time(value, time_value)
                if combined is None:
                    return None, (
                        f"{keyword} '{value}' with {time_keyword} '{time_value}' "
                        "is not a valid date and time"
                    )
                return combined, None
        parsed = parse_header_date(value)
        if parsed is None:
            return None, f"{keyword} '{value}' is not a valid date"
        return parsed, None
    return None


# --- FITS ---------------------------------------------------------------------------------


def _fits_header_class() -> Any:
    from astropy.io.fits import Header
    from astropy.utils.exceptions import AstropyWarning

    _silence(AstropyWarning)
    return Header


def _silence(category: type[Warning]) -> None:
    """Ignore astropy's warnings process-wide.

    ``warnings.catch_warnings`` swaps the global filter list and races when headers are
    read from several threads; one filter, re-added if a test harness reset the list,
    does not.
    """
    if not any(f[0] == "ignore" and f[2] is category for f in warnings.filters):
        warnings.filterwarnings("ignore", category=category)


def _fits_hdus(path: str) -> Iterator[tuple[Callable[[str], str | None], bool]]:
    """A keyword getter and "compressed stream?" for each HDU; raises ValueError/OSError."""
    header_class = _fits_header_class()
    stream, compressed = open_fits(path)
    with stream:
        for index in range(_MAX_HDUS):
            raw = read_header_bytes(stream, first=index == 0)
            if raw is None:
                return
            raw = raw.translate(_PRINTABLE)
            header = header_class.fromstring(raw)
            yield _fits_get(header, raw), compressed
            stream.seek(data_size(header), os.SEEK_CUR)


def _fits_get(header: Any, raw: bytes) -> Callable[[str], str | None]:
    def get(keyword: str) -> str | None:
        try:
            return _text(header.get(keyword))
        except Exception:
            # astropy refuses a card it cannot parse (VerifyError), such as an unquoted
            # DATE-OBS = 2021-03-04T21:15:03 some writers produce; read its raw text.
            return _raw_value(raw, keyword)

    return get


def _raw_value(raw: bytes, keyword: str) -> str | None:
    """The text after ``KEYWORD =`` in the raw header, without its comment, or None."""
    name = keyword.encode("ascii").ljust(8)
    for at in range(0, len(raw), CARD):
        card = raw[at : at + CARD]
        if card[:8] == name and card[8:10] == b"= ":
            text = card[10:].decode("ascii")
            if text.lstrip().startswith("'"):
                text = text.lstrip()[1:].split("'", 1)[0]
            else:
                text = text.split("/", 1)[0]
            return text.strip() or None
    return None


def _read_fits(path: str, shown: str) -> HeaderInfo:
    date: datetime | None = None
    problem: str | None = None
    target: str | None = None
    found = False
    hdus = _fits_hdus(path)
    try:
        for get, compressed in hdus:
            if target is None:
                target = get("OBJECT")
            if not found:
                picked = _pick_date(get)
                if picked is not None:
                    found = True
                    date, problem = picked
            # Past the date, keep looking for OBJECT only where skipping data is a cheap
            # seek: finding it in a compressed stream would decompress the whole file.
            if found and (target is not None or compressed):
                break
    except Exception as exc:
        # astropy, gzip, bz2 and zlib each have their own errors for a damaged file
        # (ValueError, VerifyError, EOFError, BadGzipFile, zlib.error...); all mean the same.
        if isinstance(exc, OSError) and exc.errno is not None:
            raise
        if not found:
            reason = str(exc) or type(exc).__name__
            why = f"truncated or corrupt FITS header ({reason})"
            raise FileProblem(f"{shown}: {why}", why) from exc
        # Damage after the HDU that gave the date only cost us a later OBJECT.
    finally:
        hdus.close()
    if not found:
        problem = _NO_FITS_DATE
    return HeaderInfo(date=date, target=target, date_problem=problem)


# --- XISF ---------------------------------------------------------------------------------

_xisf_reader: Any = None


def _xisf_class() -> Any:
    """An XISF reader that decodes only what a header lookup needs.

    The xisf package eagerly decodes every property (reading the data blocks of vectors
    and matrices), prints a line for property types it does not know, and raises on pixel
    formats it cannot read (Int16, complex...). None of that matters for finding a date,
    so those steps are made lazy and tolerant here.
    """
    global _xisf_reader
    if _xisf_reader is not None:
        return _xisf_reader
    from xisf import XISF

    class HeaderOnlyXISF(XISF):  # type: ignore[misc, valid-type]
        def _process_property(self, p_et: Any) -> dict:
            attrib = dict(p_et.attrib)
            if attrib.get("type") == "String" and "location" not in attrib:
                attrib["value"] = p_et.text or ""
            # TimePoint keeps its value attribute as text; other types are not needed.
            return attrib

        @staticmethod
        def _parse_sampleFormat(s: str) -> Any:
            return s

        @staticmethod
        def _parse_location(location: str) -> Any:
            return location

        @staticmethod
        def _parse_geometry(geometry: str) -> Any:
            return geometry

    _xisf_reader = HeaderOnlyXISF
    return _xisf_reader


def _check_xisf_preamble(path: str) -> None:
    """Raise ValueError unless ``path`` starts like a monolithic XISF file.

    The xisf package reads as many bytes as the header length field says; a damaged
    length would make it read a whole multi-GB file into memory.
    """
    with open(path, "rb") as f:
        preamble = f.read(16)
        size = os.fstat(f.fileno()).st_size
    if not preamble:
        raise ValueError("empty file")
    if len(preamble) < 16 and b"XISF0100".startswith(preamble[:8]):
        raise ValueError("the file ends inside the preamble")
    if not preamble.startswith(b"XISF0100"):
        raise ValueError("no XISF0100 signature: not a monolithic XISF file")
    length = int.from_bytes(preamble[8:12], "little")
    if length > size - 16 or length > _MAX_XISF_HEADER:
        raise ValueError(f"header length {length} does not fit in the file")


def _xisf_value(entries: Any) -> str | None:
    """The first value of a FITSKeywords list, as text."""
    if isinstance(entries, list) and entries and isinstance(entries[0], dict):
        return _text(entries[0].get("value"))
    return None


def _property_value(properties: Any, name: str) -> str | None:
    if isinstance(properties, dict):
        prop = properties.get(name)
        if isinstance(prop, dict):
            return _text(prop.get("value"))
    return None


def _read_xisf(path: str, shown: str) -> HeaderInfo:
    try:
        _check_xisf_preamble(path)
        reader = _xisf_class()(path)
        images = reader.get_images_metadata() or []
        file_meta = reader.get_file_metadata() or {}
    except Exception as exc:
        # The xisf package lets anything escape on bad XML (ParseError, KeyError, TypeError).
        if isinstance(exc, OSError) and exc.errno is not None:
            raise
        reason = str(exc) or type(exc).__name__
        why = f"corrupt XISF header ({reason})"
        raise FileProblem(f"{shown}: {why}", why) from exc

    keyword_sets = [image.get("FITSKeywords") or {} for image in images]
    property_sets = [image.get("XISFProperties") or {} for image in images] + [file_meta]

    targets = [_xisf_value(keywords.get("OBJECT")) for keywords in keyword_sets]
    targets += [_property_value(props, XISF_OBJECT_PROPERTY) for props in property_sets]
    target = next((t for t in targets if t), None)

    problem = None
    for keywords in keyword_sets:
        picked = _pick_date(lambda k, kw=keywords: _xisf_value(kw.get(k)))
        if picked is None:
            continue
        date, problem = picked
        if date is not None:
            return HeaderInfo(date=date, target=target)
        # An unparsable keyword is reported unless the XISF property gives a real date.
        break
    for properties in property_sets:
        value = _property_value(properties, XISF_TIME_PROPERTY)
        if value is None:
            continue
        date = parse_header_date(value)
        if date is not None:
            return HeaderInfo(date=date, target=target)
        problem = problem or f"{XISF_TIME_PROPERTY} '{value}' is not a valid date"
        break
    return HeaderInfo(date=None, target=target, date_problem=problem or _NO_XISF_DATE)
