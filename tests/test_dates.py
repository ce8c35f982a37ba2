"""Strict parsing of header dates: accept the standard forms, refuse every guess."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from oort_lib.local.dates import (
    combine_date_time,
    from_jd,
    from_mjd,
    is_date_only,
    parse_header_date,
    plausible,
)

UTC = timezone.utc


def tz(hours: int, minutes: int = 0) -> timezone:
    sign = -1 if hours < 0 else 1
    return timezone(timedelta(hours=hours, minutes=sign * minutes))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2021-03-04T21:15:03", datetime(2021, 3, 4, 21, 15, 3)),
        ("2021-03-04 21:15:03", datetime(2021, 3, 4, 21, 15, 3)),
        ("2021-03-04t21:15:03", datetime(2021, 3, 4, 21, 15, 3)),
        ("2021-03-04T21:15", datetime(2021, 3, 4, 21, 15)),
        ("2021-03-04T21:15:03.5", datetime(2021, 3, 4, 21, 15, 3, 500000)),
        ("2021-03-04T21:15:03.123", datetime(2021, 3, 4, 21, 15, 3, 123000)),
        ("2021-03-04T21:15:03,25", datetime(2021, 3, 4, 21, 15, 3, 250000)),
        ("2021-03-04T21:15:03.123456", datetime(2021, 3, 4, 21, 15, 3, 123456)),
        # More digits than a datetime holds are truncated, never rounded into 21:15:04.
        ("2021-03-04T21:15:03.999999999", datetime(2021, 3, 4, 21, 15, 3, 999999)),
        ("2021-03-04T21:15:03Z", datetime(2021, 3, 4, 21, 15, 3, tzinfo=UTC)),
        ("2021-03-04T21:15:03.25z", datetime(2021, 3, 4, 21, 15, 3, 250000, tzinfo=UTC)),
        ("2021-03-04T21:15:03+02:00", datetime(2021, 3, 4, 21, 15, 3, tzinfo=tz(2))),
        ("2021-03-04T21:15:03-0330", datetime(2021, 3, 4, 21, 15, 3, tzinfo=tz(-3, 30))),
        ("2021-03-04T21:15:03+05", datetime(2021, 3, 4, 21, 15, 3, tzinfo=tz(5))),
        ("2021-03-04", datetime(2021, 3, 4)),
        ("2020-02-29", datetime(2020, 2, 29)),
        ("0001-01-01T00:00:00", datetime(1, 1, 1)),
        # A leap second is a real instant: kept in the same second.
        ("2016-12-31T23:59:60.5", datetime(2016, 12, 31, 23, 59, 59, 999999)),
        # FITS values arrive with quotes and padding.
        ("'2021-03-04T21:15:03'", datetime(2021, 3, 4, 21, 15, 3)),
        ("  '2021-03-04T21:15:03  '  ", datetime(2021, 3, 4, 21, 15, 3)),
        ('"2021-03-04"', datetime(2021, 3, 4)),
        # Legacy FITS dd/mm/yy means 19yy.
        ("15/10/98", datetime(1998, 10, 15)),
        ("01/02/03", datetime(1903, 2, 1)),
        ("31/12/99", datetime(1999, 12, 31)),
        # ... and dd/mm/yyyy, day first as in the FITS form.
        ("03/04/2021", datetime(2021, 4, 3)),
        ("28/01/2002", datetime(2002, 1, 28)),
        # IRAF writes single-digit seconds: unambiguous, accepted.
        ("2002-01-28T02:45:1.875", datetime(2002, 1, 28, 2, 45, 1, 875000)),
        ("2002-01-28T02:45:1", datetime(2002, 1, 28, 2, 45, 1)),
        ("2002-01-28T02:5:01", datetime(2002, 1, 28, 2, 5, 1)),
        ("2016-12-31T23:59:60", datetime(2016, 12, 31, 23, 59, 59, 999999)),
    ],
)
def test_accepted(text, expected):
    parsed = parse_header_date(text)
    assert parsed == expected
    # Equal aware values may still differ in offset; the offset is part of the answer.
    assert parsed.utcoffset() == expected.utcoffset()
    assert (parsed.tzinfo is None) == (expected.tzinfo is None)


@pytest.mark.parametrize(
    "text",
    [
        "2021-02-30",  # impossible day
        "2021-02-29",  # not a leap year
        "2021-13-01",  # month 13
        "2021-00-10",
        "2021-13-45",
        "2021-03-04T25:00:00",  # hour 25
        "2021-03-04T24:00:00",  # end-of-day 24:00 is ambiguous between two nights
        "2021-03-04T12:60:00",
        "2021-03-04T12:00:61",
        "2021-03-04T12:00:00+25:00",
        "2021-03-04T12:00:00+05:75",
        "0000-01-01",
        "13/25/2021",  # neither order is a date
        "2/3/2021",  # single-digit day and month
        "03/04/202",
        "2021/03/04",
        "04/03/21 21:00",
        "32/01/98",
        "29/02/99",
        "1998-10-15junk",
        "2021-3-4",
        "20210304",
        "20210304T211503",
        "2021-W09-4",
        "2021-063",
        "2021-03",
        "2021",
        "2021-03-04T",
        "2021-03-04T21",
        "2021-03-04Z",
        "2021-03-04T21:15:03.",
        "2021-03-04T21:15:03 Z",
        "2021-03-04  21:15:03",
        "March 4, 2021",
        "4 Mar 2021 21:15",
        "yesterday",
        "59277.5",
        "",
        "   ",
        "''",
    ],
)
def test_refused(text):
    assert parse_header_date(text) is None


def test_non_strings_are_refused():
    assert parse_header_date(None) is None  # type: ignore[arg-type]
    assert parse_header_date(20210304) is None  # type: ignore[arg-type]


def test_is_date_only():
    assert is_date_only("2021-03-04")
    assert is_date_only("'2021-03-04'")
    assert is_date_only("15/10/98")
    assert not is_date_only("2021-03-04T00:00:00")
    assert not is_date_only("2021-03-04 00:00")
    assert not is_date_only("2021-02-30")
    assert not is_date_only("garbage")
    assert not is_date_only("")


@pytest.mark.parametrize(
    ("date_value", "time_value", "expected"),
    [
        ("2021-03-04", "21:15:03", datetime(2021, 3, 4, 21, 15, 3)),
        ("2021-03-04", "21:15:03.25", datetime(2021, 3, 4, 21, 15, 3, 250000)),
        ("2021-03-04", "'01:02:03.123456789'", datetime(2021, 3, 4, 1, 2, 3, 123456)),
        ("2021-03-04", "21:15", datetime(2021, 3, 4, 21, 15)),
        ("2021-03-04", "21:15:03Z", datetime(2021, 3, 4, 21, 15, 3, tzinfo=UTC)),
        ("15/10/98", "03:00:00", datetime(1998, 10, 15, 3)),
        ("'2021-03-04'", " 00:00:00 ", datetime(2021, 3, 4)),
    ],
)
def test_combine(date_value, time_value, expected):
    combined = combine_date_time(date_value, time_value)
    assert combined == expected
    assert (combined.tzinfo is None) == (expected.tzinfo is None)


@pytest.mark.parametrize(
    ("date_value", "time_value"),
    [
        ("2021-03-04", "25:00:00"),
        ("2021-03-04", "12:61:00"),
        ("2021-03-04", "9:15:03"),  # a single-digit hour: refused, as in dates
        ("2021-03-04", "21:1:"),
        ("2021-03-04", "21.2583"),
        ("2021-03-04", ""),
        ("2021-03-04", "noon"),
        ("2021-02-30", "21:15:03"),
        ("garbage", "21:15:03"),
        # A date that already has a time would be a guess either way.
        ("2021-03-04T10:00:00", "21:15:03"),
    ],
)
def test_combine_refused(date_value, time_value):
    assert combine_date_time(date_value, time_value) is None


# --- properties -----------------------------------------------------------------------------

offsets = st.integers(min_value=-23 * 60 - 59, max_value=23 * 60 + 59).map(
    lambda minutes: timezone(timedelta(minutes=minutes))
)
# Years 1 and 9999 are left out: comparing aware values there overflows in datetime itself.
datetimes = st.datetimes(min_value=datetime(2, 1, 1), max_value=datetime(9998, 12, 31))


@given(datetimes, st.none() | offsets, st.sampled_from(["T", " "]))
def test_isoformat_round_trips(when, offset, sep):
    when = when.replace(tzinfo=offset)
    parsed = parse_header_date(when.isoformat(sep=sep))
    assert parsed == when
    assert parsed.utcoffset() == when.utcoffset()


@given(datetimes, st.sampled_from(["minutes", "seconds", "milliseconds"]))
def test_shorter_forms_round_trip_to_their_precision(when, timespec):
    parsed = parse_header_date(when.isoformat(timespec=timespec))
    cut = {
        "minutes": when.replace(second=0, microsecond=0),
        "seconds": when.replace(microsecond=0),
        "milliseconds": when.replace(microsecond=when.microsecond // 1000 * 1000),
    }[timespec]
    assert parsed == cut


@given(datetimes)
def test_z_suffix_means_utc(when):
    text = when.isoformat() + "Z"
    assert parse_header_date(text) == when.replace(tzinfo=UTC)


@given(datetimes)
def test_date_only_round_trips(when):
    text = when.date().isoformat()
    assert is_date_only(text)
    assert parse_header_date(text) == datetime.combine(when.date(), datetime.min.time())


@given(st.dates(min_value=datetime(1900, 1, 1).date(), max_value=datetime(1999, 12, 31).date()))
def test_legacy_form_round_trips(day):
    text = day.strftime("%d/%m/%y")
    assert parse_header_date(text) == datetime(day.year, day.month, day.day)


@given(st.dates(min_value=datetime(1000, 1, 1).date()))
def test_four_digit_legacy_form_round_trips(day):
    text = f"{day.day:02d}/{day.month:02d}/{day.year:04d}"
    assert parse_header_date(text) == datetime(day.year, day.month, day.day)


@given(st.dates(), st.sampled_from(["{Y}/{m}/{d}", "{d}.{m}.{Y}", "{m}-{d}-{Y}"]))
def test_other_day_month_orders_are_never_guessed(day, fmt):
    # Formatted by hand: strftime does not pad years below 1000 to four digits.
    text = fmt.format(d=f"{day.day:02d}", m=f"{day.month:02d}", Y=f"{day.year:04d}")
    assert parse_header_date(text) is None


@given(st.dates())
def test_month_first_is_only_ever_read_day_first(day):
    text = f"{day.month:02d}/{day.day:02d}/{day.year:04d}"
    parsed = parse_header_date(text)
    if day.day > 12:
        assert parsed is None  # month 13 or more: refused, never swapped
    else:
        assert parsed == datetime(day.year, day.day, day.month)


@given(st.text())
def test_arbitrary_text_never_raises(text):
    result = parse_header_date(text)
    assert result is None or isinstance(result, datetime)
    assert isinstance(is_date_only(text), bool)
    combined = combine_date_time(text, text)
    assert combined is None or isinstance(combined, datetime)


@given(datetimes, st.sampled_from([0, 1, 2, 3, 6, 9, 12]))
def test_combined_equals_the_iso_value(when, digits):
    time_text = when.strftime("%H:%M:%S")
    fraction = f"{when.microsecond:06d}"[:digits].ljust(digits, "0") if digits else ""
    if digits:
        time_text += "." + fraction
    expected = parse_header_date(when.date().isoformat() + "T" + time_text)
    assert expected is not None
    assert combine_date_time(when.date().isoformat(), time_text) == expected


# --- Julian dates and plausible years -------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (59277.5, datetime(2021, 3, 4, 12, tzinfo=UTC)),
        ("59277.5", datetime(2021, 3, 4, 12, tzinfo=UTC)),
        ("'51000.25'", datetime(1998, 7, 6, 6, tzinfo=UTC)),
        (15020, datetime(1900, 1, 1, tzinfo=UTC)),
    ],
)
def test_mjd(value, expected):
    assert from_mjd(value) == expected


@pytest.mark.parametrize(
    "value", [0, -1, 1e300, float("nan"), float("inf"), "soon", "", None, True, 99999.0]
)
def test_mjd_refused_never_raises(value):
    assert from_mjd(value) is None


def test_jd():
    assert from_jd(2459278.0) == datetime(2021, 3, 4, 12, tzinfo=UTC)
    assert from_jd("0") is None
    assert from_jd("x") is None


@pytest.mark.parametrize(
    ("when", "expected"),
    [(datetime(1, 1, 1), False), (datetime(1899, 12, 31, 23), False),
     (datetime(1900, 1, 1), True), (datetime(2100, 12, 31), True),
     (datetime(2101, 1, 1), False), (None, False)],
)  # fmt: skip
def test_plausible(when, expected):
    assert plausible(when) is expected


@given(st.floats(allow_nan=True, allow_infinity=True) | st.text() | st.integers())
def test_julian_dates_never_raise(value):
    for convert in (from_mjd, from_jd):
        result = convert(value)
        assert result is None or plausible(result)
