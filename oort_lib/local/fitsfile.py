"""The block structure of a FITS file: the bytes of each header, parsed with astropy's
``Header``, and how far to skip the data that follows it (read by seeking, never
decompressed or loaded).

gzip and bzip2 streams are recognised by their magic bytes, not by the file name.
"""

from __future__ import annotations

import bz2
import gzip
import os
import warnings
from collections.abc import Callable, Iterator
from typing import IO, Any

BLOCK = 2880
CARD = 80
# A header longer than this (about 35,000 cards) is not a header but a damaged file.
MAX_HEADER_BLOCKS = 1000

# Header bytes outside printable ASCII (a UTF-8 or Latin-1 OBJECT written by careless
# software) make astropy refuse the whole card; one '?' per byte keeps the 80 columns.
_PRINTABLE = bytes(b if 0x20 <= b <= 0x7E else 0x3F for b in range(256))


def open_fits(path: str) -> tuple[IO[bytes], bool]:
    """The (decompressed) byte stream of a FITS file and whether it is a compressed stream."""
    # Not a with-block: the caller closes the returned stream, which owns this file.
    raw = open(path, "rb")
    try:
        magic = raw.read(3)
        raw.seek(0)
        if magic[:2] == b"\x1f\x8b":
            unzipped = gzip.GzipFile(fileobj=raw, mode="rb")
            # GzipFile closes a file it opened itself, not one handed to it: make it so.
            unzipped.myfileobj = raw
            return unzipped, True
        if magic == b"BZh":
            return _Closing(bz2.BZ2File(raw, mode="rb"), raw), True
    except BaseException:
        raw.close()
        raise
    return raw, False


def read_header_bytes(stream: IO[bytes], first: bool) -> bytes | None:
    """The raw bytes of the next header, None at a clean end of the file.

    Raises ValueError (with a short reason) when the header is truncated or not FITS.
    """
    block = stream.read(BLOCK)
    if not block:
        if first:
            raise ValueError("empty file")
        return None
    if first:
        if not block.startswith(b"SIMPLE  ="):
            raise ValueError("no SIMPLE card: not a FITS file")
    elif not block.startswith(b"XTENSION="):
        # Bytes after the last HDU (padding, appended junk) end the file, they do not
        # make it corrupt.
        return None
    blocks = [block]
    for _ in range(MAX_HEADER_BLOCKS):
        if len(block) < BLOCK:
            raise ValueError("the file ends inside the header")
        if any(block.startswith(b"END     ", at) for at in range(0, BLOCK, CARD)):
            return b"".join(blocks)
        block = stream.read(BLOCK)
        blocks.append(block)
    raise ValueError("no END card")


def data_size(header: Any) -> int:
    """Bytes of the data unit after ``header``, padding included; raises ValueError."""
    try:
        naxis = int(header.get("NAXIS", 0))
        if naxis == 0:
            return 0
        axes = [int(header[f"NAXIS{i}"]) for i in range(1, naxis + 1)]
        bits = abs(int(header["BITPIX"]))
        pcount = int(header.get("PCOUNT", 0))
        gcount = int(header.get("GCOUNT", 1))
    except (KeyError, TypeError) as exc:
        raise ValueError(f"bad size keywords ({exc})") from exc
    if header.get("GROUPS") is True and axes[0] == 0:
        # Random groups: NAXIS1 = 0 is a marker, not an axis.
        axes = axes[1:]
    count = 1
    for axis in axes:
        count *= axis
    size = bits // 8 * gcount * (pcount + count)
    if size < 0:
        raise ValueError("negative data size")
    return -(-size // BLOCK) * BLOCK


def _fits_header_class() -> Any:
    from astropy.io.fits import Header
    from astropy.utils.exceptions import AstropyWarning

    silence(AstropyWarning)
    return Header


def silence(category: type[Warning]) -> None:
    """Ignore astropy's warnings process-wide.

    ``warnings.catch_warnings`` swaps the global filter list and races when headers are
    read from several threads; one filter, re-added if a test harness reset the list,
    does not.
    """
    if not any(f[0] == "ignore" and f[2] is category for f in warnings.filters):
        warnings.filterwarnings("ignore", category=category)


def fits_hdus(
    path: str, max_hdus: int, text: Callable[[Any], str | None]
) -> Iterator[tuple[Callable[[str], str | None], bool]]:
    """A keyword getter and "compressed stream?" for each of the first ``max_hdus`` HDUs.

    The getter returns ``text(value)`` of a keyword, or None. Only headers are read; the
    data units are skipped. Raises ValueError (or astropy's, gzip's, bz2's errors) for a
    damaged file and OSError when it cannot be read.
    """
    header_class = _fits_header_class()
    stream, compressed = open_fits(path)
    with stream:
        for index in range(max_hdus):
            raw = read_header_bytes(stream, first=index == 0)
            if raw is None:
                return
            raw = raw.translate(_PRINTABLE)
            header = header_class.fromstring(raw)
            yield _fits_get(header, raw, text), compressed
            if index + 1 < max_hdus:
                stream.seek(data_size(header), os.SEEK_CUR)


def _fits_get(header: Any, raw: bytes, text: Callable[[Any], str | None]):
    def get(keyword: str) -> str | None:
        try:
            return text(header.get(keyword))
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


class _Closing:
    """A decompressing stream that also closes the file under it."""

    def __init__(self, stream: Any, raw: IO[bytes]):
        self._stream = stream
        self._raw = raw

    def read(self, size: int = -1) -> bytes:
        return self._stream.read(size)

    def seek(self, offset: int, whence: int = 0) -> int:
        return self._stream.seek(offset, whence)

    def close(self) -> None:
        try:
            self._stream.close()
        finally:
            self._raw.close()

    def __enter__(self) -> _Closing:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
