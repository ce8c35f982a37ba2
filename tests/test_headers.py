"""Reading dates and targets from real FITS and XISF headers (files written in tmp_path)."""

from __future__ import annotations

import bz2
import gzip
import os
import re
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import pytest
from fitsfiles import BLOCK, flip_bytes, header_end, rewrite_xisf_header

from oort_lib import samples
from oort_lib.errors import FileProblem
from oort_lib.local.headers import HeaderInfo, read_header
from oort_lib.local.rules import classify, night_date
from oort_lib.local.scan import Entry, Skipped, walk
from oort_lib.samples import write_fits, write_xisf

UTC = timezone.utc
DATE = "2021-03-04T21:15:03"
WHEN = datetime(2021, 3, 4, 21, 15, 3)
NO_DATE = "no DATE-OBS, DATE_OBS, MJD-OBS, JD or DATE keyword"


def read(path: Path) -> HeaderInfo:
    """The date, target and problem only (the sources are tested in test_nights.py)."""
    info = read_header(str(path))
    return HeaderInfo(info.date, info.target, info.date_problem)


# --- FITS flavours ----------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["a.fits", "a.fit", "a.fts", "A.FITS", "NGC.3603.fits"])
def test_plain_fits(tmp_path, name):
    path = write_fits(tmp_path / name, {"DATE-OBS": DATE, "OBJECT": "NGC 3603"})
    assert read(path) == HeaderInfo(WHEN, "NGC 3603")


@pytest.mark.parametrize(
    ("name", "compress"), [("a.fits.gz", "gz"), ("a.fits.bz2", "bz2"), ("a.fz", "fz")]
)
def test_compressed_fits(tmp_path, name, compress):
    path = write_fits(
        tmp_path / name, {"DATE-OBS": DATE, "OBJECT": "M42"}, shape=(64, 64), compress=compress
    )
    magic = path.read_bytes()[:3]
    assert magic == {"gz": b"\x1f\x8b\x08", "bz2": b"BZh", "fz": b"SIM"}[compress]
    assert read(path) == HeaderInfo(WHEN, "M42")


def test_fz_header_is_in_hdu1_and_the_tiles_are_never_decompressed(tmp_path):
    path = write_fits(tmp_path / "lum.fz", {"DATE-OBS": DATE, "OBJECT": "M42"},
                      shape=(128, 128), compress="fz")  # fmt: skip
    raw = path.read_bytes()
    assert b"DATE-OBS" not in raw[:BLOCK]  # the primary HDU is empty, as fpack writes it
    tiles_at = header_end(raw, BLOCK)
    path.write_bytes(flip_bytes(raw, tiles_at, len(raw) - tiles_at))
    assert read(path) == HeaderInfo(WHEN, "M42")


def test_data_is_never_read(tmp_path):
    path = write_fits(tmp_path / "big.fits", {"DATE-OBS": DATE}, shape=(300, 300))
    raw = path.read_bytes()
    # Keep the header, cut almost all of the data: nothing notices.
    path.write_bytes(raw[: header_end(raw) + 100])
    assert read(path).date == WHEN


def test_gz_stops_decompressing_after_the_header(tmp_path):
    plain = write_fits(tmp_path / "x.fits", {"DATE-OBS": DATE}, shape=(400, 400)).read_bytes()
    packed = gzip.compress(plain, mtime=0)
    path = tmp_path / "x.fits.gz"
    # Damage the end of the stream: reading it all would fail on the CRC or the deflate data.
    path.write_bytes(flip_bytes(packed, len(packed) - 2000, 1990))
    assert read(path).date == WHEN


def test_compression_is_recognised_by_content_not_name(tmp_path):
    plain = write_fits(tmp_path / "src.fits", {"DATE-OBS": DATE}).read_bytes()
    (tmp_path / "really_plain.fits.gz").write_bytes(plain)
    (tmp_path / "really_gz.fits").write_bytes(gzip.compress(plain))
    (tmp_path / "really_bz2.fit").write_bytes(bz2.compress(plain))
    for name in ["really_plain.fits.gz", "really_gz.fits", "really_bz2.fit"]:
        assert read(tmp_path / name).date == WHEN


# --- which keyword ------------------------------------------------------------------------


def test_date_only_combined_with_time_obs(tmp_path):
    path = write_fits(tmp_path / "a.fits", {"DATE-OBS": "2021-03-04", "TIME-OBS": "21:15:03"})
    assert read(path).date == WHEN


@pytest.mark.parametrize("time_key", ["TIME-OBS", "UT", "UTSTART"])
def test_each_time_keyword(tmp_path, time_key):
    path = write_fits(tmp_path / "a.fits", {"DATE-OBS": "2021-03-04", time_key: "02:03:04.5"})
    assert read(path).date == datetime(2021, 3, 4, 2, 3, 4, 500000)


def test_time_obs_wins_over_ut(tmp_path):
    header = {"DATE-OBS": "2021-03-04", "UT": "01:00:00", "TIME-OBS": "21:15:03"}
    assert read(write_fits(tmp_path / "a.fits", header)).date == WHEN


def test_date_only_without_time_is_midnight(tmp_path):
    path = write_fits(tmp_path / "a.fits", {"DATE-OBS": "2021-03-04"})
    assert read(path) == HeaderInfo(datetime(2021, 3, 4), None)


def test_full_date_ignores_time_obs(tmp_path):
    path = write_fits(tmp_path / "a.fits", {"DATE-OBS": DATE, "TIME-OBS": "01:00:00"})
    assert read(path).date == WHEN


def test_unparsable_time_obs_is_a_problem_not_a_guess(tmp_path):
    path = write_fits(tmp_path / "a.fits", {"DATE-OBS": "2021-03-04", "TIME-OBS": "9h15"})
    info = read(path)
    assert info.date is None
    assert info.date_problem == (
        "DATE-OBS '2021-03-04' with TIME-OBS '9h15' is not a valid date and time"
    )


def test_date_underscore_obs(tmp_path):
    path = write_fits(tmp_path / "a.fits", {"DATE_OBS": DATE})
    assert read(path).date == WHEN


def test_date_is_the_last_resort(tmp_path):
    path = write_fits(tmp_path / "a.fits", {"DATE": "2021-03-05T10:00:00"})
    assert read(path).date == datetime(2021, 3, 5, 10)


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ({"DATE": "2021-03-05T10:00:00", "DATE-OBS": DATE}, WHEN),
        ({"DATE": "2021-03-05T10:00:00", "DATE_OBS": DATE}, WHEN),
        ({"DATE_OBS": "2021-03-05T10:00:00", "DATE-OBS": DATE}, WHEN),
        ({"DATE": "2021-03-05T10:00:00", "DATE_OBS": "2021-01-01T01:00:00", "DATE-OBS": DATE},
         WHEN),
    ],
)  # fmt: skip
def test_priority_order(tmp_path, header, expected):
    assert read(write_fits(tmp_path / "a.fits", header)).date == expected


def test_zulu_and_offsets_stay_aware(tmp_path):
    z = read(write_fits(tmp_path / "z.fits", {"DATE-OBS": DATE + "Z"})).date
    assert z == WHEN.replace(tzinfo=UTC) and z.utcoffset().total_seconds() == 0
    off = read(write_fits(tmp_path / "o.fits", {"DATE-OBS": DATE + "-04:00"})).date
    assert off.utcoffset().total_seconds() == -4 * 3600


def test_legacy_date(tmp_path):
    assert read(write_fits(tmp_path / "a.fts", {"DATE-OBS": "15/10/98"})).date == datetime(
        1998, 10, 15
    )


# --- several HDUs ---------------------------------------------------------------------------


def test_extension_carries_the_date(tmp_path):
    path = write_fits(tmp_path / "a.fits", {"OBJECT": "M42", "TELESCOP": "T1"}, shape=None,
                      extension_header={"DATE-OBS": DATE, "EXTNAME": "SCI"})  # fmt: skip
    assert read(path) == HeaderInfo(WHEN, "M42")


def test_extension_target_after_the_date(tmp_path):
    path = write_fits(tmp_path / "a.fits", {"DATE-OBS": DATE},
                      extension_header={"OBJECT": "Eta Car"})  # fmt: skip
    assert read(path) == HeaderInfo(WHEN, "Eta Car")


def test_an_extension_date_obs_beats_the_primary_date(tmp_path):
    # DATE is when the file was written (HST: the primary has only DATE, extension 1 the
    # DATE-OBS): the observation keyword of any HDU is more trustworthy.
    path = write_fits(tmp_path / "a.fits", {"DATE": "2021-03-05T10:00:00"},
                      extension_header={"DATE-OBS": DATE})  # fmt: skip
    assert read(path).date == WHEN


def test_fz_with_an_extra_extension(tmp_path):
    path = write_fits(tmp_path / "a.fz", {"OBJECT": "M42"}, compress="fz",
                      extension_header={"DATE-OBS": DATE})  # fmt: skip
    assert read(path) == HeaderInfo(WHEN, "M42")


def test_junk_after_the_last_hdu_is_not_corruption(tmp_path):
    path = write_fits(tmp_path / "a.fits", {"OBJECT": "M42"})
    path.write_bytes(path.read_bytes() + b"\0" * BLOCK + b"appended by a careless tool")
    assert read(path) == HeaderInfo(None, "M42", NO_DATE)


# --- targets and missing dates -----------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "target"),
    [({"OBJECT": "  M 31  "}, "M 31"), ({"OBJECT": ""}, None), ({}, None),
     ({"OBJECT": 3603}, "3603")],
)  # fmt: skip
def test_object(tmp_path, header, target):
    assert read(write_fits(tmp_path / "a.fits", {"DATE-OBS": DATE, **header})).target == target


def test_no_date(tmp_path):
    info = read(write_fits(tmp_path / "GRO_J1655-40.FITS", {"OBJECT": "GRO J1655-40"}))
    assert info == HeaderInfo(None, "GRO J1655-40", NO_DATE)


@pytest.mark.parametrize(
    ("value", "shown"),
    [("2021-13-45", "2021-13-45"), ("2021-02-30T10:00:00", "2021-02-30T10:00:00"),
     ("03/04/21 9h", "03/04/21 9h"), ("tonight", "tonight"), (59277.5, "59277.5")],
)  # fmt: skip
def test_impossible_date(tmp_path, value, shown):
    info = read(write_fits(tmp_path / "a.fits", {"DATE-OBS": value, "DATE": DATE}))
    assert info.date is None
    assert info.date_problem == f"DATE-OBS '{shown}' is not a valid date"


def test_blank_date_obs_counts_as_absent(tmp_path):
    info = read(write_fits(tmp_path / "a.fits", {"DATE-OBS": "", "DATE_OBS": DATE}))
    assert info.date == WHEN


# --- damaged FITS -----------------------------------------------------------------------------


def assert_corrupt(path: Path, detail: str) -> None:
    with pytest.raises(FileProblem) as caught:
        read(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: truncated or corrupt FITS header (")
    assert detail in message


def test_truncated_in_the_middle_of_the_header(tmp_path):
    path = write_fits(tmp_path / "a.fits", {"DATE-OBS": DATE})
    path.write_bytes(path.read_bytes()[:1000])
    assert_corrupt(path, "ends inside the header")


def test_truncated_gz(tmp_path):
    path = write_fits(tmp_path / "a.fits.gz", {"DATE-OBS": DATE}, compress="gz")
    path.write_bytes(path.read_bytes()[:200])
    assert_corrupt(path, "")


def test_header_without_end_card(tmp_path):
    path = write_fits(tmp_path / "a.fits", {"DATE-OBS": DATE})
    raw = path.read_bytes()
    path.write_bytes(raw[:BLOCK].replace(b"END     ", b"XND     "))
    assert_corrupt(path, "ends inside the header")


def test_garbage_with_a_fits_name(tmp_path):
    path = tmp_path / "noise.fits"
    path.write_bytes(bytes(range(256)) * 40)
    assert_corrupt(path, "not a FITS file")


@pytest.mark.parametrize("name", ["empty.fits", "empty.fits.gz"])
def test_empty_file(tmp_path, name):
    (tmp_path / name).write_bytes(b"")
    assert_corrupt(tmp_path / name, "empty file")


def test_bad_gzip(tmp_path):
    path = tmp_path / "a.fits.gz"
    path.write_bytes(b"\x1f\x8b" + b"\x00" * 100)
    assert_corrupt(path, "")


def test_vanished_file(tmp_path):
    with pytest.raises(FileProblem, match="vanished"):
        read(tmp_path / "gone.fits")


def test_folder_instead_of_file(tmp_path):
    (tmp_path / "d.fits").mkdir()
    with pytest.raises(FileProblem, match="unreadable"):
        read(tmp_path / "d.fits")


def test_non_utf8_path_in_messages(tmp_path):
    path = os.fsdecode(os.path.join(os.fsencode(str(tmp_path)), b"caf\xe9.fits"))
    Path(path).write_bytes(b"garbage" * 10)
    with pytest.raises(FileProblem) as caught:
        read_header(path)
    str(caught.value).encode("utf-8")  # printable, whatever the name
    assert "caf\\xe9.fits" in str(caught.value)


def test_unquoted_and_unparsable_cards(tmp_path):
    path = tmp_path / "odd.fits"
    cards = [b"SIMPLE  =                    T", b"BITPIX  =                    8",
             b"NAXIS   =                    0", b"OBJECT  = 'M42 / no closing quote",
             b"EXPTIME =   1.0.0 / nonsense", b"DATE-OBS= 2021-03-04T21:15:03 / not quoted",
             b"END"]  # fmt: skip
    path.write_bytes(b"".join(c.ljust(80) for c in cards).ljust(BLOCK))
    assert read(path) == HeaderInfo(WHEN, "M42 / no closing quote")


def test_no_warnings_and_no_output(tmp_path, capfd, recwarn):
    path = tmp_path / "odd.fits"
    # Non-ASCII bytes in a card make astropy warn.
    cards = [b"SIMPLE  =                    T", b"BITPIX  =                    8",
             b"NAXIS   =                    0", b"OBJECT  = 'M\xe942'",
             b"DATE-OBS= '" + DATE.encode() + b"'", b"END"]  # fmt: skip
    path.write_bytes(b"".join(c.ljust(80) for c in cards).ljust(BLOCK))
    assert read(path) == HeaderInfo(WHEN, "M?42")
    assert capfd.readouterr() == ("", "")
    assert [str(w.message) for w in recwarn] == []


# --- XISF ---------------------------------------------------------------------------------


def test_xisf_with_fits_keywords(tmp_path):
    path = write_xisf(tmp_path / "a.xisf", {"DATE-OBS": DATE, "OBJECT": "IC 1396", "GAIN": 100})
    assert read(path) == HeaderInfo(WHEN, "IC 1396")


def test_xisf_date_only_plus_time(tmp_path):
    path = write_xisf(tmp_path / "a.XISF", {"DATE-OBS": "2021-03-04", "UT": "21:15:03"})
    assert read(path).date == WHEN


@pytest.mark.parametrize("kind", ["TimePoint", "String"])
def test_xisf_with_only_observation_time_start(tmp_path, kind):
    props = {"Observation:Time:Start": {"type": kind, "value": "2020-09-21T09:00:00Z"}}
    info = read(write_xisf(tmp_path / "MasterBias.xisf", properties=props))
    assert info == HeaderInfo(datetime(2020, 9, 21, 9, tzinfo=UTC), None)
    assert night_date(info.date) == datetime(2020, 9, 20).date()


def test_xisf_time_start_in_file_metadata(tmp_path):
    path = write_xisf(
        tmp_path / "a.xisf",
        file_properties={"Observation:Time:Start": {"type": "TimePoint", "value": DATE + "Z"},
                         "Observation:Object:Name": "NGC 7000"},
    )  # fmt: skip
    assert read(path) == HeaderInfo(WHEN.replace(tzinfo=UTC), "NGC 7000")


def test_xisf_keywords_win_over_the_property(tmp_path):
    props = {"Observation:Time:Start": {"type": "TimePoint", "value": "2020-01-01T00:00:00Z"}}
    path = write_xisf(tmp_path / "a.xisf", {"DATE-OBS": DATE}, props)
    assert read(path).date == WHEN


def test_xisf_bad_keyword_falls_back_to_the_property(tmp_path):
    props = {"Observation:Time:Start": {"type": "TimePoint", "value": DATE}}
    path = write_xisf(tmp_path / "a.xisf", {"DATE-OBS": "2021-13-45"}, props)
    assert read(path).date == WHEN


def test_xisf_without_date(tmp_path):
    info = read(write_xisf(tmp_path / "a.xisf", {"OBJECT": "M 1", "DATE-OBS": "2021-13-45"}))
    assert info == HeaderInfo(None, "M 1", "DATE-OBS '2021-13-45' is not a valid date")
    info = read(write_xisf(tmp_path / "b.xisf", {"OBJECT": "M 1"}))
    assert info.date is None
    assert "Observation:Time:Start" in info.date_problem and "DATE-OBS" in info.date_problem


def test_xisf_odd_but_valid_content_is_tolerated(tmp_path, capfd):
    path = write_xisf(tmp_path / "a.xisf", {"DATE-OBS": DATE})
    # A pixel format and a property type the xisf package cannot decode: it would raise
    # or print; a header lookup needs neither.
    table = b'<Metadata><Property id="X:T" type="Table" />'
    rewrite_xisf_header(
        path,
        lambda h: h.replace(b'sampleFormat="UInt16"', b'sampleFormat="Int16"')
        .replace(b"<Metadata>", table),
    )
    assert read(path).date == WHEN
    assert capfd.readouterr() == ("", "")


@pytest.mark.parametrize(
    ("change", "detail"),
    [
        (lambda h: h.replace(b"</xisf>", b""), "corrupt XISF header"),
        (lambda h: h[: len(h) // 2], "corrupt XISF header"),
        (lambda h: b"<<<" + h, "corrupt XISF header"),
        (lambda h: h.replace(b"<Metadata>", b"<Other>").replace(b"</Metadata>", b"</Other>"),
         "corrupt XISF header"),
    ],
)  # fmt: skip
def test_xisf_broken_xml(tmp_path, change, detail):
    path = write_xisf(tmp_path / "a.xisf", {"DATE-OBS": DATE})
    rewrite_xisf_header(path, change)
    with pytest.raises(FileProblem, match=detail):
        read(path)


@pytest.mark.parametrize(
    ("content", "detail"),
    [
        (b"", "empty file"),
        (b"XISF01", "ends inside the preamble"),
        (b"NOTXISF!" + bytes(100), "signature"),
        (b"XISF0100" + (10**9).to_bytes(4, "little") + bytes(100), "does not fit"),
    ],
)
def test_xisf_bad_preamble(tmp_path, content, detail):
    path = tmp_path / "a.xisf"
    path.write_bytes(content)
    with pytest.raises(FileProblem, match=detail):
        read(path)


def test_fits_file_named_xisf(tmp_path):
    path = tmp_path / "a.xisf"
    path.write_bytes(write_fits(tmp_path / "src.fits", {"DATE-OBS": DATE}).read_bytes())
    with pytest.raises(FileProblem, match="signature"):
        read(path)


# --- import cost and the samples ----------------------------------------------------------


def test_importing_the_fast_path_loads_neither_astropy_nor_xisf():
    code = (
        "import sys\nimport oort_lib.local.headers, oort_lib.local.scan\n"
        "import oort_lib.local.rules, oort_lib.local.dates\n"
        "print(sorted(m for m in ('astropy', 'xisf', 'numpy') if m in sys.modules))"
    )
    root = Path(__file__).resolve().parent.parent
    done = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True,
                          text=True, check=True)  # fmt: skip
    assert done.stdout.strip() == "[]"


def test_sample_tree_reads_back(tmp_path):
    root = samples.make_sample_tree(tmp_path / "observatory")
    items = list(walk(str(root)))
    entries = {item.relpath: item for item in items if isinstance(item, Entry)}
    skipped = {item.relpath: item.reason for item in items if isinstance(item, Skipped)}
    assert sorted(entries) == sorted(s.relpath for s in samples.SAMPLE_FILES)
    assert skipped == {"passwords.csv": "not FITS or XISF"}
    for sample in samples.SAMPLE_FILES:
        info = read_header(entries[sample.relpath].path)
        assert (info.date, info.target) == (sample.date, sample.target), sample.relpath
        assert 2880 <= entries[sample.relpath].size <= 250_000
    assert max(entry.size for entry in entries.values()) > 100_000


def test_sample_tree_matches_the_docs_table(tmp_path):
    root = samples.make_sample_tree(tmp_path / "root")
    expected = {
        "NGC3603/Halpha/Mosaic1.fits": ("2020-09-09", "observation", "NGC3603/Halpha"),
        "Calibration/MasterBias.xisf": ("2020-09-20", "calibration", "Calibration"),
        "Tests/Flats/U/U1.fit": ("2020-09-29", "calibration", "Tests/Flats/U"),
        "NGC3603_V_2x2.fit": ("2020-10-14", "observation", "(folder root)"),
    }
    for relpath, (night, kind, dataset) in expected.items():
        info = read_header(str(root / relpath))
        assert (night_date(info.date).isoformat(), *classify(relpath, "root")) == (
            night, kind, dataset
        )


def test_samples_are_deterministic(tmp_path):
    for folder in ("one", "two"):
        write_fits(tmp_path / folder / "a.fits.gz", {"DATE-OBS": DATE}, compress="gz")
        write_fits(tmp_path / folder / "a.fz", {"DATE-OBS": DATE}, compress="fz")
        write_xisf(tmp_path / folder / "a.xisf", {"DATE-OBS": DATE})
    for name in ("a.fits.gz", "a.fz", "a.xisf"):
        assert (tmp_path / "one" / name).read_bytes() == (tmp_path / "two" / name).read_bytes()
    assert b"2000-01-01T00:00:00" in (tmp_path / "one" / "a.xisf").read_bytes()


def test_write_fits_rejects_unknown_compression(tmp_path):
    with pytest.raises(ValueError):
        write_fits(tmp_path / "a.fits.xz", compress="xz")


def test_bulk_tree(tmp_path):
    root = samples.make_bulk_tree(tmp_path / "bulk", 250, mix=True)
    entries = [item for item in walk(str(root)) if isinstance(item, Entry)]
    assert len(entries) == 250
    folders = {entry.relpath.rsplit("/", 1)[0] for entry in entries}
    assert len(folders) == 3
    names = [entry.relpath for entry in entries]
    assert any(n.endswith(".fits.gz") for n in names) and any(n.endswith(".fz") for n in names)
    assert len({entry.size for entry in entries}) >= 4
    dates = set()
    for entry in entries:
        info = read_header(entry.path)
        assert info.date is not None and info.target == entry.relpath.split("/")[1]
        dates.add(info.date)
    assert len(dates) == 250
    assert len({night_date(d) for d in dates}) == 3


def test_bulk_tree_plain_sizes(tmp_path):
    root = samples.make_bulk_tree(tmp_path / "bulk", 120, size_bytes=3 * 2880)
    sizes = {item.size for item in walk(str(root)) if isinstance(item, Entry)}
    assert sizes == {3 * 2880}


# --- unusual but valid headers (issue 18, point 12) ---------------------------------------


def test_a_header_of_100000_cards_is_read(tmp_path):
    from partial import long_header_fits

    path = long_header_fits(tmp_path / "long.fits", cards=100_000, when=DATE)
    assert path.stat().st_size > 8_000_000
    assert read(path) == HeaderInfo(WHEN, "M51")


def test_a_header_past_the_card_limit_is_skipped_with_that_reason(tmp_path):
    from oort_lib.local.fitsfile import MAX_HEADER_CARDS

    path = tmp_path / "endless.fits"
    card = b"HISTORY and on and on".ljust(80)
    path.write_bytes(b"SIMPLE  =                    T".ljust(80)
                     + card * (MAX_HEADER_CARDS + 100) + b"END".ljust(80))  # fmt: skip
    with pytest.raises(FileProblem) as caught:
        read(path)
    assert caught.value.reason == "header larger than 200,000 cards"
    assert not caught.value.transient and "corrupt" not in str(caught.value)


@pytest.mark.parametrize("alias", [b"utf8", b"UTF8", b"utf-8", b"UTF-8", b"utf_8", b"U8"])
def test_xisf_declaring_any_utf8_alias_with_non_ascii_values(tmp_path, alias):
    path = write_xisf(tmp_path / "a.xisf", {"DATE-OBS": DATE, "OBJECT": "Pléiades ☄ M45"},
                      file_properties={"Observation:Object:Name": "Amas des Pléiades"})
    raw = path.read_bytes()
    assert raw[16:60].startswith(b"<?xml version='1.0' encoding='utf8'?>")
    rewrite_xisf_header(path, lambda h: h.replace(b"encoding='utf8'", b"encoding='" + alias
                                                  + b"'"))  # fmt: skip
    assert read(path) == HeaderInfo(WHEN, "Pléiades ☄ M45")


def test_xisf_latin1_declaration_is_followed(tmp_path):
    path = write_xisf(tmp_path / "a.xisf", {"DATE-OBS": DATE, "OBJECT": "M45"})
    rewrite_xisf_header(
        path,
        lambda h: h.replace(b"encoding='utf8'", b"encoding='ISO-8859-1'")
        .replace(b"'M45'", "'Pléiades'".encode("latin-1")),
    )
    assert read(path).target == "Pléiades"


def _huge_xisf(path: Path, size: int) -> Path:
    """An XISF file whose XML header is ``size`` bytes of FITS keywords, the date last."""
    head = (b"<?xml version='1.0' encoding='utf8'?><xisf version=\"1.0\" "
            b"xmlns=\"http://www.pixinsight.com/xisf\"><Image geometry=\"16:16:1\" "
            b"sampleFormat=\"UInt16\" colorSpace=\"Gray\" location=\"attachment:AT:512\">")
    card = b'<FITSKeyword name="HISTORY" value="" comment="' + b"x" * 100 + b'"/>'
    tail = ("<FITSKeyword name=\"DATE-OBS\" value=\"'" + DATE + "'\" comment=\"\"/>"
            "<FITSKeyword name=\"OBJECT\" value=\"'Pléiades'\" comment=\"\"/></Image>"
            "<Metadata><Property id=\"XISF:CreatorApplication\" type=\"String\">tests"
            "</Property></Metadata></xisf>").encode()  # fmt: skip
    body = head + card * ((size - len(head) - len(tail)) // len(card)) + tail
    at = -(-(16 + len(body) + 16) // 4096) * 4096
    body = body.replace(b'"attachment:AT:', b'"attachment:%d:' % at)
    raw = b"XISF0100" + len(body).to_bytes(4, "little") + bytes(4) + body
    path.write_bytes(raw + bytes(at - len(raw)) + bytes(512))
    return path


def test_a_61_mib_xisf_header_is_read_in_bounded_memory(tmp_path):
    path = _huge_xisf(tmp_path / "huge.xisf", 61 << 20)
    code = (
        "import resource, sys\n"
        "from oort_lib.local.headers import read_header\n"
        "from oort_lib.local.wholeness import check\n"
        "before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "info = read_header(sys.argv[1])\n"
        "whole = check(sys.argv[1])\n"
        "grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before\n"
        "print(info.date.isoformat(), info.target, whole.units, grown // 1024)\n"
    )
    root = Path(__file__).resolve().parent.parent
    done = subprocess.run([sys.executable, "-c", code, str(path)], cwd=root,
                          capture_output=True, text=True, check=True)  # fmt: skip
    date, target, units, grown_mib = done.stdout.split()
    assert (date, target, units) == (DATE, "Pléiades", "1")
    assert int(grown_mib) < 32  # it took about 1 GB when parsed whole


# --- a reader bug is not the user's corruption (issue 18, point 5) ------------------------


def _failing_hdus(exc: BaseException):
    def fits_hdus(*args, **kwargs):
        raise exc
        yield  # a generator, like the real one

    return fits_hdus


@pytest.mark.parametrize("exc", [TypeError("unsupported operand"), KeyError("NAXIS"),
                                 AttributeError("no attribute"), IndexError("out of range")],
                         ids=lambda e: type(e).__name__)  # fmt: skip
def test_a_fits_reader_bug_is_an_internal_error_retried_later(tmp_path, monkeypatch, exc):
    from oort_lib.errors import LocalTransient
    from oort_lib.local import headers

    path = write_fits(tmp_path / "a.fits", {"DATE-OBS": DATE})
    monkeypatch.setattr(headers, "fits_hdus", _failing_hdus(exc))
    with pytest.raises(LocalTransient) as caught:
        read(path)
    name = type(exc).__name__
    assert caught.value.transient
    assert str(caught.value) == f"{path}: internal error reading its header ({name}: {exc})"
    assert caught.value.reason.endswith("): retried next run; please report it")
    assert "corrupt" not in str(caught.value)


def _damage_errors() -> list[BaseException]:
    import gzip
    import struct
    import zlib

    from astropy.io.fits.verify import VerifyError

    return [ValueError("bad"), EOFError("cut"), gzip.BadGzipFile("not gzip"),
            zlib.error("Error -3"), struct.error("unpack"), OSError("Invalid data stream"),
            VerifyError("card"), UnicodeDecodeError("ascii", b"\xe9", 0, 1, "bad")]  # fmt: skip


@pytest.mark.parametrize("exc", _damage_errors(), ids=lambda e: type(e).__name__)
def test_known_damage_types_stay_a_corrupt_header(tmp_path, monkeypatch, exc):
    from oort_lib.local import headers

    path = write_fits(tmp_path / "a.fits", {"DATE-OBS": DATE})
    monkeypatch.setattr(headers, "fits_hdus", _failing_hdus(exc))
    with pytest.raises(FileProblem) as caught:
        read(path)
    assert not caught.value.transient
    assert "truncated or corrupt FITS header" in str(caught.value)


def test_an_xisf_reader_bug_is_an_internal_error(tmp_path, monkeypatch):
    from oort_lib.errors import LocalTransient
    from oort_lib.local import xisffile

    path = write_xisf(tmp_path / "a.xisf", {"DATE-OBS": DATE})

    def broken(self, name, attrs):
        raise KeyError("geometry")

    monkeypatch.setattr(xisffile._Reader, "_start", broken)
    with pytest.raises(LocalTransient, match=r"internal error reading its header \(KeyError"):
        read(path)


@pytest.mark.parametrize(
    ("change", "detail"),
    [
        (lambda h: h.replace(b'name="DATE-OBS"', b""), None),  # no name: tolerated
        (lambda h: h.replace(b'comment=""', b""), None),  # no comment: tolerated
        (lambda h: h.replace(b"<xisf ", b"<other ").replace(b"</xisf>", b"</other>"),
         "the root element is not <xisf>"),
        (lambda h: h.replace(b'attachment:4096:512', b'attachment:x:y'),
         "attachment location 'attachment:x:y' is not POS:SIZE"),
    ],
)  # fmt: skip
def test_xisf_damage_is_decided_explicitly(tmp_path, change, detail):
    path = write_xisf(tmp_path / "a.xisf", {"DATE-OBS": DATE, "OBJECT": "M1"})
    rewrite_xisf_header(path, change)
    if detail is None:
        assert read(path).target == "M1"
    else:
        with pytest.raises(FileProblem, match=re.escape(detail)) as caught:
            read(path)
        assert not caught.value.transient and "corrupt XISF header" in str(caught.value)
