"""FITS files for the tests: the one factory of frames and trees of frames (written with
oort_lib.samples), and ways to read, damage or alter such files.

``write_tree(root, {relpath: header})`` writes a frame at each relpath and settles them
(dates them an hour back, old enough for any ``--min-age`` the tests give; ``settle``);
``write_frame`` writes one. Whole and partial frames of every kind are in partial.py.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from pathlib import Path

from oort_lib.samples import write_fits

BLOCK = 2880
CARD = 80
NIGHT = {"DATE-OBS": "2021-06-01T22:00:00", "OBJECT": "M 31"}  # a frame of one night


def settle(*paths: Path, seconds: float = 3600) -> None:
    """Date `paths` `seconds` back (their access and modification times)."""
    for path in paths:
        os.utime(path, (time.time() - seconds, time.time() - seconds))


def write_frame(path: Path, header: dict, *, shape: tuple[int, int] = (16, 16),
                settled: bool = True) -> Path:
    """A FITS frame of `shape` pixels at `path` with the cards of `header`, settled unless
    `settled` is false. Returns `path`."""
    made = write_fits(path, header, shape=shape)
    if settled:
        settle(made)
    return made


def write_tree(root: Path, files: Mapping[str, dict], **options) -> list[Path]:
    """A frame at `root`/relpath for each relpath of `files`, with the header given for it
    (`options` as write_frame's). Returns their paths, in the order of `files`."""
    return [write_frame(root / relpath, header, **options)
            for relpath, header in files.items()]


def one_file(root: Path) -> Path:
    """`root` holding one frame (M31/m31.fits, just written)."""
    write_frame(root / "M31" / "m31.fits", {"DATE-OBS": "2021-06-01T22:00:00",
                                            "OBJECT": "M31"}, settled=False)
    return root


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
    """Offset just past the block holding the END card of the header at ``start``.
    Raises ValueError if the header has no END card."""
    at = start
    while True:
        block = raw[at : at + BLOCK]
        if not block:
            raise ValueError("no END card")
        if any(block.startswith(b"END     ", i) for i in range(0, BLOCK, CARD)):
            return at + BLOCK
        at += BLOCK


def flip_bytes(data: bytes, start: int, count: int) -> bytes:
    """``data`` with ``count`` bytes from ``start`` inverted (damaged, same length)."""
    damaged = bytes(b ^ 0xFF for b in data[start : start + count])
    return data[:start] + damaged + data[start + count :]
