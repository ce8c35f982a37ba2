"""The block structure of a FITS file: the bytes of each header, the size of the data
unit that follows it (from the raw cards), and each header's keyword values (read by
fitscards, or by astropy's ``Header`` for the cards fitscards leaves to it; the data
units are skipped by seeking, never decompressed or loaded).

gzip and bzip2 streams are recognised by their magic bytes, not by the file name.
"""

from __future__ import annotations

import bz2
import gzip
import math
import os
import re
import struct
import sys
import warnings
import zlib
from collections.abc import Callable, Iterator
from typing import IO, Any, NamedTuple

from oort_lib.errors import LocalTransient
from oort_lib.local.fitscards import Cards, Unsure

BLOCK = 2880
CARD = 80
CARDS_PER_BLOCK = BLOCK // CARD
# Real headers hold tens to a few thousand cards; archives with long HISTORY reach
# 100,000. Past this many the file is skipped with TOO_MANY_CARDS: reading is bounded
# (16 MB of header at most) and the reason says what happened, never "corrupt".
MAX_HEADER_CARDS = 200_000
MAX_HEADER_BLOCKS = -(-MAX_HEADER_CARDS // CARDS_PER_BLOCK)
TOO_MANY_CARDS = f"header larger than {MAX_HEADER_CARDS:,} cards"
# astropy parses this many header blocks at most (36,000 cards, well past any camera's
# header); a longer header is read from its raw cards, in constant time per keyword.
_ASTROPY_BLOCKS = 1000

PRIMARY = b"SIMPLE  ="
EXTENSION = b"XTENSION="
_END = b"END     "
_BITPIX = (8, 16, 32, 64)
# First letters of the cards that size a data unit: BITPIX, NAXISn, PCOUNT, GCOUNT, GROUPS.
# A size keyword's card: its name padded to 8 columns, then "=" in column 9.
_SIZE_CARD = re.compile(rb"(BITPIX|NAXIS\d{0,3}|PCOUNT|GCOUNT|GROUPS) *=")

# Header bytes outside printable ASCII (a UTF-8 or Latin-1 OBJECT written by careless
# software) make astropy refuse the whole card; one '?' per byte keeps the 80 columns.
_PRINTABLE = bytes(b if 0x20 <= b <= 0x7E else 0x3F for b in range(256))


class Layout(NamedTuple):
    """The data unit after one header."""

    data: int  # bytes of data (heap included), without the padding
    padded: int  # the same rounded up to whole 2880-byte blocks


def padded(size: int) -> int:
    """``size`` rounded up to whole FITS blocks."""
    return -(-size // BLOCK) * BLOCK


def end_card(raw: bytes | bytearray, start: int = 0) -> int:
    """Offset in ``raw`` of the first END card at or after ``start`` (cards are counted
    from offset 0), or -1."""
    at = raw.find(_END, start)
    while at != -1:
        if at % CARD == 0:
            return at
        at = raw.find(_END, at + CARD - at % CARD)
    return -1


def card_values(raw: bytes, keywords: tuple[bytes, ...], end: int | None = None
                ) -> dict[bytes, bytes]:  # fmt: skip
    """The raw value field (columns 11-80) of the first card of each of ``keywords``
    (8-byte padded names) found before ``end`` in the header ``raw``."""
    found: dict[bytes, bytes] = {}
    stop = len(raw) if end is None else end
    for name in keywords:
        at = raw.find(name, 0, stop)
        while at != -1 and (at % CARD or raw[at + 8 : at + 9] != b"="):
            at = raw.find(name, at + 1, stop)
        if at != -1:
            found[name] = raw[at + 10 : at + CARD]
    return found


def layout(raw: bytes, end: int | None = None) -> Layout:
    """The data unit announced by the header ``raw`` (its END card at ``end``, else
    found): BITPIX, NAXIS, NAXISn, PCOUNT, GCOUNT and random groups' NAXIS1 = 0 marker.

    Raises ValueError when a size keyword is missing or not a valid number.
    """
    stop = end_card(raw) if end is None else end
    if stop < 0:
        stop = len(raw)
    values = _in_order(raw, stop)
    if values is None:
        values = {}
        # The few size cards found by the regex engine, not a Python loop over every
        # card: this runs for every new file at plan time (wholeness.check).
        for found in _SIZE_CARD.finditer(raw, 0, stop):
            at = found.start()
            if at % CARD == 0 and found.end() == at + 9:
                values.setdefault(found[1], raw[at + 10 : at + CARD])
    naxis = _integer(values, b"NAXIS", None)
    bitpix = _integer(values, b"BITPIX", None)
    if abs(bitpix) not in _BITPIX:
        raise ValueError(f"BITPIX {bitpix} is not a FITS BITPIX")
    if not 0 <= naxis <= 999:
        raise ValueError(f"NAXIS {naxis} is not a FITS NAXIS")
    if naxis == 0:
        return Layout(0, 0)
    axes = [_integer(values, b"NAXIS%d" % i, None) for i in range(1, naxis + 1)]
    if axes[0] == 0 and values.get(b"GROUPS", b"").split(b"/")[0].strip() == b"T":
        # Random groups: NAXIS1 = 0 is a marker, not an axis.
        axes = axes[1:]
    pcount = _integer(values, b"PCOUNT", 0)
    gcount = _integer(values, b"GCOUNT", 1)
    count = 1
    for axis in axes:
        count *= axis
    size = abs(bitpix) // 8 * gcount * (pcount + count)
    if size < 0 or min(axes, default=0) < 0:
        raise ValueError("negative data size")
    return Layout(size, padded(size))


def _in_order(raw: bytes, stop: int) -> dict[bytes, bytes] | None:
    """The size cards of a primary image header written as the standard orders them
    (BITPIX, NAXIS, NAXIS1..n as cards 1, 2, 3...) and naming no PCOUNT, GCOUNT or
    GROUPS anywhere; None for any other header (the caller then searches every card).
    The same values as that search, found with a few comparisons: the common case of
    every new file's check costs a third of the search."""
    if raw[80:89] != b"BITPIX  =" or raw[160:169] != b"NAXIS   =":
        return None
    if raw.find(b"COUNT", 0, stop) >= 0 or raw.find(b"GROUPS", 0, stop) >= 0:
        return None
    values = {b"BITPIX": raw[90:160], b"NAXIS": raw[170:240]}
    try:
        naxis = int(values[b"NAXIS"].split(b"/", 1)[0])
    except ValueError:
        return None
    if not 0 <= naxis <= 999 or (3 + naxis) * CARD > stop:
        return None
    for index in range(1, naxis + 1):
        at = (2 + index) * CARD
        keyword = b"NAXIS%d" % index
        if raw[at : at + 9] != keyword.ljust(8) + b"=":
            return None
        values[keyword] = raw[at + 10 : at + CARD]
    return values


def _integer(values: dict[bytes, bytes], keyword: bytes, default: int | None) -> int:
    field = values.get(keyword)
    if field is None:
        if default is None:
            raise ValueError(f"bad size keywords (no {keyword.decode()})")
        return default
    text = field.split(b"/", 1)[0].strip()
    try:
        return int(text)
    except ValueError:
        pass
    try:
        number = float(text)
    except ValueError:
        number = math.nan
    if not math.isfinite(number) or number != int(number):
        raise ValueError(f"bad size keywords ({keyword.decode()} = {text[:20]!r})")
    return int(number)


class HeaderTooLong(ValueError):
    """A header without END within MAX_HEADER_CARDS cards (the reason is TOO_MANY_CARDS)."""

    def __init__(self) -> None:
        super().__init__(TOO_MANY_CARDS)


def is_damage(exc: BaseException) -> bool:
    """Whether ``exc`` is what the parsers raise for a damaged file: ValueError (with
    UnicodeDecodeError), EOFError, zlib and struct errors, astropy's VerifyError, and the
    OSError without errno of gzip and bz2 (BadGzipFile, "Invalid data stream")."""
    if isinstance(exc, OSError):
        return exc.errno is None
    if isinstance(exc, (ValueError, EOFError, zlib.error, struct.error)):
        return True
    # astropy is loaded once a FITS header was parsed; never import it just to ask.
    verify = sys.modules.get("astropy.io.fits.verify")
    return verify is not None and isinstance(exc, verify.VerifyError)


def reader_bug(shown: str, exc: BaseException) -> LocalTransient:
    """The error for a reader bug (TypeError, KeyError...) met reading ``shown``'s header:
    not the user's damage, so not skipped for good as a corrupt file would be, but
    retried with backoff and reported."""
    why = f"internal error reading its header ({type(exc).__name__}: {exc})"
    return LocalTransient(f"{shown}: {why}", f"{why}: retried next run; please report it")


def open_fits(path: str, opened: IO[bytes] | None = None) -> tuple[IO[bytes], bool]:
    """The (decompressed) byte stream of a FITS file and whether it is a compressed stream.

    ``opened``: the file, already open; closing the stream returned then leaves it open.
    """
    # Not a with-block: the caller closes the returned stream, which owns this file.
    raw = open(path, "rb") if opened is None else opened
    try:
        raw.seek(0)
        magic = raw.read(3)
        raw.seek(0)
        if magic[:2] == b"\x1f\x8b":
            unzipped = gzip.GzipFile(fileobj=raw, mode="rb")
            if opened is None:
                # GzipFile closes a file it opened itself, not one handed to it: make it so.
                unzipped.myfileobj = raw
            return unzipped, True
        if magic == b"BZh":
            unzipped = bz2.BZ2File(raw, mode="rb")
            return (_Closing(unzipped, raw) if opened is None else unzipped), True
    except BaseException:
        if opened is None:
            raw.close()
        raise
    return (raw if opened is None else _Kept(raw)), False


def read_header_bytes(stream: IO[bytes], first: bool) -> bytes | None:
    """The raw bytes of the next header, None at a clean end of the file.

    Raises ValueError (with a short reason) when the header is truncated or not FITS,
    HeaderTooLong (a ValueError) past MAX_HEADER_CARDS cards.
    """
    block = stream.read(BLOCK)
    if not block:
        if first:
            raise ValueError("empty file")
        return None
    if first:
        if not block.startswith(PRIMARY):
            raise ValueError("no SIMPLE card: not a FITS file")
    elif not block.startswith(EXTENSION):
        # Bytes after the last HDU (padding, appended junk) end the file, they do not
        # make it corrupt.
        return None
    blocks = [block]
    for _ in range(MAX_HEADER_BLOCKS):
        if len(block) < BLOCK:
            raise ValueError("the file ends inside the header")
        if end_card(block) >= 0:
            return b"".join(blocks)
        block = stream.read(BLOCK)
        blocks.append(block)
    raise HeaderTooLong()


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
    path: str, max_hdus: int, text: Callable[[Any], str | None],
    opened: IO[bytes] | None = None,
) -> Iterator[tuple[Callable[[str], str | None], bool]]:
    """A keyword getter and "compressed stream?" for each of the first ``max_hdus`` HDUs.

    The getter returns ``text(value)`` of a keyword, or None. Only headers are read; the
    data units are skipped. Raises ValueError (or astropy's, gzip's, bz2's errors) for a
    damaged file, HeaderTooLong for a header of more than MAX_HEADER_CARDS cards and
    OSError when it cannot be read. ``opened``: the file, already open (left open).
    """
    stream, compressed = open_fits(path, opened)
    with stream:
        for index in range(max_hdus):
            raw = read_header_bytes(stream, first=index == 0)
            if raw is None:
                return
            if len(raw) > _ASTROPY_BLOCKS * BLOCK:
                # astropy would build a Card for each of 100,000 cards: the raw cards
                # answer the few keywords the rules ask for.
                yield _raw_get(raw), compressed
            else:
                yield _cards_get(raw.translate(_PRINTABLE), text), compressed
            if index + 1 < max_hdus:
                stream.seek(layout(raw).padded, os.SEEK_CUR)


def _cards_get(raw: bytes, text: Callable[[Any], str | None]):
    """The getter of a header's keywords: fitscards reads the plain cards, astropy
    (imported, and the header parsed, only then) any other."""
    cards = Cards(raw)
    parsed: Any = _UNPARSED  # astropy's Header of `raw`, once a card needs it

    def get(keyword: str) -> str | None:
        nonlocal parsed
        try:
            return text(cards.value(keyword))
        except Unsure:
            pass
        if parsed is _UNPARSED:
            try:
                parsed = _fits_header_class().fromstring(raw)
            except Exception:
                # Never seen for whole printable cards; the raw text is the best left.
                parsed = None
        if parsed is None:
            return _raw_value(raw, keyword)
        return _astropy_get(parsed, raw, keyword, text)

    return get


_UNPARSED = object()


def _astropy_get(header: Any, raw: bytes, keyword: str,
                 text: Callable[[Any], str | None]) -> str | None:  # fmt: skip
    """``keyword``'s value in astropy's ``header`` (parsed from ``raw``), as ``text``."""
    try:
        return text(header.get(keyword))
    except Exception:
        # astropy refuses a card it cannot parse (VerifyError), such as an unquoted
        # DATE-OBS = 2021-03-04T21:15:03 some writers produce; read its raw text.
        return _raw_value(raw, keyword)


def _raw_get(raw: bytes) -> Callable[[str], str | None]:
    def get(keyword: str) -> str | None:
        return _raw_value(raw, keyword)

    return get


def _raw_value(raw: bytes, keyword: str) -> str | None:
    """The text after ``KEYWORD =`` in the raw header, without its comment, or None."""
    name = keyword.encode("ascii").ljust(8)
    field = card_values(raw, (name,)).get(name)
    if field is None:
        return None
    text = field.translate(_PRINTABLE).decode("ascii")
    if text.lstrip().startswith("'"):
        text = text.lstrip()[1:].split("'", 1)[0]
    else:
        text = text.split("/", 1)[0]
    return text.strip() or None


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


class _Kept(_Closing):
    """A caller's open file, read as a stream that leaves it open when closed."""

    def __init__(self, raw: IO[bytes]):
        super().__init__(raw, raw)

    def close(self) -> None:
        pass
