"""The Oort-Cloud rules: nights from noon to noon, calibrations by folder, names."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from oort_lib.local.rules import (
    CALIBRATION_KEYWORDS,
    classify,
    dataset_name,
    decide_kind,
    frame_kind,
    is_calibration,
    night_date,
    target_name,
)

# The Oort docs' example table; rows 3 and 4 follow the noon rule, not the table's typo.
DOCS_TABLE = [
    ("NGC3603/Halpha/Mosaic1.fits", datetime(2020, 9, 9, 14), date(2020, 9, 9),
     "observation", "NGC3603/Halpha"),
    ("Calibration/MasterBias.xisf", datetime(2020, 9, 21, 9), date(2020, 9, 20),
     "calibration", "Calibration"),
    ("Tests/Flats/U/U1.fit", datetime(2020, 9, 30, 1), date(2020, 9, 29),
     "calibration", "Tests/Flats/U"),
    ("NGC3603_V_2x2.fit", datetime(2020, 10, 15, 4), date(2020, 10, 14),
     "observation", "(folder root)"),
]  # fmt: skip


@pytest.mark.parametrize(("relpath", "when", "night", "kind", "dataset"), DOCS_TABLE)
def test_docs_table(relpath, when, night, kind, dataset):
    assert night_date(when) == night
    assert classify(relpath, "root") == (kind, dataset)


def test_noon_belongs_to_the_new_night():
    assert night_date(datetime(2021, 5, 6, 12, 0, 0)) == date(2021, 5, 6)
    assert night_date(datetime(2021, 5, 6, 11, 59, 59, 999000)) == date(2021, 5, 5)
    assert night_date(datetime(2021, 5, 6, 11, 59, 59, 999999)) == date(2021, 5, 5)
    assert night_date(datetime(2021, 5, 6, 12, 0, 0, 1)) == date(2021, 5, 6)


def test_midnight_and_evening():
    assert night_date(datetime(2021, 5, 6, 0, 0)) == date(2021, 5, 5)
    assert night_date(datetime(2021, 5, 6, 23, 59, 59)) == date(2021, 5, 6)
    assert night_date(datetime(2021, 1, 1, 3, 0)) == date(2020, 12, 31)
    assert night_date(datetime(2020, 3, 1, 6, 0)) == date(2020, 2, 29)


def test_without_zone_an_aware_value_keeps_its_wall_clock():
    # 13:00 at UTC-5 is 18:00 UTC, but without a zone the written wall time decides.
    when = datetime(2021, 1, 1, 13, 0, tzinfo=timezone(timedelta(hours=-5)))
    assert night_date(when) == date(2021, 1, 1)
    early = datetime(2021, 1, 1, 11, 0, tzinfo=timezone(timedelta(hours=5)))
    assert night_date(early) == date(2020, 12, 31)


def test_zone_treats_naive_values_as_utc():
    # Santiago is UTC-3 in March 2021: 14:30 UTC is 11:30 local, 15:30 UTC is 12:30.
    assert night_date(datetime(2021, 3, 5, 14, 30), "America/Santiago") == date(2021, 3, 4)
    assert night_date(datetime(2021, 3, 5, 15, 30), "America/Santiago") == date(2021, 3, 5)
    # Just after midnight UTC is still the evening before in Chile.
    assert night_date(datetime(2021, 3, 6, 1, 0), "America/Santiago") == date(2021, 3, 5)


def test_zone_converts_aware_values():
    when = datetime(2021, 6, 1, 2, 0, tzinfo=timezone(timedelta(hours=-4)))  # 06:00 UTC
    assert night_date(when, "Europe/Paris") == date(2021, 5, 31)  # 08:00 CEST
    z = datetime(2021, 6, 1, 10, 30, tzinfo=timezone.utc)  # 12:30 CEST
    assert night_date(z, "Europe/Paris") == date(2021, 6, 1)
    assert night_date(z, "UTC") == date(2021, 5, 31)


@pytest.mark.parametrize(
    ("utc", "zone", "night"),
    [
        # Paris, spring forward on 2021-03-28: 10:30 UTC is 12:30 CEST (11:30 with CET).
        (datetime(2021, 3, 28, 0, 30), "Europe/Paris", date(2021, 3, 27)),
        (datetime(2021, 3, 28, 10, 30), "Europe/Paris", date(2021, 3, 28)),
        (datetime(2021, 3, 27, 10, 30), "Europe/Paris", date(2021, 3, 26)),
        # Paris, fall back on 2021-10-31: 10:30 UTC is 11:30 CET (12:30 with CEST).
        (datetime(2021, 10, 31, 10, 30), "Europe/Paris", date(2021, 10, 30)),
        (datetime(2021, 10, 30, 10, 30), "Europe/Paris", date(2021, 10, 30)),
        # Santiago leaves DST on 2021-04-04: 15:30 UTC is 11:30 at UTC-4 (12:30 at UTC-3).
        (datetime(2021, 4, 4, 15, 30), "America/Santiago", date(2021, 4, 3)),
        (datetime(2021, 4, 3, 15, 30), "America/Santiago", date(2021, 4, 3)),
        # Santiago enters DST on 2021-09-05: 15:30 UTC is 12:30 at UTC-3 (11:30 at UTC-4).
        (datetime(2021, 9, 5, 15, 30), "America/Santiago", date(2021, 9, 5)),
        (datetime(2021, 9, 4, 15, 30), "America/Santiago", date(2021, 9, 3)),
    ],
)
def test_dst_transitions(utc, zone, night):
    assert night_date(utc, zone) == night


@pytest.mark.parametrize("zone", ["Mars/Olympus_Mons", "../../etc/passwd", "", "Europe/"])
def test_unknown_zone_is_a_value_error(zone):
    with pytest.raises(ValueError):
        night_date(datetime(2021, 1, 1, 12), zone)


@pytest.mark.parametrize(
    ("folder", "expected"),
    [
        ("Tests/Flats/U", True),
        ("a/DARKS/b", True),
        ("calibration", True),
        ("Calibration", True),
        ("NGC3603/MasterBias", True),
        ("Flatiron/M31", True),  # a substring, as the docs say: "contains"
        ("NGC3603/mosaic/Halpha", False),
        ("M42", False),
        ("", False),
        ("D/a/r/k", False),  # the letters spread over folders do not count
    ],
)
def test_is_calibration(folder, expected):
    assert is_calibration(folder) is expected


def test_every_keyword_counts_in_any_case():
    for keyword in CALIBRATION_KEYWORDS:
        assert is_calibration(f"x/{keyword.upper()}s/y")
        assert is_calibration(keyword.capitalize())


def test_only_folders_decide_not_the_file_name():
    assert classify("M42/dark_frame_001.fits", "root") == ("observation", "M42")
    assert classify("bias.fits", "Darks") == ("observation", "(folder Darks)")
    assert classify("Bias/b.fits", "root") == ("calibration", "Bias")


def test_root_files_and_names():
    assert classify("NGC3603_V_2x2.fit", "observatory") == (
        "observation",
        "(folder observatory)",
    )
    assert classify("NGC3603/mosaic/Halpha/m1.fits", "r") == (
        "observation",
        "NGC3603/mosaic/Halpha",
    )
    assert dataset_name("", "data") == "(folder data)"
    assert dataset_name("a/b", "data") == "a/b"


def test_target_name():
    assert target_name("  M 42 ", "M42") == "M 42"
    assert target_name("", "NGC3603/Halpha") == "NGC3603/Halpha"
    assert target_name("   ", "NGC3603/Halpha") == "NGC3603/Halpha"
    assert target_name(None, "(folder root)") == "(folder root)"


# --- properties of the night rule ----------------------------------------------------------

naive = st.datetimes(min_value=datetime(1900, 1, 2), max_value=datetime(2200, 1, 1))
zones = st.sampled_from(["UTC", "Europe/Paris", "America/Santiago", "Pacific/Chatham",
                         "Australia/Lord_Howe", "Asia/Kolkata"])  # fmt: skip


@given(naive)
def test_night_is_that_day_or_the_day_before(when):
    night = night_date(when)
    assert night in (when.date(), when.date() - timedelta(days=1))
    assert (night == when.date()) == (when.hour >= 12)


@given(naive)
def test_night_is_the_day_twelve_hours_earlier(when):
    assert night_date(when) == (when - timedelta(hours=12)).date()


@given(naive, naive)
def test_night_is_monotone(a, b):
    if a > b:
        a, b = b, a
    assert night_date(a) <= night_date(b)


@given(naive, naive, zones)
def test_night_is_monotone_in_a_zone(a, b, zone):
    # DST changes make local wall time jump back; the night must not.
    if a > b:
        a, b = b, a
    assert night_date(a, zone) <= night_date(b, zone)


@given(naive, zones)
def test_zone_night_uses_the_local_wall_clock(when, zone):
    from zoneinfo import ZoneInfo

    local = when.replace(tzinfo=timezone.utc).astimezone(ZoneInfo(zone))
    assert night_date(when, zone) == night_date(local.replace(tzinfo=None))
    # The same instant written with another offset gives the same night.
    shifted = local.astimezone(timezone(timedelta(hours=7)))
    assert night_date(shifted, zone) == night_date(when, zone)


# --- calibration or observation from the header's frame type ------------------------------


@pytest.mark.parametrize(
    ("frame_type", "kind"),
    [
        # N.I.N.A.
        ("LIGHT", "observation"), ("FLAT", "calibration"), ("DARK", "calibration"),
        ("BIAS", "calibration"), ("DARKFLAT", "calibration"),
        # MaxIm DL, SGP
        ("Light Frame", "observation"), ("Flat Field", "calibration"),
        ("Bias Frame", "calibration"), ("Dark Frame", "calibration"),
        ("Tricolor Image", None),
        # Ekos / INDI, ASIAIR
        ("Light", "observation"), ("Flat", "calibration"), ("Dark", "calibration"),
        ("Bias", "calibration"),
        # PixInsight masters
        ("Master Dark", "calibration"), ("MasterFlat", "calibration"),
        # archives and IRAF
        ("OBJECT", "observation"), ("object", "observation"), ("zero", "calibration"),
        ("SKYFLAT", "calibration"), ("DOMEFLAT", "calibration"), ("sky flat", "calibration"),
        ("dome_flat", "calibration"), ("OFFSET", "calibration"), ("science", "observation"),
        ("SCIENCE", "observation"), ("arc", "calibration"), ("COMP", "calibration"),
        ("dark-flat", "calibration"), ("flat dark", "calibration"),
        # nothing usable
        ("", None), ("  ", None), ("FOCUS", None), ("unknown", None), (None, None), (3, None),
    ],
)  # fmt: skip
def test_frame_kind(frame_type, kind):
    assert frame_kind(frame_type) == kind


def test_decide_kind_folder_mode_ignores_the_header():
    assert decide_kind("M42/Flat_001.fit", "folder", "Flat", "IMAGETYP") == (
        "observation", "no folder name contains bias, dark, flat or calib")
    kind, why = decide_kind("Flats/U/u1.fit", "folder", "Light", "IMAGETYP")
    assert kind == "calibration" and why == "folder 'Flats/U' contains 'flat'"


def test_decide_kind_header_mode():
    # ASIAIR keeps flats next to lights.
    assert decide_kind("M42/Flat_001.fit", "header", "Flat", "IMAGETYP") == (
        "calibration", "header: IMAGETYP = 'Flat'")
    assert decide_kind("Flats/x.fit", "header", "Light Frame", "IMAGETYP")[0] == "observation"
    # No frame type, or one that says nothing: the folder rule.
    kind, why = decide_kind("Darks/d1.fit", "header", None, None)
    assert kind == "calibration" and why.startswith("no IMAGETYP, FRAME or OBSTYPE")
    kind, why = decide_kind("M42/f.fit", "header", "Focus", "FRAME")
    assert kind == "observation" and why.startswith("FRAME = 'Focus' names no frame type")


def test_decide_kind_refuses_an_unknown_mode():
    with pytest.raises(ValueError, match="unknown classification mode"):
        decide_kind("a.fit", "guess")


@given(st.text(), st.sampled_from(["folder", "header"]), st.none() | st.text())
def test_decide_kind_never_raises_for_any_header(relpath, mode, frame_type):
    kind, why = decide_kind(relpath, mode, frame_type, "IMAGETYP")
    assert kind in ("calibration", "observation") and why
    if mode == "folder" or frame_kind(frame_type) is None:
        assert kind == classify(relpath, "root")[0]
