"""Whether a file is a whole frame, checked before it is planned for upload.

A FITS file is whole when every HDU's header ends with an END card and its data unit
(BITPIX, NAXISn, PCOUNT, GCOUNT, padded to whole 2880-byte blocks) lies inside the file;
bytes after the last HDU are fine. Tile-compressed images (.fz, RICE .fits) are BINTABLEs
whose heap is PCOUNT: the same rule. An XISF file is whole when every attached block
lies inside it (but a thumbnail's, a mere preview: see xisffile); a gzip or bzip2 file
when its stream reaches its end marker with a good check value, and the FITS file in it
is whole.

A plain FITS file costs one read per header and a seek per data unit, from the raw cards
(no astropy); a compressed one is decompressed as a stream, in constant memory.

The padding of the last block is required: the standard says every HDU is whole blocks,
and a writer stopped in its last block (the one most often missing) cannot be told from
one that omits the padding. Every real file of the test data (Seestar, PHD2, IRAF, fpack,
Orion, GIMP) is padded.
"""

from __future__ import annotations

import bz2
import os
import zlib
from collections.abc import Callable, Iterator
from typing import IO, NamedTuple, NoReturn

from oort_lib.errors import LocalTransient, NotWhole, local_problem
from oort_lib.local.fitsfile import (
    BLOCK,
    CARD,
    EXTENSION,
    MAX_HEADER_BLOCKS,
    PRIMARY,
    TOO_MANY_CARDS,
    end_card,
    layout,
    padded,
)
from oort_lib.local.fitssum import StreamCheck
from oort_lib.local.scan import display_name
from oort_lib.local.xisffile import MAX_HEADER, PREAMBLE, SIGNATURE, header_length, scan_header

__all__ = ["MAX_HDUS", "Whole", "check"]

# HDUs checked at most: a file of more is refused with that reason (real files have a
# handful; an archive table of thousands is far below this).
MAX_HDUS = 100_000
_CHUNK = 1 << 20
_GZIP = b"\x1f\x8b"
_BZIP2 = b"BZh"
_NOT_FITS = "is neither FITS nor XISF (no SIMPLE card or XISF signature)"


class Whole(NamedTuple):
    """A whole frame: how many units were checked, and a line for `explain`."""

    units: int  # HDUs (FITS) or attachments (XISF) checked
    summary: str  # "3 HDUs", "1 HDU, gzip stream complete", "2 attachments"...


class _Verdict(Exception):
    """Not whole, for ``reason`` (``short``: the file ends early)."""

    def __init__(self, reason: str, short: bool):
        super().__init__(reason)
        self.reason = reason
        self.short = short


def _short(reason: str) -> NoReturn:
    raise _Verdict(reason, True)


def _damaged(reason: str) -> NoReturn:
    raise _Verdict(reason, False)


def check(path: str, size: int | None = None, *, verify_checksums: bool = False,
          opened: IO[bytes] | None = None) -> Whole:
    """Whether the file at ``path`` (its first ``size`` bytes, the size planned) is whole.

    With ``verify_checksums`` every HDU's DATASUM/CHECKSUM is verified too (reading every
    byte). Raises NotWhole (short=True) when the file ends before its structure does,
    NotWhole (short=False) when its content contradicts it (a bad gzip check value, a
    damaged bzip2 stream, a header that cannot be sized, not FITS or XISF at all),
    ChecksumMismatch (a NotWhole) for a checksum that does not match, and LocalTransient
    when the file cannot be read now. ``opened``: the file, already open (binary, left
    open), so that a caller reading its header next opens it once.
    """
    path = os.fspath(path)
    try:
        if opened is not None:
            return _check_file(opened, size, path, verify_checksums)
        with open(path, "rb") as f:
            return _check_file(f, size, path, verify_checksums)
    except _Verdict as verdict:
        raise NotWhole(f"{display_name(path)}: {verdict.reason}", verdict.reason,
                       short=verdict.short) from None  # fmt: skip
    except OSError as exc:
        problem = local_problem(exc)
        raise LocalTransient(f"{display_name(path)}: {problem.reason}",
                             problem.reason) from exc


def _check_file(f: IO[bytes], size: int | None, path: str, verify: bool) -> Whole:
    end = os.fstat(f.fileno()).st_size
    if size is not None:
        end = min(end, size)
    f.seek(0)
    return _check(f, end, path, verify)


def _check(f: IO[bytes], end: int, path: str, verify: bool) -> Whole:
    # Every new file is checked at plan time: the name shown in messages is made only
    # where a stream check needs it (and by check() for an error), never for a frame.
    if end == 0:
        _short("is empty")
    # The first block: the magic, and a plain FITS file's first header block, read once.
    head = f.read(min(end, BLOCK))
    f.seek(0)
    for magic, kind in ((_GZIP, "gzip"), (_BZIP2, "bzip2")):
        if head.startswith(magic):
            return _compressed(f, end, kind, display_name(path), verify)
    if _starts(head, PRIMARY):
        if verify:
            follow, fed = _follow(_chunks(f, end), display_name(path), True)
            hdus = _followed(follow, fed)
            return Whole(hdus, _hdus(hdus) + _sums(follow))
        hdus = _plain_fits(f, end, head)
        return Whole(hdus, _hdus(hdus))
    if _starts(head, SIGNATURE):
        return _xisf(f, end)
    if len(head) < len(PRIMARY) and (_GZIP.startswith(head) or _BZIP2.startswith(head)):
        _short("ends inside its compressed stream's header")
    _damaged(_NOT_FITS)


def _starts(head: bytes, magic: bytes) -> bool:
    """``head`` starts with ``magic``, or is all of the file and a start of it."""
    return head.startswith(magic) or (len(head) < len(magic) and magic.startswith(head))


def _hdus(count: int) -> str:
    return "1 HDU" if count == 1 else f"{count:,} HDUs"


def _chunks(f: IO[bytes], left: int) -> Iterator[bytes]:
    """The next ``left`` bytes of ``f`` (fewer if it ends sooner), a chunk at a time."""
    while left > 0:
        chunk = f.read(min(_CHUNK, left))
        if not chunk:
            return
        left -= len(chunk)
        yield chunk


# --- FITS -------------------------------------------------------------------------------


def _label(hdu: int) -> str:
    return "its header" if hdu == 0 else f"its HDU {hdu} header"


def _short_of(hdu: int, need: int, end: int) -> NoReturn:
    _short(f"ends {need - end:,} bytes short of {_label(hdu)}'s {need:,}")


def _inside_header(raw: bytes, start: int, hdu: int) -> NoReturn:
    """The file ends inside the header ``raw`` of HDU ``hdu``, read from ``start``."""
    at = end_card(raw)
    if at < 0:
        _short(f"ends inside {_label(hdu)} (no END card)")
    try:
        unit = layout(raw, at)
    except ValueError as exc:
        _damaged(f"HDU {hdu}'s header cannot be sized ({exc})")
    _short_of(hdu, start + padded(at + CARD) + unit.padded, start + len(raw))


def _plain_fits(f: IO[bytes], end: int, first: bytes) -> int:
    """The number of HDUs of a whole plain FITS file of ``end`` bytes whose first block
    (or all of it, if shorter) is ``first``; raises _Verdict."""
    at = hdus = 0
    while at < end:
        if hdus >= MAX_HDUS:
            _damaged(f"has more than {MAX_HDUS:,} HDUs (the most oort-sync checks)")
        if at:
            f.seek(at)
            raw = f.read(min(BLOCK, end - at))
        else:
            raw = first
            f.seek(len(first))  # where _rest_of_header reads on
        if hdus and not _starts(raw, EXTENSION):
            break  # bytes after the last HDU
        found = end_card(raw)
        if found < 0:
            raw, found = _rest_of_header(f, bytearray(raw), at, end, hdus)
        header = padded(found + CARD)
        try:
            unit = layout(bytes(raw[:header]), found)
        except ValueError as exc:
            _damaged(f"HDU {hdus}'s header cannot be sized ({exc})")
        need = at + header + unit.padded
        if need > end:
            _short_of(hdus, need, end)
        at, hdus = need, hdus + 1
    return hdus


def _rest_of_header(f: IO[bytes], raw: bytearray, at: int, end: int, hdu: int
                    ) -> tuple[bytearray, int]:  # fmt: skip
    """Read on until the END card of the header whose first block is ``raw``:
    (the header's bytes, the END card's offset); raises _Verdict."""
    found = -1
    while found < 0:
        if len(raw) >= MAX_HEADER_BLOCKS * BLOCK:
            _damaged(f"HDU {hdu}'s {TOO_MANY_CARDS}")
        if len(raw) % BLOCK or at + len(raw) >= end:
            _inside_header(bytes(raw), at, hdu)
        more = f.read(min(64 * BLOCK, end - at - len(raw)))
        if not more:
            _inside_header(bytes(raw), at, hdu)
        raw += more
        found = end_card(raw, len(raw) - len(more))
    return raw, found


def _follow(chunks: Iterator[bytes], shown: str, verify: bool) -> tuple[StreamCheck, int]:
    """The FITS stream ``chunks`` followed to its end, and its length. Raises
    ChecksumMismatch when verifying (and _Verdict for a damaged compressed stream)."""
    follow = StreamCheck(shown, verify=verify, max_hdus=MAX_HDUS)
    fed = 0
    for chunk in chunks:
        fed += len(chunk)
        follow.feed(chunk)
    follow.finish()
    return follow, fed


def _followed(follow: StreamCheck, fed: int) -> int:
    """The HDUs of the stream ``follow`` was fed ``fed`` bytes of; raises _Verdict."""
    if follow.not_fits:
        _damaged("is not a FITS file (no SIMPLE card)")
    if follow.boundary:
        if follow.position < fed and follow.hdus >= MAX_HDUS:
            _damaged(f"has more than {MAX_HDUS:,} HDUs (the most oort-sync checks)")
        return follow.hdus
    if follow.stopped:
        _damaged(follow.stopped)
    if follow.missing is not None:
        _short_of(follow.hdus, follow.unit_end, follow.unit_end - follow.missing)
    raw = follow.header_bytes
    _inside_header(raw, follow.position - len(raw), follow.hdus)


def _sums(follow: StreamCheck) -> str:
    """', DATASUM verified' and the like, for the summary."""
    verified, stale, hdus = follow.verified, follow.stale, follow.hdus
    parts = []
    if verified:
        parts.append("DATASUM verified" + ("" if verified == hdus else
                                           f" in {verified:,} of {hdus:,}"))  # fmt: skip
    if stale:
        parts.append("checksums out of date" + ("" if stale == hdus else f" in {stale:,}")
                     + " (not verified)")  # fmt: skip
    return ", " + (", ".join(parts) or "no DATASUM")


# --- gzip and bzip2 ---------------------------------------------------------------------


def _compressed(f: IO[bytes], end: int, kind: str, shown: str, verify: bool) -> Whole:
    inflate = _gunzip if kind == "gzip" else _bunzip
    complete: list[bool] = []
    follow, fed = _follow(inflate(_chunks(f, end), complete), shown, verify)
    if not complete[0]:
        _short(f"its {kind} stream ends before its end marker")
    if follow.not_fits:
        _damaged(f"its {kind} stream holds no FITS file (no SIMPLE card)")
    try:
        hdus = _followed(follow, fed)
    except _Verdict as verdict:
        # The stream is complete: the file in it will not grow, it is damaged.
        _damaged(f"its {kind} stream is complete but the FITS file in it {verdict.reason}")
    sums = _sums(follow) if verify else ""
    return Whole(hdus, f"{_hdus(hdus)}, {kind} stream complete{sums}")


def _gunzip(chunks: Iterator[bytes], complete: list[bool]) -> Iterator[bytes]:
    """The decompressed bytes of gzip members (``complete`` gets whether the last one
    reached its trailer); raises _Verdict for a damaged stream."""
    return _members(chunks, complete, lambda: _Zlib(), b"\x1f", "gzip")


def _bunzip(chunks: Iterator[bytes], complete: list[bool]) -> Iterator[bytes]:
    """As _gunzip, for bzip2 streams."""
    return _members(chunks, complete, lambda: _Bz2(), b"B", "bzip2")


class _Zlib:
    """One gzip member: zlib checks its CRC-32 and length trailer."""

    def __init__(self) -> None:
        self._d = zlib.decompressobj(16 + zlib.MAX_WBITS)

    def take(self, data: bytes) -> Iterator[bytes]:
        piece = self._d.decompress(data, _CHUNK)
        yield piece
        while not self._d.eof and (self._d.unconsumed_tail or len(piece) == _CHUNK):
            piece = self._d.decompress(self._d.unconsumed_tail, _CHUNK)
            yield piece

    @property
    def eof(self) -> bool:
        return self._d.eof

    @property
    def unused(self) -> bytes:
        return self._d.unused_data


class _Bz2:
    """One bzip2 stream: bz2 checks its block and stream CRCs."""

    def __init__(self) -> None:
        self._d = bz2.BZ2Decompressor()

    def take(self, data: bytes) -> Iterator[bytes]:
        yield self._d.decompress(data, _CHUNK)
        while not self._d.eof and not self._d.needs_input:
            yield self._d.decompress(b"", _CHUNK)

    @property
    def eof(self) -> bool:
        return self._d.eof

    @property
    def unused(self) -> bytes:
        return self._d.unused_data


def _members(chunks: Iterator[bytes], complete: list[bool], new: Callable[[], _Zlib | _Bz2],
             magic: bytes, kind: str) -> Iterator[bytes]:  # fmt: skip
    member = new()
    between = False  # a member ended: another one, or bytes after the stream, follow
    for chunk in chunks:
        data = chunk
        while data:
            if between:
                if not data.startswith(magic):
                    # Bytes after the last member (zeros, junk), as gzip itself allows.
                    complete.append(True)
                    return
                member, between = new(), False
            try:
                yield from member.take(data)
            except (zlib.error, OSError, EOFError) as exc:
                _damaged(f"its {kind} stream is damaged ({_zlib_text(exc)})")
            data, between = (member.unused, True) if member.eof else (b"", False)
    complete.append(between)


def _zlib_text(exc: Exception) -> str:
    """'incorrect data check' rather than 'Error -3 while decompressing data: ...'."""
    return str(exc).rsplit(": ", 1)[-1]


# --- XISF -------------------------------------------------------------------------------


def _xisf(f: IO[bytes], end: int) -> Whole:
    preamble = f.read(PREAMBLE)
    if len(preamble) < PREAMBLE:
        _short("ends inside its XISF preamble")
    length = header_length(preamble)
    if length > MAX_HEADER:
        _damaged(f"its XISF header length {length:,} is larger than "
                 f"{MAX_HEADER // 2**20} MiB")  # fmt: skip
    if PREAMBLE + length > end:
        _short(f"ends {PREAMBLE + length - end:,} bytes short of its XISF header's "
               f"{PREAMBLE + length:,}")  # fmt: skip
    try:
        header = scan_header(f, length, (), ())
    except ValueError as exc:
        _damaged(f"its XISF header is damaged ({exc})")
    beyond = [(pos + size, pos) for pos, size in header.attachments if pos + size > end]
    if beyond:
        need, pos = max(beyond)
        _short(f"its XISF attachment at {pos} needs {need:,} bytes, the file has {end:,}")
    count = len(header.attachments)
    if not count:
        return Whole(0, "no attachments (data inline or embedded)")
    return Whole(count, f"{count:,} attachment" + ("" if count == 1 else "s"))
