"""The night a 2026 server gives a file (local/servernight.py), the telescope's site as the
server answers it (local/site.py), and where a dataset is filed (run/filing.py): pure
rules, tested exhaustively (issue 20, part 1)."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from oort_lib.local.localtime import mean_solar_time
from oort_lib.local.rules import night_date
from oort_lib.local.servernight import (
    HEADER_CLOCK,
    SITE_LONGITUDE,
    SITE_ZONE,
    night_label,
    server_night,
)
from oort_lib.local.site import (
    NO_SITE,
    Site,
    east,
    nights_lines,
    site_of,
    site_offset,
    site_warnings,
    telescope_lines,
)
from oort_lib.run.filing import filing_nights, spans

UTC = timezone.utc
ZONES = ["Australia/Sydney", "America/Santiago", "Pacific/Honolulu", "Europe/Paris",
         "Asia/Tokyo", "UTC", "Asia/Kolkata", "Pacific/Chatham"]  # fmt: skip
headers = st.datetimes(min_value=datetime(1900, 1, 2), max_value=datetime(2100, 12, 30))
longitudes = st.floats(min_value=-180, max_value=360, allow_nan=False)


# --- the cases ------------------------------------------------------------------


def test_sydney_without_a_site_is_filed_by_the_header_clock():
    """The issue: a Sydney folder with --timezone=Australia/Sydney on a telescope with no
    site. 20:30 in Sydney (AEDT) is 09:30 UTC: by the folder's zone the night of the 4th,
    by the header clock (what the server reads) before noon, so the night of the 3rd."""
    frame = datetime(2026, 3, 4, 9, 30)
    assert night_date(frame, "Australia/Sydney") == date(2026, 3, 4)
    found = server_night(frame, Site())
    assert (found.night, found.source) == (date(2026, 3, 3), HEADER_CLOCK)
    assert found.label == "night by the header clock: the telescope has no site on Arcsecond"
    assert server_night(frame, None) == found


def test_the_site_time_zone_beats_its_longitude():
    # 22:10 UTC is 12:10 in Honolulu (the night of the day) but 11:48 in mean solar time
    # at 155.47 W (still the previous night).
    frame = datetime(2026, 3, 4, 22, 10)
    zoned = server_night(frame, Site(-155.4681, "Pacific/Honolulu"))
    assert (zoned.night, zoned.source, zoned.local) == (
        date(2026, 3, 4), SITE_ZONE, datetime(2026, 3, 4, 12, 10))
    assert zoned.label == "night by the telescope's site, time zone Pacific/Honolulu"
    by_longitude = server_night(frame, Site(-155.4681))
    assert (by_longitude.night, by_longitude.source) == (date(2026, 3, 3), SITE_LONGITUDE)
    assert by_longitude.label == "night by the telescope's site at longitude -155.47°"


def test_chile_at_the_telescopes_longitude():
    found = server_night(datetime(2024, 5, 2, 14, 0), Site(-70.7375))
    assert found.night == date(2024, 5, 1)  # 09:17 local mean solar time
    assert found.label == "night by the telescope's site at longitude -70.74°"
    assert "-70.74°" in found.detail and "as the server reads it" in found.detail


def test_an_offset_in_the_header_is_read_in_utc():
    # 01:00+11:00 is 14:00 UTC the day before: by the header clock, that afternoon's night.
    aware = datetime(2026, 3, 4, 1, 0, tzinfo=timezone(timedelta(hours=11)))
    assert server_night(aware, Site()).night == date(2026, 3, 3)
    assert server_night(aware, Site()).local == datetime(2026, 3, 3, 14, 0)


def test_a_zone_that_is_no_zone_falls_back_to_the_longitude():
    found = server_night(datetime(2026, 3, 4, 22, 10), Site(-155.4681, "Mars/Olympus"))
    assert found.source == SITE_LONGITUDE
    assert night_label(Site(None, "Mars/Olympus")) == night_label(Site())


# --- properties ---------------------------------------------------------------------------


@settings(max_examples=300)
@given(headers, st.sampled_from(ZONES))
def test_a_site_zone_is_the_zones_noon_rule(when, name):
    assert server_night(when, Site(None, name)).night == night_date(when, name)
    assert server_night(when, Site(12.0, name)).night == night_date(when, name)


@settings(max_examples=300)
@given(headers, longitudes)
def test_a_longitude_is_mean_solar_time_folded(when, longitude):
    found = server_night(when, Site(longitude))
    assert found.night == night_date(mean_solar_time(when, east(longitude)))
    assert -180 <= east(longitude) < 180
    # 0-360 and -180-180 are the same place.
    assert server_night(when, Site(east(longitude))).night == found.night


@settings(max_examples=300)
@given(headers, st.one_of(st.none(), longitudes), st.one_of(st.none(), st.sampled_from(
    [*ZONES, "Not/AZone", ""])))
def test_the_night_is_within_a_day_of_the_utc_date(when, longitude, name):
    found = server_night(when, Site(longitude, name or None))
    assert when.date() - timedelta(days=2) < found.night <= when.date() + timedelta(days=1)
    assert found.source in (SITE_ZONE, SITE_LONGITUDE, HEADER_CLOCK)
    assert found.label.startswith("night by the ")
    without = server_night(when, Site())
    assert without.night == night_date(when) and without.local == when


# --- the site in a telescope object -------------------------------------------------------


@pytest.mark.parametrize("telescope, site", [
    ({"coordinates": {"longitude": -70.7375, "latitude": -30.17}}, Site(-70.7375)),
    ({"coordinates": {"longitude": "200"}}, Site(-160.0)),
    ({"coordinates": None, "observing_site": "0b5e0000-5a4d-4b0c-8000-000000000001"}, Site()),
    ({"coordinates": {"longitude": None}, "time_zone": None}, Site()),
    ({"time_zone": "Pacific/Honolulu"}, Site(None, "Pacific/Honolulu")),
    ({"timezone": " Europe/Paris "}, Site(None, "Europe/Paris")),
    ({"tz": "Mars/Olympus", "longitude": 10}, Site(10.0)),
    ({"coordinates": {"longitude": 400}}, Site()),
    ({"coordinates": {"longitude": True}}, Site()),
    ({"coordinates": {"longitude": "nan"}}, Site()),
    ({"observing_site": {"coordinates": {"longitude": 10}, "time_zone": "Europe/Rome"}},
     Site(10.0, "Europe/Rome")),
    ({"coordinates": {"longitude": 5, "time_zone": "Europe/Paris"},
      "observing_site": {"longitude": 9, "time_zone": "Europe/Rome"}},
     Site(5.0, "Europe/Paris")),
    ([], Site()),
    (None, Site()),
])
def test_the_site_is_read_tolerantly(telescope, site):
    assert site_of(telescope) == site


json_values = st.recursive(
    st.none() | st.booleans() | st.floats() | st.integers() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
        st.sampled_from(["coordinates", "longitude", "time_zone", "timezone", "tz",
                         "observing_site", "name"]), inner, max_size=4),
    max_leaves=12)


@settings(max_examples=300)
@given(json_values)
def test_no_answer_breaks_the_site_reading(value):
    site = site_of(value)
    assert site.longitude is None or -180 <= site.longitude < 180
    server_night(datetime(2026, 3, 4, 12), site)  # and it dates nights


# --- what people are told -----------------------------------------------------------------

WINTER = datetime(2026, 7, 1, tzinfo=UTC)  # southern winter: Santiago at UTC-4
SUMMER = datetime(2026, 1, 15, tzinfo=UTC)  # Santiago at UTC-3, Paris at UTC+1


def test_a_telescope_without_a_site_is_said():
    assert site_warnings(Site(), telescope="Backyard", timezone=None, at=SUMMER) == [
        f"telescope Backyard has no site on Arcsecond: {NO_SITE}."]
    notes = site_warnings(Site(), telescope="Backyard", timezone="Australia/Sydney",
                          at=SUMMER)
    assert len(notes) == 2
    assert notes[1] == ("--timezone=Australia/Sydney does not reach a 2026 server: it files "
                        "nights by the header clock, the telescope having no site.")


def test_a_timezone_that_disagrees_with_the_site_names_what_the_server_uses():
    [note] = site_warnings(Site(135.0), telescope="Dob", timezone="Europe/Paris", at=SUMMER)
    assert note == ("--timezone=Europe/Paris does not reach a 2026 server: it files nights "
                    "by the telescope's site (longitude 135.00°); Europe/Paris and the site "
                    "disagree by 8 h, and the server uses the site.")
    # Santiago against 70.74 W: 0.7 h in winter (agree), 1.7 h in summer (disagree).
    site = Site(-70.7375)
    [winter] = site_warnings(site, telescope="rt1", timezone="America/Santiago", at=WINTER)
    assert "does not reach a 2026 server" in winter and "disagree" not in winter
    [summer] = site_warnings(site, telescope="rt1", timezone="America/Santiago", at=SUMMER)
    assert "disagree by 1.75 h, and the server uses the site" in summer
    assert site_warnings(site, telescope="rt1", timezone=None) == []


def test_offsets_of_a_site():
    assert site_offset(Site(None, "Europe/Paris"), SUMMER) == timedelta(hours=1)
    assert site_offset(Site(150.0, "Mars/Olympus"), SUMMER) == timedelta(hours=10)
    assert site_offset(Site(), SUMMER) is None


def test_watch_lines_for_a_2026_folder():
    assert nights_lines(Site(-70.7375), telescope="rt1", timezone=None) == [
        "Nights: dated by the server from the telescope's site (longitude -70.74°), "
        "local noon to local noon"]
    lines = nights_lines(Site(), telescope="Backyard", timezone="Australia/Sydney", at=SUMMER)
    assert lines[0].startswith("Nights: dated by the server from the header clock")
    assert lines[1] == f"Warning: telescope Backyard has no site on Arcsecond: {NO_SITE}."
    assert lines[2].startswith("Warning: --timezone=Australia/Sydney does not reach")


def test_telescope_lines_say_the_site_and_the_folders_timezones():
    assert telescope_lines({"name": "rt1", "coordinates": {"longitude": -70.7375}}, []) == [
        "      site: longitude -70.74° (the server dates nights by it)"]
    lines = telescope_lines({"name": "Dob", "coordinates": {"longitude": 135}},
                            [("/data/paris", "Europe/Paris"), ("/data/other", None)])
    assert len(lines) == 2 and lines[1].startswith(
        "      watched folder /data/paris: --timezone=Europe/Paris does not reach")
    assert "the server uses the site" in lines[1]
    assert telescope_lines({"name": "B"}, []) == [f"      no site on Arcsecond: {NO_SITE}"]


# --- where a dataset is filed -------------------------------------------------------------


def test_a_dataset_is_filed_under_the_earliest_night_of_its_files():
    key, other = ("", "t1", "M42"), ("org", "t2", "Flats")
    files = {key: {"2026-03-04", "2026-03-03"}, other: {"2026-03-05"}}
    assert filing_nights(files, {}) == {key: "2026-03-03", other: "2026-03-05"}
    # Already filed under an earlier night: it stays there; a later one: it moves.
    assert filing_nights(files, {key: "2026-03-01", other: "2026-03-06"}) == {
        key: "2026-03-01", other: "2026-03-05"}
    nights = filing_nights(files, {})
    assert spans(files, nights) == {key: ["2026-03-03", "2026-03-04"]}
    assert spans(files, filing_nights(files, {other: "2026-03-01"}))[other] == [
        "2026-03-01", "2026-03-05"]
    # Filed under a later night until now: the move is a span too.
    moved = {other: "2026-03-06"}
    assert spans(files, filing_nights(files, moved), moved)[other] == [
        "2026-03-05", "2026-03-06"]


night_strings = st.dates(min_value=date(2000, 1, 1), max_value=date(2030, 1, 1)).map(
    date.isoformat)


@given(st.dictionaries(st.tuples(st.just(""), st.sampled_from(["a", "b"]), st.text(max_size=3)),
                       st.sets(night_strings, min_size=1, max_size=4), max_size=4),
       st.dictionaries(st.tuples(st.just(""), st.sampled_from(["a", "b"]), st.text(max_size=3)),
                       night_strings, max_size=4))
def test_filing_is_the_minimum_and_spans_are_what_differs(files, filed):
    nights = filing_nights(files, filed)
    assert set(nights) == set(files)
    for key, night in nights.items():
        assert night <= min(files[key]) and (key not in filed or night <= filed[key])
        assert night in files[key] or night == filed.get(key)
    found = spans(files, nights, filed)
    for key in files:
        every = files[key] | {nights[key]} | ({filed[key]} if key in filed else set())
        assert (key in found) == (len(every) > 1)
        assert key not in found or found[key] == sorted(every)


def test_a_site_timezone_in_the_config_is_checked(home):
    from oort_lib.state import config as cfg

    home.config_dir.mkdir(parents=True)
    home.config_file.write_text(f"[folder 1]\npath = {home.config_dir}\n"
                                "site_timezone = Pacific/Honolulu\n", encoding="utf-8")
    assert cfg.load_settings(home).folders[0].site_timezone == "Pacific/Honolulu"
    home.config_file.write_text(f"[folder 1]\npath = {home.config_dir}\n"
                                "site_timezone = Mars/Olympus\n", encoding="utf-8")
    with pytest.raises(cfg.ConfigError, match="line 3: site_timezone = Mars/Olympus"):
        cfg.load_settings(home)


def test_the_sandbox_files_nights_with_the_same_function():
    """One rule for the prediction and the sandbox: they cannot drift apart."""
    from oort_lib.local import decision, servernight, site
    from oort_lib.sandbox import organise
    from oort_lib.state.config import Folder

    assert organise.server_night is servernight.server_night
    assert organise.site_of is site.site_of
    # The folder's own zone plays no part in 2026.
    made = decision.decide("M42/a.fits", Folder("/data", longitude=-70.7375,
                                                timezone="Asia/Tokyo"),
                           "2024-05-02T14:00:00", {}, "2026")
    assert made.night == servernight.server_night(datetime(2024, 5, 2, 14), Site(-70.7375)
                                                  ).night.isoformat() == "2024-05-01"
