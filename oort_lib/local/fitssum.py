"""FITS checksums verified on a file's bytes as they stream by (FITS standard 4.0,
appendix J): each HDU's DATASUM (the 32-bit ones'-complement sum of its data unit) and
CHECKSUM (which makes its header and data sum to -0).

The stream is followed HDU by HDU from the raw cards: a header is collected until its
END card, and its data unit is summed only when the header carries a checksum; otherwise
it is skipped by arithmetic, so a file without checksums costs one header parse per HDU.

Checksum keywords go stale in the wild: a tool that edits a header (a plate solver adding
its WCS, a crop keeping the camera's header) often keeps the old cards, and such files
are whole. A mismatch is therefore damage only when the header vouches for itself (it
still sums to -0 with its own DATASUM, so the data no longer matches it), or when the
sums miss by a single bit (a flipped bit, which no edit produces). Other mismatches are
stale checksums: counted in ``stale``, never an error.
"""

from __future__ import annotations

from typing import Any

from oort_lib.errors import ChecksumMismatch
from oort_lib.local.fitsfile import (
    BLOCK,
    EXTENSION,
    MAX_HEADER_BLOCKS,
    PRIMARY,
    TOO_MANY_CARDS,
    card_values,
    end_card,
    layout,
)

__all__ = ["MAX_HDUS", "OnesSum", "StreamCheck", "ones_complement_sum"]

# HDUs followed at most: a file of more HDUs is still sent, its later HDUs unverified.
MAX_HDUS = 1000
# Ones'-complement sums are sums modulo 2**32 - 1 (all ones is -0, the same as 0).
_MODULUS = 0xFFFFFFFF
# What a single flipped bit does to a sum: it adds or removes one power of two.
_ONE_BIT = frozenset({1 << k for k in range(32)} | {_MODULUS - (1 << k) for k in range(32)})
_CHECKSUM = b"CHECKSUM"
_DATASUM = b"DATASUM "
# The initial value of the CHECKSUM card while it is computed: a checksum never written.
_CHECKSUM_PLACEHOLDER = "0" * 16

_np: Any = None


def _numpy() -> Any:
    # Imported on the first sum only: a file without checksums never pays for numpy.
    global _np
    if _np is None:
        import numpy

        _np = numpy
    return _np


def _fold(total: int) -> int:
    """``total`` with its carries added back in: a 32-bit ones'-complement value."""
    while total >> 32:
        total = (total & 0xFFFFFFFF) + (total >> 32)
    return total


class OnesSum:
    """The running 32-bit ones'-complement sum of big-endian words over bytes fed in
    order, in pieces of any size (not aligned to 4 bytes)."""

    __slots__ = ("_head", "_total")

    def __init__(self, offset: int = 0) -> None:
        """``offset``: where in its word the first byte falls (0-3), as for a region
        that starts inside a word."""
        self._total = 0
        self._head = bytes(offset % 4)  # the bytes of the word under way

    def add(self, data: bytes | bytearray | memoryview) -> None:
        """Add ``data`` (the bytes after those added before)."""
        view = memoryview(data).cast("B")
        if self._head:
            need = 4 - len(self._head)
            self._head += bytes(view[:need])
            view = view[need:]
            if len(self._head) < 4:
                return
            self._total += int.from_bytes(self._head, "big")
            self._head = b""
        whole = len(view) - len(view) % 4
        if whole:
            words = _numpy().frombuffer(view[:whole], dtype=">u4")
            # uint64 cannot overflow below 2**32 words (16 GiB) per call.
            self._total += int(words.sum(dtype="u8"))
        self._head = bytes(view[whole:])
        self._total = _fold(self._total)

    @property
    def value(self) -> int:
        """The sum so far, a word under way completed with zeros."""
        return _fold(self._total + int.from_bytes(self._head.ljust(4, b"\0"), "big"))


def ones_complement_sum(data: bytes | bytearray | memoryview) -> int:
    """The 32-bit ones'-complement sum of ``data``'s big-endian words (zero-padded)."""
    total = OnesSum()
    total.add(data)
    return total.value


def _same(a: int, b: int) -> bool:
    return (a - b) % _MODULUS == 0


def _one_bit_apart(a: int, b: int) -> bool:
    return (a - b) % _MODULUS in _ONE_BIT


class _Sums:
    """The checksum keywords of one HDU and the sums of its bytes so far."""

    def __init__(self, header: bytes, datasum: int | None, checksum: bool, data: int):
        self.header = ones_complement_sum(header)
        self.datasum = datasum
        self.checksum = checksum
        self.data_length = data
        self.data = OnesSum()
        self.padding = OnesSum(data)
        self.blank_padding = True
        self.seen = 0

    def add(self, view: memoryview) -> None:
        """Sum the next bytes of the data unit (data, then its padding)."""
        in_data = max(0, min(len(view), self.data_length - self.seen))
        if in_data:
            self.data.add(view[:in_data])
        if in_data < len(view):
            pad = view[in_data:]
            self.padding.add(pad)
            if self.blank_padding and bytes(pad).strip(b" "):
                self.blank_padding = False
        self.seen += len(view)

    def candidates(self) -> list[int]:
        """The data sums the writer may have meant: the standard's (padding included)
        and, when the padding is ASCII blanks (tables), astropy's without padding."""
        full = _fold(self.data.value + self.padding.value)
        if self.blank_padding and self.seen > self.data_length:
            return [full, self.data.value]
        return [full]


class StreamCheck:
    """Fed a file's bytes in order (any chunk sizes); verifies each FITS HDU's DATASUM and
    CHECKSUM as its bytes pass.

    ``active`` becomes False as soon as the stream is known not to be followed any
    further: not a plain FITS file (no ``SIMPLE  =`` at 0: gzip, bzip2, XISF...), bytes
    after the last HDU that do not start an extension (trailing bytes are fine), a header
    it cannot size, or MAX_HDUS HDUs; ``stopped`` then says why and ``feed`` is a no-op.
    ``verified`` counts the HDUs whose DATASUM/CHECKSUM were verified, ``stale`` those
    whose checksum cards no longer describe them (an edited file, see the module).

    With ``verify=False`` it only follows the HDU structure (as ``wholeness`` does for a
    decompressed stream): ``hdus``, ``boundary`` and ``missing`` say where the stream
    stands.
    """

    def __init__(self, name: str, *, verify: bool = True, max_hdus: int = MAX_HDUS) -> None:
        """``name``: the file's display name, for messages."""
        self.name = name
        self.active = True
        self.stopped: str | None = None
        self.not_fits = False  # stopped because the stream does not start as FITS
        self.verified = 0
        self.stale = 0
        self.hdus = 0  # complete HDUs
        self.position = 0  # bytes fed
        self.unit_end = 0  # where the HDU being read ends (known once its header is)
        self._verify = verify
        self._max_hdus = max_hdus
        self._header = bytearray()
        self._remaining = 0  # bytes of the current data unit still to come
        self._in_data = False
        self._sums: _Sums | None = None

    @property
    def boundary(self) -> bool:
        """True when the bytes fed so far end at the end of an HDU (or in bytes after the
        last one): a stream ending here ends whole. False inside a header or a data unit."""
        if self._in_data:
            return False
        if self.not_fits:
            return False
        return not self._header

    @property
    def header_bytes(self) -> bytes:
        """The bytes of the header under way (empty outside a header)."""
        return bytes(self._header)

    @property
    def missing(self) -> int | None:
        """Bytes still to come for the data unit being read, None outside a data unit."""
        return self._remaining if self._in_data else None

    def feed(self, data: bytes | bytearray | memoryview) -> None:
        """Take the next bytes of the file.

        Raises ChecksumMismatch (short=False) as soon as an HDU's bytes contradict its
        DATASUM or CHECKSUM: at its last byte at the latest, at its header's end when the
        header itself is damaged.
        """
        if not self.active:
            return
        view = memoryview(data).cast("B")
        while view and self.active:
            if self._in_data:
                count = min(self._remaining, len(view))
                if self._sums is not None:
                    self._sums.add(view[:count])
                self._remaining -= count
                self.position += count
                view = view[count:]
                if not self._remaining:
                    self._end_hdu()
            else:
                view = self._take_header(view)

    def finish(self) -> None:
        """Call after the last byte. A stream that ends inside an HDU is not this class's
        business (``boundary`` and ``missing`` tell it); nothing to verify here."""
        self.active = False

    def _stop(self, why: str) -> None:
        self.active = False
        self.stopped = why

    def _take_header(self, view: memoryview) -> memoryview:
        """Collect header bytes up to the end of the current block; returns the rest."""
        count = min(BLOCK - len(self._header) % BLOCK, len(view))
        self._header += view[:count]
        if len(self._header) <= BLOCK:
            expected = EXTENSION if self.hdus else PRIMARY
            start = bytes(self._header[: len(expected)])
            if not expected.startswith(start):
                if self.hdus:
                    self._header = bytearray()
                    self._stop("bytes after the last HDU")
                else:
                    self.not_fits = True
                    self._stop("not a FITS file (no SIMPLE card)")
                return view[:0]
        self.position += count
        view = view[count:]
        if len(self._header) % BLOCK:
            return view
        end = end_card(self._header, len(self._header) - BLOCK)
        if end >= 0:
            self._start_data(bytes(self._header), end)
        elif len(self._header) >= MAX_HEADER_BLOCKS * BLOCK:
            self._stop(f"HDU {self.hdus}'s {TOO_MANY_CARDS}")
        return view

    def _start_data(self, raw: bytes, end: int) -> None:
        try:
            unit = layout(raw, end)
        except ValueError as exc:
            self._stop(f"HDU {self.hdus}'s header cannot be sized ({exc})")
            return
        self._header = bytearray()
        self._sums = self._checksums(raw, end, unit.data) if self._verify else None
        self.unit_end = self.position + unit.padded
        self._remaining = unit.padded
        self._in_data = True
        if not unit.padded:
            self._end_hdu()

    def _checksums(self, raw: bytes, end: int, data: int) -> _Sums | None:
        """The sums to keep for this HDU, None when its header carries no checksum.

        Raises ChecksumMismatch when the header alone is shown damaged.
        """
        cards = card_values(raw, (_CHECKSUM, _DATASUM), end)
        checksum = _string(cards.get(_CHECKSUM)) not in ("", _CHECKSUM_PLACEHOLDER)
        datasum = _datasum(cards.get(_DATASUM), data)
        if not checksum and datasum is None:
            return None
        sums = _Sums(raw, datasum, checksum, data)
        if checksum and datasum is not None and _one_bit_apart(sums.header + datasum, 0):
            self._damaged("CHECKSUM does not match its header")
        return sums

    def _end_hdu(self) -> None:
        self._in_data = False
        sums, self._sums = self._sums, None
        if sums is not None:
            self._judge(sums)
        self.hdus += 1
        if self.hdus >= self._max_hdus:
            self._stop(f"more than {self._max_hdus:,} HDUs")

    def _judge(self, sums: _Sums) -> None:
        """Count the HDU verified or stale; raises ChecksumMismatch for damage."""
        found = sums.candidates()
        declared = sums.datasum
        whole = [sums.header + d for d in found]  # header and data: -0 when intact
        if sums.checksum and declared is not None and _same(sums.header + declared, 0):
            # The header vouches for its DATASUM: the data must match it exactly.
            if not any(_same(d, declared) for d in found):
                self._damaged(f"DATASUM ({declared}) does not match its data ({found[0]})")
        elif sums.checksum and any(_same(w, 0) for w in whole):
            pass
        elif sums.checksum and any(_one_bit_apart(w, 0) for w in whole):
            self._damaged("CHECKSUM does not match its header and data")
        elif declared is not None and any(_same(d, declared) for d in found):
            pass
        elif declared is not None and any(_one_bit_apart(d, declared) for d in found):
            self._damaged(f"DATASUM ({declared}) does not match its data ({found[0]})")
        else:
            self.stale += 1
            return
        self.verified += 1

    def _damaged(self, what: str) -> None:
        self.active = False
        reason = f"HDU {self.hdus}'s {what}: the file is damaged"
        raise ChecksumMismatch(f"{self.name}: {reason}", reason)


def _string(field: bytes | None) -> str:
    """The text of a quoted card value (or of a bare one), stripped."""
    if field is None:
        return ""
    text = field.decode("ascii", "replace").strip()
    if text.startswith("'"):
        return text[1:].split("'", 1)[0].strip()
    return text.split("/", 1)[0].strip()


def _datasum(field: bytes | None, data: int) -> int | None:
    """The DATASUM value, None when absent or not computed.

    A blank or non-numeric DATASUM was never computed. '0' over a non-empty data unit is
    the placeholder some writers leave: a real sum of data that is not all zeros is never
    0, and astropy itself writes '0' only for an HDU without data.
    """
    text = _string(field)
    if not text.isdigit():
        return None
    value = int(text)
    if value > _MODULUS or (value == 0 and data):
        return None
    return value
