"""Whole and partial frames of every kind, written with astropy and the xisf package.

``partial_files(folder, when)`` writes, for each kind in KINDS, a whole file under
``folder/whole/`` and its partial version under ``folder/partial/`` with the same name
(so the whole one can later be copied over the partial one), and returns
``{kind: (whole, partial)}``. Every file has DATE-OBS ``when`` and OBJECT 'M51', so the
whole versions are uploaded. The partial versions end early (``wholeness.check`` raises
NotWhole with short=True), except the kinds in DAMAGED_KINDS, whose bytes contradict
them: their NotWhole has short=False (the flipped bit is found only with checksums, as
the upload verifies them).

``cut_offsets(raw)`` lists cut points across a whole file (inside a header card, at
block edges, inside the data, one byte short); ``cut(...)`` writes one cut;
``flip_bit(...)`` damages one bit; ``long_header_fits(...)`` writes a header of 100,000
cards.
"""

from __future__ import annotations

import bz2
import gzip
import io
from pathlib import Path

import numpy as np
from astropy.io import fits
from fitsfiles import BLOCK, CARD, header_end

WHEN = "2021-03-04T21:15:03"
KINDS = ("data-half", "header-only", "header-card", "last-block", "last-extension",
         "flipped-bit", "gzip-cut", "gzip-trailer", "bzip2-cut", "fz-cut",
         "xisf-attachment", "bias-cut")  # fmt: skip
DAMAGED_KINDS = frozenset({"flipped-bit"})


def _pixels(seed: int, shape: tuple[int, ...], dtype: str = "int16") -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (rng.integers(0, 500, size=shape) + 1000).astype(dtype)


def _header(when: str, **extra: str) -> fits.Header:
    header = fits.Header()
    header["DATE-OBS"] = when
    header["OBJECT"] = "M51"
    for key, value in extra.items():
        header[key] = value
    return header


def fits_bytes(hdus: list, *, checksum: bool = False) -> bytes:
    """The bytes astropy writes for ``hdus`` (with DATASUM and CHECKSUM if asked)."""
    buffer = io.BytesIO()
    fits.HDUList(hdus).writeto(buffer, checksum=checksum)
    return buffer.getvalue()


def hdu_ends(raw: bytes) -> list[int]:
    """Where each HDU of the whole plain FITS file ``raw`` ends (padding included)."""
    with fits.open(io.BytesIO(raw)) as hdul:
        return [hdu.fileinfo()["datLoc"] + hdu.fileinfo()["datSpan"] for hdu in hdul]


def cut_offsets(raw: bytes) -> list[int]:
    """Cut points of a whole plain FITS file: inside its first card, inside a card of
    the header, at the header's block edge, a byte after it, inside the data, at a data
    block edge, one block and one byte short; sorted, all shorter than the file.

    Never at the end of an HDU: a file cut there has fewer HDUs but no HDU cut, which
    nothing in FITS tells from a whole file (it has no count of its HDUs).
    """
    data_at = header_end(raw)
    points = {1, 8, 9, 10, CARD + 37, 1000, data_at - 1, data_at, data_at + 1,
              data_at + BLOCK, (data_at + len(raw)) // 2, len(raw) - BLOCK,
              len(raw) - BLOCK + 1, len(raw) - 1}  # fmt: skip
    return sorted(p for p in points - set(hdu_ends(raw)) if 0 < p < len(raw))


def cut(source: Path, at: int, dest: Path) -> Path:
    """Write the first ``at`` bytes of ``source`` to ``dest`` and return it."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_bytes(source.read_bytes()[:at])
    return dest


def flip_bit(data: bytes, offset: int, bit: int = 0) -> bytes:
    """``data`` with bit ``bit`` (0-7) of the byte at ``offset`` inverted."""
    damaged = bytearray(data)
    damaged[offset] ^= 1 << bit
    return bytes(damaged)


def long_header_fits(path: Path, cards: int = 100_000, when: str = WHEN) -> Path:
    """A valid FITS file whose primary header holds ``cards`` cards (END included), its
    DATE-OBS and OBJECT near the end, and a small data unit."""
    head = [b"SIMPLE  =                    T", b"BITPIX  =                   16",
            b"NAXIS   =                    2", b"NAXIS1  =                   10",
            b"NAXIS2  =                   10"]  # fmt: skip
    fillers = cards - len(head) - 3
    head += [b"HISTORY step %d of a long pipeline" % i for i in range(fillers)]
    head += [b"DATE-OBS= '" + when.encode() + b"'", b"OBJECT  = 'M51'", b"END"]
    raw = b"".join(card.ljust(CARD) for card in head)
    raw += b" " * (-len(raw) % BLOCK)
    data = _pixels(7, (10, 10)).astype(">i2").tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(raw + data + bytes(-len(data) % BLOCK))
    return path


def _xisf_bytes(folder: Path, when: str) -> bytes:
    from xisf import XISF

    scratch = folder / ".scratch.xisf"
    scratch.parent.mkdir(parents=True, exist_ok=True)
    keywords = {"DATE-OBS": [{"value": f"'{when}'", "comment": ""}],
                "OBJECT": [{"value": "'M51'", "comment": ""}]}  # fmt: skip
    XISF.write(str(scratch), _pixels(9, (64, 64, 1), "uint16"), creator_app="tests",
               image_metadata={"FITSKeywords": keywords, "XISFProperties": {}})  # fmt: skip
    raw = scratch.read_bytes()
    scratch.unlink()
    return raw


def _whole_and_cut(when: str, folder: Path) -> dict[str, tuple[str, bytes, int | bytes]]:
    """{kind: (file name, whole bytes, where to cut it or the partial bytes)}."""
    image = fits_bytes([fits.PrimaryHDU(_pixels(1, (120, 100)), _header(when))])
    mef = fits_bytes([fits.PrimaryHDU(None, _header(when)),
                      fits.ImageHDU(_pixels(2, (40, 40))),
                      fits.ImageHDU(_pixels(3, (60, 40)))])  # fmt: skip
    summed = fits_bytes([fits.PrimaryHDU(_pixels(4, (80, 80)), _header(when))], checksum=True)
    tiles = fits_bytes([fits.PrimaryHDU(),
                        fits.CompImageHDU(_pixels(5, (128, 128)), _header(when))])  # fmt: skip
    bias = fits_bytes([fits.PrimaryHDU(_pixels(6, (90, 90)),
                                       _header(when, IMAGETYP="Bias"))])  # fmt: skip
    packed = gzip.compress(image, mtime=0)
    squeezed = bz2.compress(image)
    xisf = _xisf_bytes(folder, when)
    data_at = header_end(image)
    flipped = flip_bit(summed, header_end(summed) + 1001, 3)
    return {
        "data-half": ("M51_001.fits", image, (data_at + len(image)) // 2),
        "header-only": ("M51_002.fits", image, data_at),
        "header-card": ("M51_003.fits", image, 1000 + 37),
        "last-block": ("M51_004.fits", image, len(image) - BLOCK),
        "last-extension": ("M51_005.fits", mef, len(mef) - BLOCK - 1000),
        "flipped-bit": ("M51_006.fits", summed, flipped),
        "gzip-cut": ("M51_007.fits.gz", packed, len(packed) // 2),
        "gzip-trailer": ("M51_008.fits.gz", packed, len(packed) - 3),
        "bzip2-cut": ("M51_009.fits.bz2", squeezed, len(squeezed) // 2),
        "fz-cut": ("M51_010.fz", tiles, len(tiles) - BLOCK // 2),
        "xisf-attachment": ("M51_011.xisf", xisf, len(xisf) - 4000),
        "bias-cut": ("Bias_001.fits", bias, (header_end(bias) + len(bias)) // 2),
    }


def partial_files(folder: Path, when: str = WHEN) -> dict[str, tuple[Path, Path]]:
    """Write each kind's whole and partial file under ``folder``; {kind: (whole, partial)}."""
    files = {}
    for kind, (name, whole, damage) in _whole_and_cut(when, folder).items():
        partial = whole[:damage] if isinstance(damage, int) else damage
        paths = folder / "whole" / name, folder / "partial" / name
        for path, content in zip(paths, (whole, partial)):
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(content)
        files[kind] = paths
    return files
