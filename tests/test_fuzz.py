"""No value in one file's header can stop the planning of another file.

Hypothesis writes FITS headers with arbitrary keyword values (dates out of range such as
.NET's `DateTime.MinValue`, Julian dates of 1e308, NaN, time scales, longitudes, frame
types, raw bytes in any encoding) and checks that the header reader answers or raises a
FileProblem, and that the planner accounts for every file (to upload, skipped or failed)
while a good file beside them is always planned.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from helpers import planned
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from oort_lib.errors import FileProblem
from oort_lib.local.decision import decide, header_facts
from oort_lib.local.headers import read_header
from oort_lib.local.scan import key_name
from oort_lib.state import manifest as mf
from oort_lib.state.config import Folder

DATE_KEYWORDS = ("DATE-OBS", "DATE_OBS", "MJD-OBS", "JD", "DATE", "TIME-OBS", "UT",
                 "UTSTART", "DATE-LOC", "TIMESYS")
OTHER_KEYWORDS = ("SITELONG", "OBSGEO-L", "LONG-OBS", "OBSGEO-X", "OBSGEO-Y", "IMAGETYP",
                  "FRAME", "OBSTYPE", "OBJECT")
KEYWORDS = DATE_KEYWORDS + OTHER_KEYWORDS

# Values that once stopped runs, or sit on an edge.
EDGES = ["0001-01-01T00:00:00", "0001-01-01", "9999-12-31T23:59:59.9999999", "1899-12-31",
         "2100-12-31T23:59:60", "2021-02-30", "2021-03-04T24:00:00", "2021-03-04T12:00+25:00",
         "1e308", "-1e308", "nan", "inf", "-0", "2400000.5", "88069.99999", "15019.5",
         "TT", "GPS", "TDB", "LOCAL", "+180 00 00", "-181", "360.0", "dark", "LIGHT", ""]

texts = st.one_of(st.sampled_from(EDGES),
                  st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=60))
numbers = st.one_of(st.integers(min_value=-10**20, max_value=10**20),
                    st.floats(allow_nan=True, allow_infinity=True))
raw_values = st.binary(max_size=70)
values = st.one_of(texts.map(lambda t: ("text", t)), numbers.map(lambda n: ("number", n)),
                   raw_values.map(lambda b: ("raw", b)))
headers = st.dictionaries(st.sampled_from(KEYWORDS), values, max_size=8)


def card(keyword: str, kind: str, value) -> bytes:
    """One 80-byte card as a careless writer might produce it."""
    if kind == "text":
        body = "'" + str(value).replace("'", "''") + "'"
        raw = f"{keyword:<8}= {body}".encode("ascii", "replace")
    elif kind == "number":
        raw = f"{keyword:<8}= {value!r:>20}".encode("ascii", "replace")
    else:
        raw = f"{keyword:<8}= ".encode() + value
    return raw[:80].ljust(80, b" ")


def write_header(path: Path, cards: dict, data: bytes = b"") -> Path:
    """A FITS file (no data unless given) whose primary header holds `cards`."""
    head = [card("SIMPLE", "raw", b"                   T"),
            card("BITPIX", "raw", b"                   8"),
            card("NAXIS", "raw", b"                   0")]
    head += [card(k, kind, v) for k, (kind, v) in cards.items()]
    head.append(b"END".ljust(80, b" "))
    raw = b"".join(head)
    raw += b" " * (-len(raw) % 2880)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(raw + data)
    os.utime(path, (1_600_000_000, 1_600_000_000))
    return path


FOLDERS = [Folder("/x"), Folder("/x", timezone="Pacific/Kiritimati"),
           Folder("/x", timezone="UTC", classify="header")]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cards=headers)
@example(cards={"DATE-OBS": ("text", "0001-01-01T00:00:00")})
@example(cards={"DATE-OBS": ("text", "0001-01-01T00:00:00"),
                "DATE": ("text", "0001-01-01T00:00:00")})
@example(cards={"MJD-OBS": ("number", 1e308), "TIMESYS": ("text", "TT")})
@example(cards={"DATE-OBS": ("text", "2100-12-31T23:59:59"), "TIMESYS": ("text", "TAI"),
                "SITELONG": ("text", "-179.99")})
@example(cards={"DATE-OBS": ("text", "1900-01-01T00:00:00"),
                "DATE-LOC": ("text", "0001-01-01T00:00:00")})
@example(cards={"OBJECT": ("raw", "'Café ☄'".encode())})
def test_header_reader_answers_or_raises_file_problem(cards):
    with tempfile.TemporaryDirectory() as tmp:
        path = write_header(Path(tmp) / "f.fits", cards)
        try:
            info = read_header(str(path))
        except FileProblem:
            return
        facts = header_facts(info)
        if info.date is None:
            return
        for folder in FOLDERS:
            # The planner isolates a failure here too, but the rules should not need it.
            decision = decide("M31/f.fits", folder, info.date.isoformat(), facts)
            assert len(decision.night) == 10


# File names in any encoding: text, and bytes that are not UTF-8 at all.
file_names = st.one_of(
    st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="/\\\0."),
            min_size=1, max_size=12),
    st.binary(min_size=1, max_size=12).filter(lambda b: b"/" not in b and b"\0" not in b
                                              and b"." not in b).map(os.fsdecode),
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(files=st.lists(headers, min_size=1, max_size=5),
       names=st.lists(file_names, min_size=5, max_size=5, unique=True))
def test_planner_accounts_for_every_file_and_plans_the_good_one(files, names):
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "data"
        good = write_header(root / "good" / "good.fits",
                            {"DATE-OBS": ("text", "2021-06-01T22:00:00")})
        for name, cards in zip(names, files):
            write_header(root / "M31" / f"{name}.fits", cards)
        with mf.Manifest(Path(tmp) / "m.sqlite") as manifest:
            for folder in FOLDERS:
                plan = planned([folder._replace(path=str(root))], manifest, min_age=0)
                seen = ([i.relpath for i in plan.items] + [p for _r, p, _w in plan.skipped]
                        + [p for _r, p, _w in plan.failed])
                assert sorted(seen) == sorted(
                    ["good/good.fits"] + [f"M31/{key_name(n)}.fits" for n in names[:len(files)]])
                assert "good/good.fits" in [i.relpath for i in plan.items]
                assert str(good) in [i.path for i in plan.items]


def test_a_file_the_rules_or_the_reader_choke_on_stops_only_itself(tmp_path, monkeypatch):
    """Whatever a value makes the code raise (a bug), that file fails alone: the reader's
    surprise and the rules' surprise fail it (retried with the backoff, so an upgrade
    that fixes the bug picks it up; never skipped for good as if the file were damaged),
    and every other file is planned."""
    import oort_lib.local.headers
    import oort_lib.run.planner

    root = tmp_path / "data"
    for name in ("a", "reader", "rules", "z"):
        write_header(root / "M31" / f"{name}.fits", {"DATE-OBS": ("text", "2021-06-01T22:00")})
    real_read, real_decide = oort_lib.local.headers.read_header, oort_lib.run.planner.decide

    def read(path, *args):
        if path.endswith("reader.fits"):
            raise OverflowError("date value out of range")
        return real_read(path, *args)

    def rules(relpath, *args):
        if relpath.endswith("rules.fits"):
            raise OverflowError("date value out of range")
        return real_decide(relpath, *args)

    monkeypatch.setattr(oort_lib.local.headers, "read_header", read)
    monkeypatch.setattr(oort_lib.run.planner, "decide", rules)
    with mf.Manifest(tmp_path / "m.sqlite") as manifest:
        plan = planned([Folder(str(root))], manifest, min_age=0, record=manifest.upsert_files)
        failed = manifest.file(str(root), "M31/rules.fits")
        reader = manifest.file(str(root), "M31/reader.fits")
    assert sorted(i.relpath for i in plan.items) == ["M31/a.fits", "M31/z.fits"]
    assert len(plan.skipped) == 0
    assert sorted((p, w) for _r, p, w in plan.failed) == [
        ("M31/reader.fits", "internal error reading its header (OverflowError: date value "
                            "out of range): retried next run; please report it"),
        ("M31/rules.fits", "the rules failed on its header values (OverflowError: date "
                           "value out of range)")]
    assert (failed["status"], failed["transient"]) == ("failed", 1)
    assert (reader["status"], reader["transient"]) == ("failed", 1)
