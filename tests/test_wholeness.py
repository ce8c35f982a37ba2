"""Only whole frames are planned: wholeness.check on partial files of every kind."""

from __future__ import annotations

import bz2
import gzip
import os
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from fitsfiles import BLOCK, header_end
from helpers import REALDATA
from hypothesis import given
from hypothesis import strategies as st
from partial import (
    DAMAGED_KINDS,
    KINDS,
    cut,
    cut_offsets,
    fits_bytes,
    flip_bit,
    hdu_ends,
    long_header_fits,
    partial_files,
)

from oort_lib.errors import ChecksumMismatch, LocalTransient, NotWhole
from oort_lib.local import wholeness
from oort_lib.local.scan import is_candidate
from oort_lib.local.wholeness import Whole, check
from oort_lib.samples import write_fits, write_xisf

REAL = REALDATA
DATE = "2021-03-04T21:15:03"


@pytest.fixture(scope="module")
def kinds(tmp_path_factory) -> dict[str, tuple[Path, Path]]:
    return partial_files(tmp_path_factory.mktemp("kinds"))


def not_whole(path: Path, **kwargs) -> NotWhole:
    with pytest.raises(NotWhole) as caught:
        check(str(path), **kwargs)
    assert caught.value.message == f"{path}: {caught.value.reason}"
    return caught.value


def test_every_kind_is_written(kinds):
    assert sorted(kinds) == sorted(KINDS)
    for whole, partial in kinds.values():
        assert whole.name == partial.name and whole.read_bytes() != partial.read_bytes()


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("verify", [False, True])
def test_whole_versions_pass(kinds, kind, verify):
    result = check(str(kinds[kind][0]), verify_checksums=verify)
    assert isinstance(result, Whole) and result.units >= 1


@pytest.mark.parametrize("kind", sorted(set(KINDS) - DAMAGED_KINDS))
@pytest.mark.parametrize("verify", [False, True])
def test_partial_versions_are_short(kinds, kind, verify):
    assert not_whole(kinds[kind][1], verify_checksums=verify).short is True


def test_a_flipped_bit_is_found_by_its_checksum(kinds):
    _whole, flipped = kinds["flipped-bit"]
    assert check(str(flipped)) == Whole(1, "1 HDU")  # the structure is whole
    with pytest.raises(ChecksumMismatch) as caught:
        check(str(flipped), verify_checksums=True)
    assert caught.value.short is False
    assert caught.value.reason.startswith("HDU 0's DATASUM (")


def test_summaries(kinds):
    assert check(str(kinds["last-extension"][0])).summary == "3 HDUs"
    assert check(str(kinds["gzip-cut"][0])).summary == "1 HDU, gzip stream complete"
    assert check(str(kinds["bzip2-cut"][0])).summary == "1 HDU, bzip2 stream complete"
    assert check(str(kinds["xisf-attachment"][0])) == Whole(1, "1 attachment")
    verified = check(str(kinds["flipped-bit"][0]), verify_checksums=True)
    assert verified == Whole(1, "1 HDU, DATASUM verified")
    assert check(str(kinds["data-half"][0]), verify_checksums=True).summary == (
        "1 HDU, no DATASUM")


# --- cuts at many offsets -------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["data-half", "last-extension", "fz-cut", "bias-cut",
                                  "flipped-bit"])  # fmt: skip
def test_plain_fits_cut_anywhere_is_short(kinds, tmp_path, kind):
    whole = kinds[kind][0]
    raw = whole.read_bytes()
    ends = hdu_ends(raw)
    for at in cut_offsets(raw) + list(range(BLOCK - 3, len(raw), 2 * BLOCK + 13)):
        if at in ends:
            continue  # fewer HDUs, none of them cut (see partial.cut_offsets)
        part = cut(whole, at, tmp_path / whole.name)
        for verify in (False, True):
            assert not_whole(part, verify_checksums=verify).short is True, at
        # The size planned counts, not what the file has grown to since.
        assert not_whole(whole, size=at).short is True, at


@pytest.mark.parametrize("kind", ["gzip-cut", "bzip2-cut"])
def test_compressed_cut_anywhere_is_short(kinds, tmp_path, kind):
    whole = kinds[kind][0]
    size = whole.stat().st_size
    offsets = {1, 2, 3, 10, size // 3, size // 2, size - 9, size - 8, size - 5, size - 4,
               size - 1}  # fmt: skip
    for at in sorted(offsets):
        part = cut(whole, at, tmp_path / whole.name)
        caught = not_whole(part)
        assert caught.short is True, at
        if at > 3:
            assert caught.reason.endswith("stream ends before its end marker"), at


def test_gzip_cut_inside_its_trailer(kinds, tmp_path):
    whole = kinds["gzip-cut"][0]
    size = whole.stat().st_size
    for missing in range(1, 9):  # CRC-32 then length
        part = cut(whole, size - missing, tmp_path / "t.fits.gz")
        assert not_whole(part).reason == "its gzip stream ends before its end marker"


def test_xisf_cut_anywhere_is_short(kinds, tmp_path):
    whole = kinds["xisf-attachment"][0]
    raw = whole.read_bytes()
    attachment = 4096
    for at in [3, 8, 15, 16, 200, attachment - 1, attachment, attachment + 1,
               len(raw) // 2 + 1000, len(raw) - 1]:  # fmt: skip
        part = cut(whole, at, tmp_path / whole.name)
        assert not_whole(part).short is True, at


# --- exact reasons ----------------------------------------------------------------------------


def test_short_reason_wording(tmp_path):
    # 1 header block and 174 data blocks: 504,000 bytes.
    data = np.zeros((480, 522), dtype=">i2")
    raw = fits_bytes([fits.PrimaryHDU(data, fits.Header({"DATE-OBS": DATE}))])
    assert len(raw) == 504_000
    path = tmp_path / "M51_001.fits"
    path.write_bytes(raw[:252_000])
    caught = not_whole(path)
    assert caught.reason == "ends 252,000 bytes short of its header's 504,000"
    assert str(caught) == f"{path}: ends 252,000 bytes short of its header's 504,000"


def test_header_reasons(tmp_path, kinds):
    whole = kinds["last-extension"][0]
    assert not_whole(cut(whole, 100, tmp_path / "a.fits")).reason == (
        "ends inside its header (no END card)")
    # The END card is there, but not the rest of its block.
    assert not_whole(cut(whole, 1000, tmp_path / "a.fits")).reason == (
        "ends 1,880 bytes short of its header's 2,880")
    ext = header_end(whole.read_bytes())
    assert not_whole(cut(whole, ext + 4, tmp_path / "b.fits")).reason == (
        "ends inside its HDU 1 header (no END card)")
    # HDU 1: one header block and 3,200 bytes of data in two blocks.
    assert not_whole(cut(whole, ext + BLOCK, tmp_path / "c.fits")).reason == (
        "ends 5,760 bytes short of its HDU 1 header's 11,520")


def test_missing_only_the_last_padding_is_short(tmp_path):
    raw = fits_bytes([fits.PrimaryHDU(np.zeros((10, 10), dtype=">i2"))])
    path = tmp_path / "a.fits"
    path.write_bytes(raw[: BLOCK + 200])  # the data, without its padding
    assert not_whole(path).reason == "ends 2,680 bytes short of its header's 5,760"


def test_xisf_reason(kinds):
    partial = kinds["xisf-attachment"][1]
    size = partial.stat().st_size
    assert not_whole(partial).reason == (
        f"its XISF attachment at 4096 needs 12,288 bytes, the file has {size:,}")


def test_bytes_after_the_last_hdu_are_fine(tmp_path, kinds):
    raw = kinds["data-half"][0].read_bytes()
    for tail in (b"\0" * BLOCK, b"appended by a careless tool", b"\0"):
        path = tmp_path / "a.fits"
        path.write_bytes(raw + tail)
        assert check(str(path)) == Whole(1, "1 HDU")
        assert check(str(path), verify_checksums=True).units == 1
    path.write_bytes(raw + b"XTENS")  # an extension that has only begun
    assert not_whole(path).reason == "ends inside its HDU 1 header (no END card)"


# --- content damage: short=False --------------------------------------------------------------


def test_bad_gzip_check_value_and_length(tmp_path, kinds):
    packed = kinds["gzip-cut"][0].read_bytes()
    path = tmp_path / "a.fits.gz"
    path.write_bytes(flip_bit(packed, len(packed) - 6, 0))  # CRC-32
    caught = not_whole(path)
    assert (caught.short, caught.reason) == (
        False, "its gzip stream is damaged (incorrect data check)")
    path.write_bytes(flip_bit(packed, len(packed) - 2, 0))  # ISIZE
    assert not_whole(path).reason == "its gzip stream is damaged (incorrect length check)"


def test_bad_bzip2_stream(tmp_path, kinds):
    packed = kinds["bzip2-cut"][0].read_bytes()
    path = tmp_path / "a.fits.bz2"
    path.write_bytes(flip_bit(packed, len(packed) // 2, 4))
    caught = not_whole(path)
    assert caught.short is False and caught.reason.startswith("its bzip2 stream is damaged")


def test_a_complete_stream_of_a_cut_frame_is_damage(tmp_path, kinds):
    raw = kinds["data-half"][0].read_bytes()
    path = tmp_path / "a.fits.gz"
    path.write_bytes(gzip.compress(raw[:10_000]))
    caught = not_whole(path)
    assert caught.short is False
    assert caught.reason == ("its gzip stream is complete but the FITS file in it ends "
                             "18,800 bytes short of its header's 28,800")  # fmt: skip


def test_gzip_members_and_trailing_zeros(tmp_path, kinds):
    raw = kinds["data-half"][0].read_bytes()
    path = tmp_path / "a.fits.gz"
    path.write_bytes(gzip.compress(raw[:BLOCK]) + gzip.compress(raw[BLOCK:]) + b"\0" * 100)
    assert check(str(path)).units == 1
    path.write_bytes(bz2.compress(raw[:5000]) + bz2.compress(raw[5000:]))
    assert check(str(path)).units == 1


@pytest.mark.parametrize("content", [bytes(range(256)) * 20, b"PK\x03\x04 a zip file",
                                     b"<html>not found</html>"])  # fmt: skip
def test_not_fits_or_xisf(tmp_path, content):
    path = tmp_path / "a.fits"
    path.write_bytes(content)
    caught = not_whole(path)
    assert caught.short is False and "neither FITS nor XISF" in caught.reason


def test_gzip_of_something_else(tmp_path):
    path = tmp_path / "a.fits.gz"
    path.write_bytes(gzip.compress(b"hello " * 1000))
    caught = not_whole(path)
    assert caught.short is False and "holds no FITS file" in caught.reason


def test_header_that_cannot_be_sized(tmp_path):
    cards = [b"SIMPLE  =                    T", b"BITPIX  =                   12",
             b"NAXIS   =                    0", b"END"]  # fmt: skip
    path = tmp_path / "a.fits"
    path.write_bytes(b"".join(c.ljust(80) for c in cards).ljust(BLOCK))
    caught = not_whole(path)
    assert caught.short is False and "HDU 0's header cannot be sized" in caught.reason
    assert not_whole(path, verify_checksums=True).reason == caught.reason


@pytest.mark.parametrize("content", [b"", b"SIMP", b"\x1f", b"XISF01"])
def test_tiny_files_are_short(tmp_path, content):
    path = tmp_path / "a.fits"
    path.write_bytes(content)
    assert not_whole(path).short is True


def test_too_many_hdus(tmp_path, kinds, monkeypatch):
    monkeypatch.setattr(wholeness, "MAX_HDUS", 2)
    caught = not_whole(kinds["last-extension"][0])
    assert (caught.short, caught.reason) == (False, "has more than 2 HDUs (the most "
                                             "oort-sync checks)")  # fmt: skip
    assert not_whole(kinds["last-extension"][0], verify_checksums=True).reason == caught.reason


# --- unusual but whole ------------------------------------------------------------------------


def test_a_header_of_100000_cards_is_whole(tmp_path):
    path = long_header_fits(tmp_path / "long.fits")
    assert check(str(path)) == Whole(1, "1 HDU")
    assert check(str(path), verify_checksums=True).units == 1
    raw = path.read_bytes()
    path.write_bytes(raw[: len(raw) - BLOCK - 100])
    assert not_whole(path).reason == f"ends 2,980 bytes short of its header's {len(raw):,}"
    path.write_bytes(raw[: len(raw) // 2])
    assert not_whole(path).reason == "ends inside its header (no END card)"


def test_a_header_without_end_past_the_card_limit(tmp_path):
    from oort_lib.local.fitsfile import MAX_HEADER_BLOCKS

    card = b"HISTORY no end".ljust(80)
    path = tmp_path / "a.fits"
    path.write_bytes(b"SIMPLE  =                    T".ljust(80)
                     + card * (MAX_HEADER_BLOCKS * 36 + 35))  # fmt: skip
    caught = not_whole(path)
    assert (caught.short, caught.reason) == (False, "HDU 0's header larger than 200,000 cards")


def test_utf8_xisf_is_whole(tmp_path):
    path = write_xisf(tmp_path / "a.xisf", {"DATE-OBS": DATE, "OBJECT": "Pléiades ☄"})
    assert b"encoding='utf8'" in path.read_bytes()[:100]
    assert check(str(path)) == Whole(1, "1 attachment")


def test_xisf_header_past_the_end(tmp_path):
    path = write_xisf(tmp_path / "a.xisf", {"DATE-OBS": DATE})
    raw = path.read_bytes()
    length = int.from_bytes(raw[8:12], "little")
    path.write_bytes(raw[:100])
    assert not_whole(path).reason == (
        f"ends {16 + length - 100:,} bytes short of its XISF header's {16 + length:,}")
    path.write_bytes(raw[:8] + (100 << 20).to_bytes(4, "little") + raw[12:])
    caught = not_whole(path)
    assert caught.short is False and "larger than 64 MiB" in caught.reason


def test_broken_xisf_xml_is_damage(tmp_path):
    path = write_xisf(tmp_path / "a.xisf", {"DATE-OBS": DATE})
    raw = bytearray(path.read_bytes())
    start = raw.index(b"<xisf")
    raw[start + 10 : start + 40] = b"<<<<not xml at all>>>>>>>>>>>>"
    path.write_bytes(bytes(raw))
    caught = not_whole(path)
    assert caught.short is False and caught.reason.startswith("its XISF header is damaged")


def test_tile_compressed_from_samples(tmp_path):
    path = write_fits(tmp_path / "a.fz", {"DATE-OBS": DATE}, shape=(128, 128), compress="fz")
    assert check(str(path)) == Whole(2, "2 HDUs")


def test_unreadable_files_are_transient(tmp_path):
    with pytest.raises(LocalTransient, match="vanished"):
        check(str(tmp_path / "gone.fits"))
    (tmp_path / "d.fits").mkdir()
    with pytest.raises(LocalTransient):
        check(str(tmp_path / "d.fits"))


def test_non_utf8_name_in_messages(tmp_path):
    path = os.fsdecode(os.path.join(os.fsencode(str(tmp_path)), b"caf\xe9.fits"))
    Path(path).write_bytes(b"SIMPLE  =                    T")
    with pytest.raises(NotWhole) as caught:
        check(path)
    assert "caf\\xe9.fits" in str(caught.value)
    str(caught.value).encode("utf-8")


# --- the real files ---------------------------------------------------------------------------


def real_files() -> list[Path]:
    if not REAL.is_dir():
        return []
    return sorted(p for p in REAL.rglob("*") if p.is_file() and is_candidate(p.name))


@pytest.mark.usefixtures("realdata")  # unavailable() when missing: fails on CI
def test_real_files_are_found():
    assert len(real_files()) >= 13


@pytest.mark.usefixtures("realdata")  # unavailable() when missing: fails on CI
@pytest.mark.parametrize("path", real_files(), ids=lambda p: p.name)
@pytest.mark.parametrize("verify", [False, True])
def test_every_real_file_is_whole(path, verify):
    assert check(str(path), verify_checksums=verify).units >= 0


@given(naxis=st.integers(0, 4), axes=st.lists(st.integers(0, 300), min_size=4, max_size=4),
       bitpix=st.sampled_from([8, 16, 32, 64, -32, -64]),
       extra=st.lists(st.sampled_from([("PCOUNT", 4), ("GCOUNT", 2), ("GROUPS", "T"),
                                       ("OBJECT", "'COUNTS'"), ("NAXIS1", 7), ("BITPIX", 16),
                                       ("EXPTIME", 1.5)]), max_size=3))
def test_the_sizes_read_in_order_are_those_of_the_full_search(naxis, axes, bitpix, extra):
    from oort_lib.local import fitsfile

    cards = ["SIMPLE  =                    T", f"BITPIX  = {bitpix:>20}",
             f"NAXIS   = {naxis:>20}", *(f"NAXIS{i + 1:<3d}= {axes[i]:>20}" for i in range(naxis)),
             *(f"{key:<8}= {value:>20}" for key, value in extra), "END"]
    raw = "".join(card.ljust(80) for card in cards).encode()
    raw = raw.ljust(-(-len(raw) // 2880) * 2880)
    stop = fitsfile.end_card(raw)
    in_order = fitsfile._in_order(raw, stop)
    # Only a header naming PCOUNT, GCOUNT or GROUPS (or "COUNT" in a value) is searched.
    assert (in_order is None) == any(key in ("PCOUNT", "GCOUNT", "GROUPS", "OBJECT")
                                     for key, _ in extra)
    saved = fitsfile._in_order
    try:
        fitsfile._in_order = lambda raw, stop: None
        searched = fitsfile.layout(raw, stop)
    finally:
        fitsfile._in_order = saved
    assert fitsfile.layout(raw, stop) == searched
