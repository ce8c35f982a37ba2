"""Real FITS and XISF files for tests, `make demo` and the benchmarks.

Everything here writes genuine files with astropy and the xisf package (no canned binary
blobs), with deterministic content: the same call writes the same bytes, so hashes and
upload counts are stable from run to run.
"""

from __future__ import annotations

import bz2
import gzip
import io
import re
import zlib
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

__all__ = [
    "SAMPLE_FILES",
    "SampleFile",
    "make_bulk_tree",
    "make_sample_tree",
    "write_fits",
    "write_xisf",
]

_COMPRESSIONS = (None, "gz", "bz2", "fz")
# XISF.write stamps the wall clock into the header; this fixed value replaces it.
_FIXED_CREATION_TIME = b"2000-01-01T00:00:00"
_CREATION_TIME = re.compile(
    rb'(<Property id="XISF:CreationTime" type="String">)([^<]*)(</Property>)'
)


def _seed(path: Path) -> int:
    return zlib.crc32(path.name.encode("utf-8", "surrogateescape"))


def _pixels(path: Path, shape: tuple[int, ...], dtype: str, high: int) -> Any:
    import numpy as np

    rng = np.random.default_rng(_seed(path))
    # A smooth background plus noise compresses like a real frame, unlike pure noise.
    noise = rng.integers(0, high // 8, size=shape)
    return (noise + high // 4).astype(dtype)


def _fits_header(values: dict | None) -> Any:
    from astropy.io import fits

    header = fits.Header()
    for key, value in (values or {}).items():
        # (value, comment) tuples are accepted like astropy's own Header API.
        header[key] = value
    return header


def write_fits(
    path: str | Path,
    header: dict | None = None,
    *,
    shape: tuple[int, ...] | None = (16, 16),
    compress: str | None = None,
    extension_header: dict | None = None,
) -> Path:
    """Write a FITS file at exactly ``path`` and return it as a Path.

    ``header`` goes into the primary HDU, or into HDU 1 for ``compress='fz'`` (an empty
    primary and a tile-compressed image, as fpack writes them). ``extension_header`` adds
    an image extension carrying those keywords. ``compress`` 'gz' or 'bz2' wraps the whole
    file. ``shape`` None writes a primary HDU without data. Raises ValueError for an
    unknown ``compress``.
    """
    from astropy.io import fits

    if compress not in _COMPRESSIONS:
        raise ValueError(f"compress must be one of {_COMPRESSIONS}, not {compress!r}")
    path = Path(path)
    data = _pixels(path, shape, "int16", 4000) if shape else None
    hdr = _fits_header(header)
    if compress == "fz":
        if data is None:
            raise ValueError("a tile-compressed file needs image data (shape)")
        hdus = [fits.PrimaryHDU(), fits.CompImageHDU(data, header=hdr)]
    else:
        hdus = [fits.PrimaryHDU(data, header=hdr)]
    if extension_header is not None:
        extension_data = _pixels(path, (8, 8), "int16", 4000)
        hdus.append(fits.ImageHDU(extension_data, _fits_header(extension_header)))
    buffer = io.BytesIO()
    fits.HDUList(hdus).writeto(buffer)
    raw = buffer.getvalue()
    if compress == "gz":
        raw = gzip.compress(raw, mtime=0)
    elif compress == "bz2":
        raw = bz2.compress(raw)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(raw)
    return path


def _properties(values: dict | None) -> dict:
    result = {}
    for key, value in (values or {}).items():
        if isinstance(value, dict):
            result[key] = {"id": key, **value}
        else:
            result[key] = {"id": key, "type": "String", "value": str(value)}
    return result


def _keyword_entries(value: Any) -> list[dict]:
    if isinstance(value, list):
        return value
    # PixInsight writes string values in FITS quotes, numbers bare.
    text = f"'{value}'" if isinstance(value, str) else str(value)
    return [{"value": text, "comment": ""}]


def write_xisf(
    path: str | Path,
    fits_keywords: dict | None = None,
    properties: dict | None = None,
    *,
    shape: tuple[int, int] = (16, 16),
    file_properties: dict | None = None,
) -> Path:
    """Write a monolithic XISF file at ``path`` (one 16-bit gray image) and return it.

    ``fits_keywords`` maps a name to a value (or to the xisf package's list of
    ``{'value', 'comment'}`` dicts); ``properties`` (image properties) and
    ``file_properties`` (file <Metadata>) map an id to a property dict such as
    ``{'type': 'TimePoint', 'value': '2020-09-21T09:00:00Z'}`` or to a plain value (a
    String property).
    """
    from xisf import XISF

    path = Path(path)
    data = _pixels(path, (*shape, 1), "uint16", 65535)
    image_metadata = {
        "FITSKeywords": {k: _keyword_entries(v) for k, v in (fits_keywords or {}).items()},
        "XISFProperties": _properties(properties),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    XISF.write(
        str(path),
        data,
        creator_app="oort-sync samples",
        image_metadata=image_metadata,
        xisf_metadata=_properties(file_properties),
    )
    _pin_creation_time(path)
    return path


def _pin_creation_time(path: Path) -> None:
    """Replace the wall-clock creation time XISF.write stamps, for reproducible bytes.

    The fixed value is no longer than the one it replaces, and the data blocks sit at
    aligned offsets after the header, so the header shrinks in place into its padding.
    """
    with open(path, "r+b") as f:
        preamble = f.read(16)
        length = int.from_bytes(preamble[8:12], "little")
        header = f.read(length)
        fixed = _CREATION_TIME.sub(lambda m: m[1] + _FIXED_CREATION_TIME + m[3], header, 1)
        f.seek(8)
        f.write(len(fixed).to_bytes(4, "little"))
        f.seek(16)
        f.write(fixed + b"\0" * (length - len(fixed)))


# --- the demo tree ------------------------------------------------------------------------


@dataclass(frozen=True)
class SampleFile:
    """One file of make_sample_tree and what its header says (date None: no usable date)."""

    relpath: str
    date: datetime | None
    target: str | None


SAMPLE_FILES: tuple[SampleFile, ...] = (
    SampleFile("NGC3603/Halpha/Mosaic1.fits", datetime(2020, 9, 9, 14, 0), "NGC 3603"),
    SampleFile(
        "NGC3603/Halpha/Mosaic2.fits", datetime(2020, 9, 10, 1, 30, 12, 250000), "NGC 3603"
    ),
    SampleFile("NGC3603/Halpha/Mosaic3.fits", datetime(2020, 9, 9, 23, 10, 5), "NGC 3603"),
    SampleFile(
        "M42/m42_001.fits.gz", datetime(2020, 10, 2, 22, 1, tzinfo=timezone.utc), "M42"
    ),
    SampleFile("M42/m42_002.fits.bz2", datetime(2020, 10, 3, 3, 15), "M42"),
    SampleFile("M42/lum.fz", datetime(2020, 10, 2, 23, 45, 0, 500000), "M42"),
    SampleFile(
        "Calibration/MasterBias.xisf", datetime(2020, 9, 21, 9, 0, tzinfo=timezone.utc), None
    ),
    SampleFile("Tests/Flats/U/U1.fit", datetime(2020, 9, 30, 1, 0), None),
    SampleFile("Flats/U/flat_001.fit", datetime(2020, 9, 29, 18, 30), None),
    SampleFile("Darks/dark_300s.fits", datetime(2020, 10, 1, 10, 0), None),
    SampleFile("IC1396/Ha_001.xisf", datetime(2020, 10, 5, 21, 0), "IC 1396"),
    SampleFile("Archive/1998/legacy.fts", datetime(1998, 10, 15), "SN 1998bw"),
    SampleFile("NGC3603_V_2x2.fit", datetime(2020, 10, 15, 4, 0), "NGC 3603"),
    SampleFile("GRO_J1655-40.FITS", None, "GRO J1655-40"),
)


def make_sample_tree(dest: str | Path) -> Path:
    """Write a small realistic watched folder (the Oort docs' examples and more) in ``dest``.

    Returns ``dest``. SAMPLE_FILES lists the FITS/XISF files and what their headers say;
    besides them there is ``passwords.csv`` (not FITS) and a hidden ``.DS_Store``.
    """
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    halpha = dest / "NGC3603" / "Halpha"
    write_fits(
        halpha / "Mosaic1.fits",
        {"DATE-OBS": "2020-09-09T14:00:00", "OBJECT": "NGC 3603", "FILTER": "Halpha"},
        shape=(256, 256),
    )
    write_fits(
        halpha / "Mosaic2.fits",
        {"DATE-OBS": "2020-09-10T01:30:12.250", "OBJECT": "NGC 3603", "FILTER": "Halpha"},
        shape=(200, 200),
    )
    write_fits(
        halpha / "Mosaic3.fits",
        {"DATE-OBS": "2020-09-09", "TIME-OBS": "23:10:05", "OBJECT": "NGC 3603"},
        shape=(128, 128),
    )
    write_fits(
        dest / "M42" / "m42_001.fits.gz",
        {"DATE-OBS": "2020-10-02T22:01:00Z", "OBJECT": "M42"},
        shape=(192, 192),
        compress="gz",
    )
    write_fits(
        dest / "M42" / "m42_002.fits.bz2",
        {"DATE_OBS": "2020-10-03T03:15:00", "OBJECT": "M42"},
        shape=(192, 192),
        compress="bz2",
    )
    write_fits(
        dest / "M42" / "lum.fz",
        {"DATE-OBS": "2020-10-02T23:45:00.5", "OBJECT": "M42"},
        shape=(256, 256),
        compress="fz",
    )
    write_xisf(
        dest / "Calibration" / "MasterBias.xisf",
        properties={
            "Observation:Time:Start": {"type": "TimePoint", "value": "2020-09-21T09:00:00Z"}
        },
        shape=(64, 64),
    )
    write_fits(dest / "Tests" / "Flats" / "U" / "U1.fit", {"DATE-OBS": "2020-09-30T01:00:00"})
    write_fits(
        dest / "Flats" / "U" / "flat_001.fit",
        {"DATE-OBS": "2020-09-29T18:30:00", "IMAGETYP": "Flat Field"},
        shape=(64, 64),
    )
    write_fits(
        dest / "Darks" / "dark_300s.fits",
        {"DATE": "2020-10-01T10:00:00", "EXPTIME": 300.0},
        shape=(64, 64),
    )
    write_xisf(
        dest / "IC1396" / "Ha_001.xisf",
        {"DATE-OBS": "2020-10-05T21:00:00", "OBJECT": "IC 1396", "EXPTIME": 600},
        shape=(96, 96),
    )
    write_fits(
        dest / "Archive" / "1998" / "legacy.fts", {"DATE-OBS": "15/10/98", "OBJECT": "SN 1998bw"}
    )
    write_fits(
        dest / "NGC3603_V_2x2.fit", {"DATE-OBS": "2020-10-15T04:00:00", "OBJECT": "NGC 3603"}
    )
    write_fits(dest / "GRO_J1655-40.FITS", {"OBJECT": "GRO J1655-40"}, shape=(32, 32))
    (dest / "passwords.csv").write_text("user,password\nobserver,hunter2\n", encoding="utf-8")
    (dest / ".DS_Store").write_bytes(b"\0\0\0\1Bud1" + bytes(64))
    return dest


# --- the benchmark trees ------------------------------------------------------------------

_DATE_PLACEHOLDER = "2000-01-01T00:00:00.000"
_OBJECT_PLACEHOLDER = "OBJECT-PLACEHOLDER"
_PER_FOLDER = 100
_NIGHTS = 5


class _Template:
    """The bytes of one FITS file whose DATE-OBS and OBJECT values can be patched in place."""

    def __init__(self, raw: bytes) -> None:
        self.raw = bytearray(raw)
        self.date_at = raw.index(f"'{_DATE_PLACEHOLDER}'".encode()) + 1
        self.object_at = raw.index(f"'{_OBJECT_PLACEHOLDER}'".encode()) + 1

    def render(self, date_obs: str, obj: str) -> bytes:
        # Same widths as the placeholders, so every card keeps its 80 columns.
        self.raw[self.date_at : self.date_at + len(_DATE_PLACEHOLDER)] = date_obs.encode()
        padded = obj.ljust(len(_OBJECT_PLACEHOLDER))[: len(_OBJECT_PLACEHOLDER)]
        self.raw[self.object_at : self.object_at + len(padded)] = padded.encode()
        return bytes(self.raw)


def _template(size_bytes: int, *, fz: bool = False) -> _Template:
    import numpy as np
    from astropy.io import fits

    header = _fits_header({"DATE-OBS": _DATE_PLACEHOLDER, "OBJECT": _OBJECT_PLACEHOLDER})
    # One 2880-byte header block, the rest data in whole blocks.
    data_bytes = max(0, -(-size_bytes // 2880) - 1) * 2880
    rng = np.random.default_rng(size_bytes)
    if fz:
        data = (rng.integers(0, 500, size=(64, 64)) + 1000).astype("int16")
        hdus = [fits.PrimaryHDU(), fits.CompImageHDU(data, header=header)]
    else:
        data = rng.integers(0, 64, size=data_bytes, dtype="uint8") if data_bytes else None
        hdus = [fits.PrimaryHDU(data, header=header)]
    buffer = io.BytesIO()
    fits.HDUList(hdus).writeto(buffer)
    return _Template(buffer.getvalue())


def make_bulk_tree(
    dest: str | Path, count: int, *, size_bytes: int = 5760, mix: bool = False
) -> Path:
    """Write ``count`` small FITS files under ``dest`` (about 100 per folder) and return it.

    Folders are spread over a few nights, every tenth one a calibration folder. astropy
    builds one template per kind of file; each file is a copy with its DATE-OBS and OBJECT
    values patched, which is what makes 100,000 files a matter of seconds. ``mix`` makes
    one file in twenty a ``.fits.gz``, one a ``.fz``, one 32x and one 4x ``size_bytes``.
    """
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    templates = {"small": _template(size_bytes)}
    if mix:
        templates["medium"] = _template(size_bytes * 4)
        templates["large"] = _template(size_bytes * 32)
        templates["fz"] = _template(size_bytes, fz=True)
    start = datetime(2021, 3, 10, 20, 0)
    folders = -(-count // _PER_FOLDER)
    written = 0
    for number in range(folders):
        night = number % _NIGHTS
        name = f"Darks_{number:04d}" if number % 10 == 9 else f"field_{number:04d}"
        folder = dest / f"night{night + 1}" / name
        folder.mkdir(parents=True, exist_ok=True)
        first = start + timedelta(days=night, milliseconds=number)
        for index in range(min(_PER_FOLDER, count - written)):
            date_obs = (first + timedelta(seconds=97 * index)).isoformat(timespec="milliseconds")
            kind, suffix = "small", ".fits"
            if mix:
                kind, suffix = {
                    0: ("small", ".fits.gz"),
                    1: ("fz", ".fz"),
                    2: ("large", ".fits"),
                    3: ("medium", ".fits"),
                }.get(index % 20, ("small", ".fits"))
            raw = templates[kind].render(date_obs, name)
            if suffix == ".fits.gz":
                raw = gzip.compress(raw, compresslevel=1, mtime=0)
            (folder / f"frame_{index:03d}{suffix}").write_bytes(raw)
            written += 1
    return dest
