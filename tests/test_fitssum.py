"""FITS checksums verified as a file's bytes stream by (fitssum.StreamCheck)."""

from __future__ import annotations

import gzip
import io
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from fitsfiles import header_end
from helpers import REALDATA
from hypothesis import given, settings
from hypothesis import strategies as st
from partial import flip_bit

from oort_lib.errors import ChecksumMismatch
from oort_lib.local.fitssum import OnesSum, StreamCheck, ones_complement_sum

REAL = REALDATA / "tree" / "realsky"
CHUNKS = [1, 7, 2880, 1 << 20]


def pixels(seed: int, shape: tuple[int, ...], dtype: str = "int16") -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 3000, size=shape).astype(dtype)


def written(hdus: list, tmp_path: Path, checksum: bool = True) -> bytes:
    # A real file: astropy cannot write random groups to a BytesIO.
    path = tmp_path / "written.fits"
    fits.HDUList(hdus).writeto(path, checksum=checksum, overwrite=True)
    return path.read_bytes()


def header(**values) -> fits.Header:
    result = fits.Header()
    result.update({"DATE-OBS": "2021-03-04T21:15:03", "OBJECT": "M51", **values})
    return result


def single(tmp_path: Path) -> bytes:
    return written([fits.PrimaryHDU(pixels(1, (70, 50)), header())], tmp_path)


def multi(tmp_path: Path) -> bytes:
    table = fits.BinTableHDU.from_columns([fits.Column("flux", "E", array=np.arange(40.0))])
    ascii = fits.TableHDU.from_columns([fits.Column("n", "I10", array=np.arange(13))])
    return written([fits.PrimaryHDU(None, header()), fits.ImageHDU(pixels(2, (30, 41))),
                    table, ascii], tmp_path)  # fmt: skip


def tiles(tmp_path: Path) -> bytes:
    image = fits.CompImageHDU(pixels(3, (96, 80)), header(), compression_type="RICE_1")
    return written([fits.PrimaryHDU(), image], tmp_path)


def groups(tmp_path: Path) -> bytes:
    data = np.ascontiguousarray(np.arange(60.0).reshape(6, 1, 10).astype(">f4"))
    group = fits.GroupData(data, parnames=["u", "v"], pardata=[np.arange(6.0)] * 2,
                           bitpix=-32)  # fmt: skip
    return written([fits.GroupsHDU(group)], tmp_path)


BUILDERS = {"single": (single, 1), "multi": (multi, 4), "tiles": (tiles, 2),
            "groups": (groups, 1)}  # fmt: skip


def feed(raw: bytes, size: int, name: str = "M51_001.fits") -> StreamCheck:
    check = StreamCheck(name)
    for at in range(0, len(raw), size):
        check.feed(raw[at : at + size])
    check.finish()
    return check


def layout(raw: bytes) -> list[tuple[int, int, int]]:
    """(header start, data start, end) of each HDU of a whole file, padding included."""
    spans = []
    with fits.open(io.BytesIO(raw)) as hdul:
        for hdu in hdul:
            info = hdu.fileinfo()
            spans.append((info["hdrLoc"], info["datLoc"], info["datLoc"] + info["datSpan"]))
    return spans


@pytest.mark.parametrize("kind", sorted(BUILDERS))
@pytest.mark.parametrize("size", CHUNKS)
def test_files_written_with_checksums_verify(tmp_path, kind, size):
    build, count = BUILDERS[kind]
    raw = build(tmp_path)
    check = feed(raw, size)
    assert (check.verified, check.hdus, check.stale) == (count, count, 0)
    assert check.boundary and check.missing is None


def test_memoryview_and_bytearray_chunks(tmp_path):
    raw = multi(tmp_path)
    check = StreamCheck("a.fits")
    check.feed(memoryview(raw)[:5000])
    check.feed(bytearray(raw[5000:]))
    assert check.verified == 4


@pytest.mark.parametrize("kind", sorted(BUILDERS))
@pytest.mark.parametrize("size", [7, 2880, 1 << 20])
def test_a_flipped_bit_raises_by_the_end_of_its_hdu(tmp_path, kind, size):
    build, _count = BUILDERS[kind]
    raw = build(tmp_path)
    spans = layout(raw)
    for offset in range(9, len(raw), 997):
        bit = offset % 8
        damaged = flip_bit(raw, offset, bit)
        start, data_at, unit_end = next(span for span in spans if span[2] > offset)
        last_chunk = (unit_end - 1) // size  # the chunk holding the HDU's last byte
        check = StreamCheck("M51_001.fits")
        fed = -1
        try:
            for at in range(0, len(damaged), size):
                fed = at // size
                check.feed(damaged[at : at + size])
        except ChecksumMismatch as exc:
            assert fed <= last_chunk, (offset, bit)
            assert exc.short is False
            assert exc.message == f"M51_001.fits: {exc.reason}"
            assert exc.reason.endswith(": the file is damaged")
            continue
        # Only a flip that changes the structure itself (a size keyword, an END or
        # XTENSION card) escapes; the header reader and the wholeness check see those.
        assert start <= offset < data_at, (offset, bit)
        assert check.stopped is not None or not check.boundary or check.hdus != len(spans)


def test_mismatch_message(tmp_path):
    raw = single(tmp_path)
    data_at = header_end(raw)
    with pytest.raises(ChecksumMismatch) as caught:
        feed(flip_bit(raw, data_at + 100, 0), 2880)
    message = caught.value.message
    assert message.startswith("M51_001.fits: HDU 0's DATASUM (")
    assert ") does not match its data (" in message
    assert message.endswith("): the file is damaged")
    assert caught.value.reason == message.removeprefix("M51_001.fits: ")


def test_a_damaged_header_raises_at_its_end(tmp_path):
    raw = multi(tmp_path)
    object_card = raw.index(b"OBJECT  =")
    damaged = flip_bit(raw, object_card + 12, 1)
    check = StreamCheck("a.fits")
    check.feed(damaged[:2879])
    with pytest.raises(ChecksumMismatch, match="HDU 0's CHECKSUM does not match its header"):
        check.feed(damaged[2879:2880])  # the header's last byte: before any data


def test_files_without_checksums_are_only_followed(tmp_path):
    raw = written([fits.PrimaryHDU(pixels(4, (64, 64)), header()),
                   fits.ImageHDU(pixels(5, (8, 8)))], tmp_path, checksum=False)  # fmt: skip
    for size in CHUNKS:
        check = feed(raw, size)
        assert (check.verified, check.stale, check.hdus) == (0, 0, 2)
    damaged = flip_bit(raw, header_end(raw) + 10, 2)
    assert feed(damaged, 2880).hdus == 2  # nothing to verify it against


def test_data_is_not_summed_without_checksums(tmp_path, monkeypatch):
    import oort_lib.local.fitssum as fitssum

    def refuse(*args):
        raise AssertionError("summed")

    monkeypatch.setattr(fitssum.OnesSum, "add", refuse)
    raw = written([fits.PrimaryHDU(pixels(4, (64, 64)), header())], tmp_path, checksum=False)
    assert feed(raw, 1000).hdus == 1


@pytest.mark.parametrize("start", [b"\x1f\x8b\x08\x00", b"BZh91AY", b"XISF0100", b"SIMPLE =",
                                   b"garbage!"])  # fmt: skip
def test_not_plain_fits_makes_it_inactive(start):
    check = StreamCheck("a")
    check.feed(start)
    check.feed(b"SIMPLE  =" + b" " * 3000)
    assert not check.active and check.not_fits and check.verified == 0


def test_gzip_stream_is_not_followed(tmp_path):
    packed = gzip.compress(single(tmp_path))
    check = StreamCheck("a.fits.gz")
    check.feed(packed[:1])
    check.feed(packed[1:])
    assert not check.active


def test_trailing_bytes_end_the_check(tmp_path):
    raw = single(tmp_path) + b"\0" * 5000 + b"appended by a careless tool"
    check = feed(raw, 1000)
    assert check.verified == 1 and not check.active and check.boundary


def test_hdu_limit(tmp_path):
    raw = multi(tmp_path)
    check = StreamCheck("a.fits", max_hdus=2)
    check.feed(raw)
    assert check.verified == 2 and not check.active


def test_stale_checksums_of_an_edited_file_are_not_damage(tmp_path):
    # astropy keeps the old cards when it writes without checksum=True: a crop that
    # copies the camera's header, a plate solver adding its WCS.
    raw = single(tmp_path)
    with fits.open(io.BytesIO(raw)) as hdul:
        hdul[0].data = hdul[0].data[:20, :30].copy()
        hdul[0].header["HISTORY"] = "cropped"
        out = io.BytesIO()
        hdul.writeto(out)
    edited = out.getvalue()
    assert b"CHECKSUM=" in edited
    check = feed(edited, 2880)
    assert (check.verified, check.stale) == (0, 1)


def test_zero_datasum_over_data_means_not_computed(tmp_path):
    raw = written([fits.PrimaryHDU(pixels(6, (16, 16)), header())], tmp_path, checksum=False)
    card = b"DATASUM = '0'".ljust(80)
    end = raw.index(b"END     ")
    raw = raw[:end] + card + raw[end : header_end(raw) - 80] + raw[header_end(raw):]
    check = feed(raw, 2880)
    assert (check.verified, check.stale, check.hdus) == (0, 0, 1)


@pytest.mark.usefixtures("realdata")  # unavailable() when missing: fails on CI
@pytest.mark.parametrize(("name", "verified", "stale"), [
    ("PANOPTES/solved.fits.fz", 2, 0),  # fpack's checksums
    ("PANOPTES/Bias/tiny.fits", 0, 1),  # cards kept from the uncropped frame
    ("PANOPTES/pole.fits", 0, 1),  # the same, then solved by astrometry.net
    ("Orion/file1.fits", 0, 0),
])  # fmt: skip
def test_real_files(name, verified, stale):
    check = feed((REAL / name).read_bytes(), 4096)
    assert (check.verified, check.stale) == (verified, stale)


def reference_sum(data: bytes) -> int:
    """The appendix J sum, one word at a time."""
    data += b"\0" * (-len(data) % 4)
    total = 0
    for at in range(0, len(data), 4):
        total += int.from_bytes(data[at : at + 4], "big")
        total = (total & 0xFFFFFFFF) + (total >> 32)
    return total


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=600), st.lists(st.integers(0, 600), max_size=8))
def test_ones_complement_sum_matches_the_reference(data, cuts):
    assert ones_complement_sum(data) == reference_sum(data)
    running = OnesSum()
    points = sorted({0, len(data), *(c for c in cuts if c < len(data))})
    for start, stop in zip(points, points[1:]):
        running.add(data[start:stop])
    assert running.value == reference_sum(data)


@given(st.lists(st.sampled_from([0, 0xFFFFFFFF, 0x80000000, 1]), max_size=50))
def test_carries_fold_like_the_reference(words):
    data = b"".join(w.to_bytes(4, "big") for w in words)
    assert ones_complement_sum(data) == reference_sum(data)
