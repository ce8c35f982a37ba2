"""`oort-sync nights` (issue 23, item 1): what each night got, per destination, from the
header facts planning read (exposure, filter, object, frame type) and stored in the
manifest (migration 0009_frame_facts). (tests/test_nights.py is about the night rule.)

The facts are read where the header is read (headers.py, both FITS and XISF); the frame
class is a pure rule (rules.frame_class); the command runs against the sandbox in both
generations over real HTTP.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from fitsfiles import rewrite_xisf_header, write_frame
from helpers import configure_for
from hypothesis import given
from hypothesis import strategies as st

from oort_lib.local.decision import FRAME_FACTS, header_facts
from oort_lib.local.headers import read_header
from oort_lib.local.rules import FRAME_CLASSES, frame_class, frame_kind
from oort_lib.samples import write_fits, write_xisf
from oort_lib.state import manifest as mf

# --- the facts, read with the header ----------------------------------------------------


@pytest.mark.parametrize(("cards", "seconds"), [
    ({"EXPTIME": 300.0}, 300.0),
    ({"EXPTIME": 0.001}, 0.001),
    ({"EXPOSURE": 120}, 120.0),
    ({"EXPTIME": 60, "EXPOSURE": 120}, 60.0),  # EXPTIME first
    ({"EXPTIME": "n/a", "EXPOSURE": 30}, 30.0),  # an unreadable EXPTIME: EXPOSURE
    ({"EXPTIME": -1}, None),
    ({"EXPTIME": "300 s"}, None),
    ({}, None),
])  # fmt: skip
def test_fits_exposure(tmp_path, cards, seconds):
    path = write_fits(tmp_path / "f.fits", {"DATE-OBS": "2021-06-01T22:00:00", **cards})
    assert read_header(str(path)).exposure == seconds


def test_fits_filter_object_and_frame_type_reach_the_manifest_facts(tmp_path):
    path = write_fits(tmp_path / "f.fits", {"DATE-OBS": "2021-06-01T22:00:00",
                                            "OBJECT": " M 31 ", "FILTER": "Ha ",
                                            "EXPTIME": 300, "IMAGETYP": "Light Frame"})
    facts = header_facts(read_header(str(path)))
    assert {k: facts[k] for k in FRAME_FACTS} == {"exposure": 300.0, "filter_name": "Ha",
                                                  "object_name": "M 31"}
    assert facts["frame_type"] == "Light Frame"
    bare = write_fits(tmp_path / "g.fits", {"DATE-OBS": "2021-06-01T22:00:00",
                                            "FILTER": "  "})
    assert {k: header_facts(read_header(str(bare)))[k] for k in FRAME_FACTS} == dict.fromkeys(
        FRAME_FACTS)


def test_fz_facts_come_from_the_compressed_hdu(tmp_path):
    path = write_fits(tmp_path / "f.fits.fz", {"DATE-OBS": "2021-06-01T22:00:00",
                                               "EXPTIME": 45, "FILTER": "R"}, compress="fz")
    info = read_header(str(path))
    assert (info.exposure, info.filter) == (45.0, "R")


def test_xisf_keywords_first_then_properties(tmp_path):
    when = {"type": "TimePoint", "value": "2021-06-01T22:00:00Z"}
    both = write_xisf(tmp_path / "a.xisf", {"EXPTIME": 300, "FILTER": "Ha"},
                      {"Observation:Time:Start": when,
                       "Instrument:ExposureTime": {"type": "Float32", "value": "10"},
                       "Instrument:Filter:Name": "OIII"})
    info = read_header(str(both))
    assert (info.exposure, info.filter) == (300.0, "Ha")
    only = write_xisf(tmp_path / "b.xisf", {},
                      {"Observation:Time:Start": when,
                       "Instrument:ExposureTime": {"type": "Float64", "value": "180.5"},
                       "Instrument:Filter:Name": "OIII"})
    info = read_header(str(only))
    assert (info.exposure, info.filter) == (180.5, "OIII")
    # A writer that puts a String in a value attribute (no text): the attribute is read.
    rewrite_xisf_header(only, lambda xml: xml.replace(
        b'type="String">OIII</Property>', b'type="String" value="SII"/>'))
    assert read_header(str(only)).filter == "SII"


# --- the frame class: a pure rule ----------------------------------------------------------


@pytest.mark.parametrize(("frame_type", "folder", "kind", "expected"), [
    # The header's frame type first, in the spellings frame_kind knows.
    ("LIGHT", "Flats", "calibration", "light"), ("Light Frame", "", "observation", "light"),
    ("object", "", "observation", "light"), ("science", "", "observation", "light"),
    ("FLAT", "M42", "observation", "flat"), ("Flat Field", "", "calibration", "flat"),
    ("SKYFLAT", "", "calibration", "flat"), ("dome_flat", "", "calibration", "flat"),
    ("twilight", "", "calibration", "flat"),
    ("DARK", "", "calibration", "dark"), ("Dark Frame", "", "calibration", "dark"),
    ("DARKFLAT", "", "calibration", "dark"), ("flat dark", "", "calibration", "dark"),
    ("Master Dark", "", "calibration", "dark"),
    ("BIAS", "", "calibration", "bias"), ("Bias Frame", "Darks", "calibration", "bias"),
    ("zero", "", "calibration", "bias"), ("OFFSET", "", "calibration", "bias"),
    ("arc", "", "calibration", "other"), ("COMP", "", "calibration", "other"),
    ("calibration", "", "calibration", "other"),
    # No usable frame type: the folder words, the deepest folder first.
    (None, "Calib/Darks/300s", "calibration", "dark"), ("", "2024/Bias", "calibration", "bias"),
    ("Focus", "Flats/Ha", "calibration", "flat"), (None, "Darks/Flats", "calibration", "flat"),
    (None, "Flats/Darks", "calibration", "dark"),
    # Nothing at all: an observation is a light, anything else is other.
    (None, "M31", "observation", "light"), (None, "", "observation", "light"),
    ("Tricolor Image", "M31", "observation", "light"), (None, "calib", "calibration", "other"),
    (None, "M31", None, "other"),
])  # fmt: skip
def test_frame_class(frame_type, folder, kind, expected):
    assert frame_class(frame_type, folder, kind) == expected


_WORDS = st.sampled_from(["light", "Light Frame", "FLAT", "dark", "Bias", "zero", "arc",
                          "object", "darkflat", "Focus", "", "calib", "offset", "M 31"])
_FOLDERS = st.lists(st.sampled_from(["M31", "Flats", "darks", "BIAS", "calib", "Ha", "x"]),
                    max_size=4).map("/".join)


@given(st.none() | st.text() | _WORDS, st.text() | _FOLDERS,
       st.sampled_from(["observation", "calibration", None]))
def test_frame_class_is_total_and_the_header_wins(frame_type, folder, kind):
    found = frame_class(frame_type, folder, kind)
    assert found in FRAME_CLASSES
    said = frame_kind(frame_type)
    if said == "observation":
        assert found == "light"
    elif said == "calibration":
        assert found != "light"
    elif not any(w in folder.lower() for w in ("bias", "dark", "flat")):
        assert found == ("light" if kind == "observation" else "other")
    else:
        assert found in ("bias", "dark", "flat")


# --- the command, against the sandbox in both generations ---------------------------------

NEW_NIGHT, OLD_NIGHT = "2021-06-02", "2021-06-01"
LATE, EARLY = "2021-06-02T23:00:00", "2021-06-01T22:00:00"
LIGHT_HA = {"DATE-OBS": LATE, "OBJECT": "M 31", "FILTER": "Ha", "EXPTIME": 300,
            "IMAGETYP": "LIGHT"}
TREE = {
    "M31/L_001.fits": LIGHT_HA,
    "M31/L_002.fits": LIGHT_HA,
    "M31/L_003.fits": {"DATE-OBS": LATE, "OBJECT": "M 31", "FILTER": "OIII", "EXPOSURE": 120,
                       "IMAGETYP": "Light Frame"},
    "M31/L_004.fits": {"DATE-OBS": LATE},  # says nothing: unknown, a light by the rules
    # A flat kept beside the lights (ASIAIR): the header's frame type tells.
    "M31/Flat_001.fits": {"DATE-OBS": LATE, "OBJECT": "M 31", "FILTER": "Ha", "EXPTIME": 2,
                          "IMAGETYP": "Flat"},
    "Flats/Ha/F_001.fits": {"DATE-OBS": LATE, "FILTER": "Ha", "EXPTIME": 1.5,
                            "IMAGETYP": "FLAT"},
    "Flats/Ha/F_002.fits": {"DATE-OBS": LATE, "FILTER": "Ha", "EXPTIME": 1.5,
                            "IMAGETYP": "FLAT"},
    "Calib/Darks/D_001.fits": {"DATE-OBS": LATE, "EXPTIME": 300},  # the folder tells
    "Calib/Bias/B_001.fits": {"DATE-OBS": LATE, "EXPTIME": 0.001, "IMAGETYP": "Bias Frame"},
    "Calib/Arc/A_001.fits": {"DATE-OBS": LATE, "EXPTIME": 10, "IMAGETYP": "arc"},
    "NGC7000/a.fits": {"DATE-OBS": EARLY, "OBJECT": "NGC 7000", "FILTER": "L", "EXPTIME": 60},
    "NGC7000/b.fits": {"DATE-OBS": EARLY, "OBJECT": "NGC 7000", "FILTER": "L", "EXPTIME": 60},
    "notes/no_date.fits": {"OBJECT": "M 31", "EXPTIME": 5},  # skipped: never counted
}


def row(frame, target, filter_, frames, exposure, uploaded, waiting=0, without=0):
    return {"frame": frame, "target": target, "filter": filter_, "frames": frames,
            "exposure_s": exposure, "without_exposure": without, "uploaded": uploaded,
            "waiting": waiting}


def counts(part: dict) -> dict:
    return {k: v for k, v in part.items() if k != "datasets"}


def totals(frames, exposure, uploaded, waiting, without=0) -> dict:
    return {"frames": frames, "exposure_s": exposure, "without_exposure": without,
            "uploaded": uploaded, "waiting": waiting}


def observed_night(cli, home, server, tmp_path) -> Path:
    """The TREE uploaded; then one more Ha light refused by the server (failed, waiting)
    and one frame too new to be read (deferred, no night yet)."""
    root = tmp_path / "data"
    for relpath, cards in TREE.items():
        write_frame(root / relpath, cards)
    configure_for(home, server, "2026" if server.dialect == "2026" else "2021", root)
    first = cli("run", "--min-age=0")
    assert first.code == 0, first.err
    write_frame(root / "M31" / "L_005.fits", LIGHT_HA)
    write_frame(root / "M31" / "L_006.fits", LIGHT_HA, settled=False)
    server.faults.upload_refusal = "storage quota reached"
    refused = cli("run", "--min-age=600")
    assert refused.code == 1, refused.err
    server.faults.upload_refusal = ""
    return root


def test_nights_json_totals_are_exact(cli, home, server, tmp_path):
    observed_night(cli, home, server, tmp_path)
    result = cli("nights", "--json")
    assert result.code == 0, result.err
    data = json.loads(result.out)
    assert [n["night"] for n in data["nights"]] == [NEW_NIGHT, OLD_NIGHT]  # newest first
    new, old = data["nights"]
    (dest,) = new["destinations"]
    username = server.seed.username if server.dialect == "2026" else ""
    assert dest["destination"] == {"api": server.url, "account": username, "organisation": ""}
    assert [counts(r) for r in dest["rows"]] == [
        row("light", "M 31", "Ha", 3, 900.0, 2, waiting=1),
        row("light", "M 31", "OIII", 1, 120.0, 1),
        row("light", None, None, 1, 0.0, 1, without=1),
        row("flat", "M 31", "Ha", 1, 2.0, 1),
        row("flat", None, "Ha", 2, 3.0, 2),
        row("dark", None, None, 1, 300.0, 1),
        row("bias", None, None, 1, 0.001, 1),
        row("other", None, None, 1, 10.0, 1),
    ]
    assert dest["totals"] == new["totals"] == totals(11, 1335.001, 10, 1, without=1)
    assert [counts(r) for r in old["destinations"][0]["rows"]] == [
        row("light", "NGC 7000", "L", 2, 120.0, 2)]
    assert data["totals"] == totals(13, 1455.001, 12, 1, without=1)
    assert data["waiting_undated"] == {"deferred": 1}  # L_006: too new, not read yet
    # Each row links to its datasets on the server (the sandbox's page).
    uuids = {d["name"]: d["uuid"] for d in server.objects("datasets")}
    assert dest["rows"][0]["datasets"] == [
        {"name": "M31", "link": f"{server.url}/#dataset-{uuids['M31']}"}]
    assert dest["rows"][4]["datasets"] == [
        {"name": "Flats/Ha", "link": f"{server.url}/#dataset-{uuids['Flats/Ha']}"}]


def test_nights_text_since_and_report(cli, home, server, tmp_path):
    observed_night(cli, home, server, tmp_path)
    text = cli("nights")
    assert text.code == 0, text.err
    lines = text.out.splitlines()
    assert lines[0] == f"Night {NEW_NIGHT}: 11 frames, 22 min 15 s (+1 unknown), " \
                       "10 uploaded, 1 waiting"
    header = next(line for line in lines if line.strip().startswith("frame"))
    assert header.split() == ["frame", "target", "filter", "frames", "exposure", "uploaded",
                              "waiting"]
    assert any(line.split() == ["light", "M", "31", "Ha", "3", "15", "min", "2", "1"]
               for line in lines), lines  # 900 s: 15 min; 2 uploaded, 1 waiting
    assert any(line.split() == ["light", "unknown", "unknown", "1", "unknown", "1", "0"]
               for line in lines), lines
    assert f"Night {OLD_NIGHT}: 2 frames, 2 min, 2 uploaded" in lines
    assert any(line.strip().startswith("dataset M31: http") for line in lines)
    assert lines[-1].startswith("Also waiting, their night known once their header is read")
    assert lines[-1].endswith(": 1 deferred.")

    since = json.loads(cli("nights", "--json", f"--since={NEW_NIGHT}").out)
    assert [n["night"] for n in since["nights"]] == [NEW_NIGHT]
    assert since["since"] == NEW_NIGHT and since["totals"]["frames"] == 11
    later = cli("nights", "--since=2030-01-01")
    assert later.code == 0 and later.out.splitlines()[0] == "No night since 2030-01-01 " \
                                                            "in the manifest."
    bad = cli("nights", "--since=yesterday")
    assert bad.code == 2 and "--since=yesterday" in bad.err and "YYYY-MM-DD" in bad.err
    assert bad.out == ""

    page = cli("report", "--output=-")
    assert page.code == 0, page.err
    assert "<h2>Frames per night</h2>" in page.out
    assert f"Night {NEW_NIGHT} <span class=\"muted\">11 frames" in page.out
    assert "<td>M 31</td><td>OIII</td>" in page.out


def test_nothing_yet(cli, home):
    result = cli("nights")
    assert result.code == 0 and result.out.startswith("No night in the manifest yet")
    data = json.loads(cli("nights", "--json").out)
    assert data["nights"] == [] and data["totals"]["frames"] == 0


def test_a_manifest_made_before_0009_keeps_working(cli, home, server, tmp_path):
    """Rows read before the facts were kept count as unknown; nothing is sent again."""
    root = tmp_path / "data"
    write_frame(root / "M31" / "a.fits", LIGHT_HA)
    write_frame(root / "M31" / "b.fits", LIGHT_HA)
    configure_for(home, server, "2026" if server.dialect == "2026" else "2021", root)
    assert cli("run", "--min-age=0").code == 0
    # The manifest as an oort-sync before 0009 left it: no such columns, no such migration.
    with mf.Manifest(home.manifest_file) as manifest, manifest.transaction() as conn:
        conn.execute("DELETE FROM migrations WHERE name = '0009_frame_facts'")
        for column in FRAME_FACTS:
            conn.execute(f"ALTER TABLE files DROP COLUMN {column}")
    # Read-only, as `nights` opens it: migrated in memory, the file left as it is.
    data = json.loads(cli("nights", "--json").out)
    (only,) = data["nights"][0]["destinations"][0]["rows"]
    assert counts(only) == row("light", None, None, 2, 0.0, 2, without=2)
    with sqlite3.connect(home.manifest_file) as file:
        assert ("0009_frame_facts",) not in file.execute("SELECT name FROM migrations")
    server.clear_requests()
    write_frame(root / "M31" / "c.fits", LIGHT_HA)
    assert cli("run", "--min-age=0").code == 0
    uploads = [r for r in server.requests if r[0] in ("POST", "PUT") and "datafiles" in r[1]]
    assert len(uploads) == 1  # c.fits only: the migrated rows are still uploaded
    rows = json.loads(cli("nights", "--json").out)["nights"][0]["destinations"][0]["rows"]
    assert [counts(r) for r in rows] == [row("light", "M 31", "Ha", 1, 300.0, 1),
                                         row("light", None, None, 2, 0.0, 2, without=2)]
    with mf.Manifest(home.manifest_file) as migrated:
        assert "0009_frame_facts" in migrated.applied_migrations()
