"""The right night for headers written by each capture program, in several time zones,
and for the real files of ../shared/realdata (read in place, never copied)."""

from __future__ import annotations

from datetime import date, datetime, timezone
from pathlib import Path

import pytest
from helpers import REALDATA, planned

from oort_lib.local.decision import decide, header_facts
from oort_lib.local.headers import read_header
from oort_lib.samples import write_fits, write_xisf
from oort_lib.state import manifest as mf
from oort_lib.state import migrations
from oort_lib.state.config import Folder

UTC = timezone.utc
BLOCK = 2880


def decided(path: Path, root: Path, **folder):
    """(header info, decision) of the file at ``path`` in a folder watched at ``root``."""
    info = read_header(str(path))
    relpath = path.relative_to(root).as_posix()
    decision = decide(relpath, Folder(path=str(root), **folder), info.date.isoformat(),
                      header_facts(info))  # fmt: skip
    return info, decision


def raw_fits(path: Path, cards: list[str]) -> Path:
    """A FITS file with exactly these cards (written by hand, as odd writers do)."""
    head = ["SIMPLE  =                    T", "BITPIX  =                    8",
            "NAXIS   =                    0", *cards, "END"]  # fmt: skip
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"".join(c.encode().ljust(80) for c in head).ljust(BLOCK))
    return path


# --- N.I.N.A. in Sydney -----------------------------------------------------------------------


def nina(path: Path, utc: str, loc: str, imagetyp: str = "LIGHT", **extra) -> Path:
    return write_fits(path, {"IMAGETYP": imagetyp, "DATE-LOC": loc, "DATE-OBS": utc,
                             "SITELONG": 151.2093, "SITELAT": -33.8688, "OBJECT": "NGC 3372",
                             **extra})  # fmt: skip


def test_nina_sydney_evening_is_one_night(tmp_path):
    a = nina(tmp_path / "NGC3372/a.fits", "2021-03-04T11:00:00.123", "2021-03-04T22:00:00.123")
    b = nina(tmp_path / "NGC3372/b.fits", "2021-03-04T12:30:00.456", "2021-03-04T23:30:00.456")
    for path in (a, b):
        info, decision = decided(path, tmp_path)
        assert info.date_source == "DATE-OBS in HDU 0" and info.date.tzinfo is None
        assert decision.local.source == "DATE-LOC"
        assert decision.night == "2021-03-04"
        assert decision.target(info.target) == "NGC 3372"
        # Without DATE-LOC, the longitude does as well; with the zone, the zone decides.
        assert decide("x/a.fits", Folder(str(tmp_path)), info.date.isoformat(),
                      dict(header_facts(info), date_loc=None)).night == "2021-03-04"
        _, zoned = decided(path, tmp_path, timezone="Australia/Sydney")
        assert zoned.local.source == "time zone" and zoned.night == "2021-03-04"
        assert zoned.local.warnings == ()


def test_nina_with_a_wrong_pc_clock_is_said(tmp_path):
    path = nina(tmp_path / "a.fits", "2021-03-04T11:00:00", "2021-03-04T21:00:00")
    _, decision = decided(path, tmp_path, timezone="Australia/Sydney")
    assert decision.local.warnings and "disagrees" in decision.local.warnings[0]


def test_nina_flat_in_the_light_folder_with_classify_header(tmp_path):
    path = nina(tmp_path / "NGC3372/f.fits", "2021-03-04T09:00:00", "2021-03-04T20:00:00",
                imagetyp="FLAT")  # fmt: skip
    assert decided(path, tmp_path)[1].kind == "observation"  # the folder rule, default
    decision = decided(path, tmp_path, classify="header")[1]
    assert (decision.kind, decision.kind_reason) == ("calibration", "header: IMAGETYP = 'FLAT'")


# --- MaxIm DL in Honolulu, Ekos in Santiago --------------------------------------------------


def test_maxim_dl_honolulu(tmp_path):
    # MaxIm DL writes DATE-OBS in UTC, SITELONG as a sexagesimal string, 'Light Frame'.
    path = write_fits(tmp_path / "M1/m1_001.fit", {
        "DATE-OBS": "2021-03-05T21:30:00", "IMAGETYP": "Light Frame",
        "SITELONG": "-155 28 00", "OBJECT": "M1", "SWCREATE": "MaxIm DL Version 6.24"})  # fmt: skip
    info, decision = decided(path, tmp_path)
    assert info.longitude == pytest.approx(-155.4667, abs=1e-4)
    assert info.longitude_keyword == "SITELONG = -155 28 00"
    assert decision.local.source == "longitude"
    assert decision.local.when == datetime(2021, 3, 5, 11, 8, 8)
    assert decision.night == "2021-03-04"  # 11:08 local mean time: still last night
    assert decided(path, tmp_path, timezone="Pacific/Honolulu")[1].night == "2021-03-04"
    assert decided(path, tmp_path, classify="header")[1].kind == "observation"


def test_ekos_indi_santiago(tmp_path):
    # Ekos/INDI: DATE-OBS in UTC without Z, FRAME (not IMAGETYP), SITELONG in degrees.
    path = write_fits(tmp_path / "lights/Light_001.fits", {
        "INSTRUME": "ZWO CCD ASI294MC Pro", "FRAME": "Light", "SITELONG": -70.7369,
        "DATE-OBS": "2021-03-05T14:30:00.000", "OBJECT": "Eta Carinae"})  # fmt: skip
    info, decision = decided(path, tmp_path)
    assert (info.frame_keyword, info.frame_type) == ("FRAME", "Light")
    assert decision.night == "2021-03-04"  # 09:47 local mean time
    assert decided(path, tmp_path, timezone="America/Santiago")[1].night == "2021-03-04"
    # The Oort docs' assumption alone would call 14:30 the afternoon of the 5th.
    facts = dict(header_facts(info), site_longitude=None)
    assumed = decide("lights/Light_001.fits", Folder(str(tmp_path)), info.date.isoformat(),
                     facts)  # fmt: skip
    assert (assumed.night, assumed.local.source) == ("2021-03-05", "assumed local")


def test_santiago_across_its_dst_change(tmp_path):
    # Chile leaves DST on 2021-04-04 at 00:00 (UTC-3 -> UTC-4); noon on the 4th is 16:00 UTC.
    nights = []
    for name, utc in [("a", "2021-04-03T23:00:00"), ("b", "2021-04-04T06:00:00"),
                      ("c", "2021-04-04T15:59:00"), ("d", "2021-04-04T16:00:00")]:  # fmt: skip
        path = write_fits(tmp_path / f"{name}.fits", {"DATE-OBS": utc})
        nights.append(decided(path, tmp_path, timezone="America/Santiago")[1].night)
    assert nights == ["2021-04-03", "2021-04-03", "2021-04-03", "2021-04-04"]


# --- ASIAIR: lights and flats in one folder ---------------------------------------------------


def test_asiair_tree_with_classify_header(tmp_path):
    root = tmp_path / "Autorun"
    for name, imagetyp in [("Light_M42_120.0s_Bin1_20210304-221500.fit", "Light"),
                           ("Flat_1.0ms_Bin1_20210305-063000.fit", "Flat"),
                           ("Dark_120.0s_Bin1_20210305-064000.fit", "Dark"),
                           ("Bias_1.0ms_Bin1_20210305-065000.fit", "Bias")]:  # fmt: skip
        write_fits(root / "M42" / name, {"IMAGETYP": imagetyp, "DATE-OBS": "2021-03-04T13:15:00",
                                         "OBJECT": "M42"})  # fmt: skip
    with mf.Manifest(tmp_path / "m.sqlite") as manifest:
        plan = planned([Folder(str(root), classify="header")], manifest, min_age=0)
        kinds = {Path(i.relpath).name.split("_")[0]: i.kind for i in plan.items}
        by_folder = planned([Folder(str(root))], manifest, min_age=0)
    assert kinds == {"Light": "observation", "Flat": "calibration", "Dark": "calibration",
                     "Bias": "calibration"}  # fmt: skip
    assert {i.kind for i in by_folder.items} == {"observation"}


# --- archives ---------------------------------------------------------------------------------


def test_hst_style_date_in_the_primary_and_date_obs_in_extension_1(tmp_path):
    path = write_fits(
        tmp_path / "hst/ib1f02010_flt.fits",
        {"DATE": "2021-03-10T04:12:44", "TELESCOP": "HST", "INSTRUME": "WFC3",
         "TIMESYS": "UTC"},
        shape=None,
        extension_header={"EXTNAME": "SCI", "DATE-OBS": "2021-03-04", "TIME-OBS": "21:15:03",
                          "OBJECT": "NGC 3603"},
    )  # fmt: skip
    info, decision = decided(path, tmp_path)
    assert info.date == datetime(2021, 3, 4, 21, 15, 3, tzinfo=UTC)  # TIMESYS = 'UTC'
    assert info.date_source == "DATE-OBS + TIME-OBS in HDU 1"
    assert info.date_raw == "2021-03-04 21:15:03"
    assert (info.target, info.target_hdu) == ("NGC 3603", 1)
    assert decision.night == "2021-03-04"


def test_primary_object_wins_over_the_date_hdu(tmp_path):
    extension = {"DATE-OBS": "2021-03-04T21:00:00", "OBJECT": "ext"}
    path = write_fits(tmp_path / "a.fits", {"OBJECT": "Primary target"}, shape=None,
                      extension_header=extension)  # fmt: skip
    info = read_header(str(path))
    assert (info.target, info.target_hdu) == ("Primary target", 0)


def test_iraf_single_digit_seconds(tmp_path):
    path = raw_fits(tmp_path / "ctio.fits", [
        "OBJECT  = '320     '", "IMAGETYP= 'OBJECT  '",
        "DATE-OBS= '2002-01-28T02:45:1.875' / Date (yyyy-mm-dd) of observation"])  # fmt: skip
    info = read_header(str(path))
    assert info.date == datetime(2002, 1, 28, 2, 45, 1, 875000)
    assert info.date_raw == "2002-01-28T02:45:1.875"


def test_mjd_obs_only_in_tokyo(tmp_path):
    # 59278.125 is 2021-03-05 03:00 UTC: local noon in Tokyo, the new night.
    path = write_fits(tmp_path / "subaru.fits", {"MJD-OBS": 59278.125, "OBJECT": "M 87"})
    info, decision = decided(path, tmp_path, timezone="Asia/Tokyo")
    assert info.date == datetime(2021, 3, 5, 3, tzinfo=UTC)
    assert info.date_source == "MJD-OBS in HDU 0"
    assert (decision.local.when, decision.night) == (datetime(2021, 3, 5, 12), "2021-03-05")


def test_jd_beats_date_but_not_date_obs(tmp_path):
    path = write_fits(tmp_path / "a.fits", {"DATE": "2021-03-10T00:00:00", "JD": 2459278.0})
    assert read_header(str(path)).date_source == "JD in HDU 0"
    path = write_fits(tmp_path / "b.fits", {"JD": 2459278.0, "DATE-OBS": "2021-03-04T21:00:00"})
    assert read_header(str(path)).date_keyword == "DATE-OBS"


def test_timesys_tt_a_minute_from_local_noon_in_tokyo(tmp_path):
    # 03:00:30 TT is 02:59:20.8 UTC (TT - UTC = 69.184 s since 2017): 11:59 in Tokyo,
    # still last night; read as UTC it would be 12:00:30, the new night.
    path = write_fits(tmp_path / "tt.fits", {"DATE-OBS": "2021-03-05T03:00:30",
                                             "TIMESYS": "TT"})  # fmt: skip
    info, decision = decided(path, tmp_path, timezone="Asia/Tokyo")
    assert info.timesys == "TT"
    assert info.date == datetime(2021, 3, 5, 2, 59, 20, 816000, tzinfo=UTC)
    assert decision.night == "2021-03-04"


@pytest.mark.parametrize(("system", "seconds"), [("TAI", 37), ("GPS", 18)])
def test_timesys_tai_and_gps(tmp_path, system, seconds):
    path = write_fits(tmp_path / "a.fits", {"DATE-OBS": "2021-03-05T03:01:00",
                                            "TIMESYS": system})  # fmt: skip
    # UTC = TAI - 37 s = GPS - 18 s in 2021.
    assert read_header(str(path)).date == datetime(2021, 3, 5, 3, 0, 60 - seconds, tzinfo=UTC)


# --- values that must never stop anything ----------------------------------------------------


@pytest.mark.parametrize(
    ("header", "source"),
    [
        ({"DATE-OBS": "0001-01-01T00:00:00", "DATE": "2021-03-04T21:00:00"}, "DATE in HDU 0"),
        ({"DATE-OBS": "9999-12-31T23:59:59", "MJD-OBS": 59277.5}, "MJD-OBS in HDU 0"),
        ({"DATE-OBS": "0001-01-01", "TIME-OBS": "00:00:00", "DATE": "2021-03-04"},
         "DATE in HDU 0"),
        ({"MJD-OBS": 0.0, "DATE-OBS": "2021-03-04T21:00:00"}, "DATE-OBS in HDU 0"),
        ({"MJD-OBS": 1e300, "DATE-OBS": "1899-12-31T23:00:00"}, None),
    ],
)  # fmt: skip
def test_years_outside_1900_2100_are_no_date_for_that_keyword(tmp_path, header, source):
    path = write_fits(tmp_path / "a.fits", {**header, "DATE-LOC": "0001-01-01T00:00:00",
                                            "SITELONG": 151.2})  # fmt: skip
    info = read_header(str(path))
    assert info.date_source == source
    assert info.date_loc is None
    if source is None:
        assert "outside 1900-2100" in info.date_problem or "Julian" in info.date_problem
        return
    for zone in (None, "Pacific/Kiritimati", "Etc/GMT+12"):
        decision = decide("a.fits", Folder(str(tmp_path), timezone=zone), info.date.isoformat(),
                          header_facts(info))  # fmt: skip
        assert decision.night


def test_one_bad_file_does_not_stop_the_others(tmp_path):
    write_fits(tmp_path / "M1/bad.fits", {"DATE-OBS": "0001-01-01T00:00:00"})
    write_fits(tmp_path / "M1/good.fits", {"DATE-OBS": "2021-03-04T21:00:00"})
    with mf.Manifest(tmp_path / "m.sqlite") as manifest:
        plan = planned([Folder(str(tmp_path / "M1"), timezone="Asia/Tokyo")], manifest,
                         min_age=0)  # fmt: skip
    assert [i.relpath for i in plan.items] == ["good.fits"]
    assert plan.skipped[0][1:] == (
        "bad.fits", "no date found (DATE-OBS '0001-01-01T00:00:00' has a year outside 1900-2100)")


def test_xisf_longitude_property_and_date_loc(tmp_path):
    path = write_xisf(tmp_path / "a.xisf", {"DATE-OBS": "2021-03-04T11:00:00"},
                      {"Observation:Location:Longitude": {"type": "Float64", "value": "151.2"}})
    info = read_header(str(path))
    assert info.longitude == pytest.approx(151.2)
    assert info.longitude_keyword.startswith("Observation:Location:Longitude")


# --- the manifest keeps what the header said -------------------------------------------------


def test_a_retried_file_is_planned_from_the_manifest_without_reading_it(tmp_path, monkeypatch):
    root = tmp_path / "data"
    nina(root / "NGC3372/a.fits", "2021-03-04T12:30:00", "2021-03-04T23:30:00", imagetyp="FLAT")
    folder = Folder(str(root), classify="header")
    with mf.Manifest(tmp_path / "m.sqlite") as manifest:
        first = planned([folder], manifest, min_age=0)
        manifest.upsert_files(folder.path, [i.row() for i in first.items])
        row = manifest.file(folder.path, "NGC3372/a.fits")
        assert row["date_source"] == "DATE-OBS in HDU 0"
        assert row["time_source"] == "DATE-LOC"
        assert row["date_loc"] == "2021-03-04T23:30:00"
        assert row["frame_type"] == "FLAT"

        def no_reading(*_args):
            raise AssertionError("the header was read again")

        monkeypatch.setattr("oort_lib.local.headers.read_header", no_reading)
        second = planned([folder], manifest, min_age=0)
    (a,), (b,) = first.items, second.items
    assert (b.night, b.kind, b.time_source, b.date_source) == (
        "2021-03-04", "calibration", "DATE-LOC", "DATE-OBS in HDU 0")
    assert (a.night, a.kind) == (b.night, b.kind)


def test_rows_from_before_0003_plan_as_before(tmp_path):
    root = tmp_path / "data"
    path = nina(root / "x/a.fits", "2021-03-04T11:00:00", "2021-03-04T22:00:00")
    folder = Folder(str(root))
    with mf.Manifest(tmp_path / "m.sqlite") as manifest:
        st = path.stat()
        # A pending row as an older oort-sync wrote it: no header facts.
        old_row = {"relpath": "x/a.fits", "size": st.st_size, "mtime_ns": st.st_mtime_ns,
                   "header_date": "2021-03-04T11:00:00", "status": mf.PENDING}  # fmt: skip
        manifest.upsert_files(folder.path, [old_row])
        plan = planned([folder], manifest, min_age=0)
    (item,) = plan.items
    # Today's computation: the header time taken as local (11:00: the night before).
    assert (item.night, item.time_source, item.date_source) == ("2021-03-03", "assumed local",
                                                                None)  # fmt: skip


def test_migration_0003_adds_the_columns(tmp_path):
    names = [name for name, _fn in mf.MIGRATIONS]
    assert "0003_night_sources" in names and names.index("0003_night_sources") > names.index(
        "0001_initial")
    with mf.Manifest(tmp_path / "m.sqlite") as manifest:
        columns = {r["name"] for r in manifest.rows("PRAGMA table_info(files)")}
        # Idempotent: applying it again to a migrated table changes nothing.
        import sqlite_utils

        migrations._m0003_night_sources(sqlite_utils.Database(manifest.conn))
        again = {r["name"] for r in manifest.rows("PRAGMA table_info(files)")}
    assert set(migrations.NIGHT_SOURCE_COLUMNS) <= columns and columns == again


# --- real files -----------------------------------------------------------------------------


REAL = REALDATA
needs_real = pytest.mark.usefixtures("realdata")  # unavailable() when missing: fails on CI


def real(relpath: str) -> Path:
    return REAL / "tree" / "realsky" / relpath


@needs_real
@pytest.mark.parametrize(
    ("relpath", "source", "local_source", "local", "night"),
    [
        # Seestar S50 near Toronto: DATE-OBS UTC, SITELONG; its file name has local time
        # 22:44 EDT, local mean time is 21:25.
        ("NGC 7023/Light_NGC 7023_10.0s_IRCUT_20240730-224436.fit", "DATE-OBS in HDU 0",
         "longitude", datetime(2024, 7, 30, 21, 25, 19, 705983), date(2024, 7, 30)),
        ("NGC 7023/Light_NGC 7023_20.0s_IRCUT_20250630-023420.fit.gz", "DATE-OBS in HDU 0",
         "longitude", None, date(2025, 6, 29)),
        # PANOPTES on Mauna Loa: LONG-OBS; the .fz keeps it in HDU 1.
        ("PANOPTES/Bias/tiny.fits", "DATE-OBS in HDU 0", "longitude", None, date(2016, 9, 8)),
        ("PANOPTES/solved.fits.fz", "DATE-OBS in HDU 1", "longitude", None, date(2016, 9, 8)),
        # IRAF at CTIO, single-digit seconds, no site keyword: the Oort assumption.
        ("CTIO/very_simple.fits", "DATE-OBS in HDU 0", "assumed local",
         datetime(2002, 1, 28, 2, 45, 1, 875000), date(2002, 1, 27)),
        # Orion Camera Studio writes DATE_OBS with " T".
        ("Orion/file1.fits", "DATE_OBS in HDU 0", "assumed local",
         datetime(2015, 2, 19, 11, 4), date(2015, 2, 18)),
        ("Guiding/simimage.fit", "DATE in HDU 0", "assumed local", None, date(2007, 5, 7)),
        ("PixInsight/test.xisf", "DATE-OBS in HDU 0", "longitude", None, date(2023, 1, 25)),
    ],
)  # fmt: skip
def test_real_files(relpath, source, local_source, local, night):
    path = real(relpath)
    info, decision = decided(path, path.parent)
    assert info.date_source == source
    assert decision.local.source == local_source
    if local is not None:
        assert decision.local.when == local
    assert decision.night == night.isoformat()


@needs_real
def test_real_frame_types_and_targets():
    info = read_header(str(real("CTIO/very_simple.fits")))
    assert (info.frame_type, info.target) == ("OBJECT", "320")
    seestar = read_header(str(real("NGC 7023/Light_NGC 7023_10.0s_IRCUT_20240730-224436.fit")))
    assert (seestar.frame_keyword, seestar.frame_type, seestar.target) == (
        "IMAGETYP", "Light", "NGC 7023")


@needs_real
def test_every_real_file_is_dated_or_skipped_with_a_reason(tmp_path):
    root = REAL / "tree" / "realsky"
    with mf.Manifest(tmp_path / "m.sqlite") as manifest:
        plan = planned([Folder(str(root), classify="header")], manifest, min_age=0)
    assert len(plan.items) >= 9
    assert all(i.date_source and i.time_source for i in plan.items)
    reasons = {p: why for _root, p, why in plan.skipped}
    assert reasons["PANOPTES/noheader.fits"].startswith("no date found")
    assert reasons["CTIO/data_zipped_no_clear.fits.zip"] == "not FITS or XISF"
    bias = next(i for i in plan.items if i.relpath == "PANOPTES/Bias/tiny.fits")
    assert bias.kind == "calibration"  # no IMAGETYP: the folder rule



def test_reading_and_deciding_never_depend_on_the_machine_time_zone(tmp_path, monkeypatch):
    import time

    files = [nina(tmp_path / "a.fits", "2021-03-04T12:30:00", "2021-03-04T23:30:00"),
             write_fits(tmp_path / "b.fits", {"DATE-OBS": "2021-03-05T03:00:30",
                                              "TIMESYS": "TT"}),
             write_fits(tmp_path / "c.fits", {"MJD-OBS": 59278.125, "SITELONG": -70})]  # fmt: skip
    answers = set()
    for machine in ("UTC", "Australia/Sydney", "America/Santiago", "Pacific/Kiritimati"):
        monkeypatch.setenv("TZ", machine)
        time.tzset()
        answers.add(tuple(
            (d.night, d.local.when) for d in (
                decided(path, tmp_path, **zone)[1] for path in files
                for zone in ({}, {"timezone": "Asia/Tokyo"}))))  # fmt: skip
    monkeypatch.undo()
    time.tzset()
    assert len(answers) == 1
