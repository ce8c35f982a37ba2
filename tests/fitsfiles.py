"""Helpers that damage or alter real files written by oort_lib.samples, for header tests."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

BLOCK = 2880


def rewrite_xisf_header(path: Path, change: Callable[[bytes], bytes]) -> None:
    """Replace the XML header of the XISF file at ``path`` by ``change(header)``.

    The data blocks stay where they are (XISF.write aligns them to 4096 bytes after the
    header), so a header that still fits before the first block keeps the file valid.
    """
    raw = path.read_bytes()
    length = int.from_bytes(raw[8:12], "little")
    header = change(raw[16 : 16 + length].rstrip(b"\0"))
    first_block = raw.index(b"attachment:") + len(b"attachment:")
    data_at = int(raw[first_block : raw.index(b":", first_block)])
    assert 16 + len(header) <= data_at, "the new header would overwrite the image"
    padding = b"\0" * (data_at - 16 - len(header))
    path.write_bytes(raw[:8] + len(header).to_bytes(4, "little") + raw[12:16] + header
                     + padding + raw[data_at:])  # fmt: skip


def header_end(raw: bytes, start: int = 0) -> int:
    """Offset just past the header block holding the END card of the header at ``start``."""
    at = start
    while True:
        block = raw[at : at + BLOCK]
        if any(block.startswith(b"END     ", i) for i in range(0, BLOCK, 80)):
            return at + BLOCK
        at += BLOCK


def flip_bytes(data: bytes, start: int, count: int) -> bytes:
    """``data`` with ``count`` bytes from ``start`` inverted (damaged, same length)."""
    damaged = bytes(b ^ 0xFF for b in data[start : start + count])
    return data[:start] + damaged + data[start + count :]
