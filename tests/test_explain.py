"""`oort-sync explain`, `watch --classify`, and the dry run listing what dated each file."""

from __future__ import annotations

import json
import os

from oort_lib import folders as fo
from oort_lib.samples import write_fits
from oort_lib.state import config as cfg
from oort_lib.views.explain import explain, explain_lines, watched_folder


def nina_frame(path, **extra):
    return write_fits(path, {"IMAGETYP": "LIGHT", "DATE-OBS": "2021-03-04T12:30:00.456",
                             "DATE-LOC": "2021-03-04T23:30:00.456", "SITELONG": 151.2093,
                             "OBJECT": "NGC 3372", **extra})  # fmt: skip


def watch(home, *folders: cfg.Folder) -> cfg.Settings:
    settings = cfg.Settings(folders=folders)
    cfg.save_settings(home, settings)
    return settings


def test_explain_text_offline(cli, home, tmp_path):
    root = tmp_path / "data"
    path = nina_frame(root / "NGC3372/Ha/a.fits")
    watch(home, cfg.Folder(str(root), organisation="robotland", telescope="uuid-1",
                           telescope_name="RT1", timezone="Australia/Sydney"))  # fmt: skip
    result = cli("explain", path)
    assert result.code == 0, result.err
    lines = result.out.splitlines()
    assert lines[0] == str(path)
    text = result.out
    assert "  date:        DATE-OBS in HDU 0 = '2021-03-04T12:30:00.456'" in lines
    assert "  UTC:         2021-03-04T12:30:00.456000" in lines
    assert ("  local time:  2021-03-04T23:30:00.456000, from time zone Australia/Sydney "
            "(folder setting)") in lines  # fmt: skip
    assert "  night:       2021-03-04 (nights run from local noon to local noon)" in lines
    assert "  type:        observation (no folder name contains bias, dark, flat or calib)" \
        in lines  # fmt: skip
    assert "  dataset:     NGC3372/Ha" in lines
    assert "  target:      NGC 3372 (from OBJECT in HDU 0)" in lines
    assert "-> robotland, telescope RT1" in text and "https://api.arcsecond.io" in text
    assert "  manifest:    not seen by a run yet" in lines
    assert "note" not in text


def test_explain_json_says_the_assumption_and_suggests_timezone(cli, home, tmp_path):
    root = tmp_path / "data"
    path = write_fits(root / "Flats/f.fits", {"DATE-OBS": "2021-03-04T11:00:00",
                                              "IMAGETYP": "Flat Field"})  # fmt: skip
    watch(home, cfg.Folder(str(root)))
    result = cli("explain", path, "--json")
    (data,) = json.loads(result.out)
    assert data["skipped"] is None
    assert data["header"]["date_keyword"] == "DATE-OBS"
    assert data["utc"] is None  # unknown: the header time is taken as local
    assert data["local_time_source"] == "assumed local"
    assert data["night"] == "2021-03-03"
    assert data["kind"] == "calibration" and "contains 'flat'" in data["kind_reason"]
    assert data["target"] is None
    assert len(data["notes"]) == 1 and "--timezone" in data["notes"][0]


def test_explain_skips_with_reasons(cli, home, tmp_path):
    root = tmp_path / "data"
    (root / "x").mkdir(parents=True)
    (root / "x/notes.txt").write_text("hello")
    (root / "x/empty.fits").write_bytes(b"")
    (root / "x/broken.fits").write_bytes(b"garbage" * 100)
    nodate = write_fits(root / "x/nodate.fits", {"OBJECT": "M1"})
    bad_year = write_fits(root / "x/zero.fits", {"DATE-OBS": "0001-01-01T00:00:00"})
    watch(home, cfg.Folder(str(root), timezone="Asia/Tokyo"))
    names = ["notes.txt", "empty.fits", "broken.fits", "missing.fits"]
    result = cli("explain", *(root / "x" / n for n in names), nodate, bad_year, "--json")
    assert result.code == 0
    reasons = [d["skipped"] for d in json.loads(result.out)]
    assert reasons[:4] == ["not FITS or XISF", "empty file",
                           "truncated or corrupt FITS header (no SIMPLE card: not a FITS file)",
                           "no such file"]  # fmt: skip
    assert reasons[4].startswith("no date found (no DATE-OBS")
    assert reasons[5] == ("no date found (DATE-OBS '0001-01-01T00:00:00' has a year "
                          "outside 1900-2100)")  # fmt: skip
    text = cli("explain", bad_year).out
    assert "skipped:     no date found" in text


def test_explain_shows_the_manifest_state_after_a_dry_run_and_a_run(cli, logged_in, tmp_path):
    root = tmp_path / "data"
    path = nina_frame(root / "NGC3372/a.fits")
    os.utime(path, (1e9, 1e9))
    logged_in(cfg.Folder(str(root)))
    assert cli("run", "--min-age=0").code == 0
    data = json.loads(cli("explain", path, "--json").out)[0]
    assert data["manifest"]["status"] == "uploaded"
    assert data["manifest"]["night"] == data["night"] == "2021-03-04"
    assert data["manifest"]["time_source"] == data["local_time_source"] == "DATE-LOC"


def test_explain_outside_watched_folders(cli, tmp_path):
    path = nina_frame(tmp_path / "loose.fits")
    data = json.loads(cli("explain", path, "--json").out)[0]
    assert data["watched_folder"] is None and data["manifest"] is None
    assert "not inside a watched folder" in data["notes"][0]
    assert data["night"] == "2021-03-04"  # DATE-LOC still places it


def test_explain_library_without_a_manifest(tmp_path):
    path = nina_frame(tmp_path / "d/a.fits")
    settings = cfg.Settings(folders=(cfg.Folder(str(tmp_path / "d"), classify="header"),))
    data = explain(str(path), settings)
    assert data["manifest"] is None and data["kind_reason"] == "header: IMAGETYP = 'LIGHT'"
    assert explain_lines(data)[0] == str(path)
    assert watched_folder(str(tmp_path / "dd/a.fits"), settings.folders) is None


def test_watch_classify_header_is_saved_and_summarised(cli, home, tmp_path):
    (tmp_path / "asiair").mkdir()
    result = cli("watch", tmp_path / "asiair", "--classify=header", "-y")
    assert result.code == 0, result.err
    assert "Calibrations: by the header's IMAGETYP/FRAME/OBSTYPE, else by folder name" \
        in result.out  # fmt: skip
    assert "add --timezone=ZONE" in result.out
    (folder,) = cfg.load_settings(home).folders
    assert folder.classify == "header"
    assert "classify = header" in home.config_file.read_text()


def test_watch_refuses_another_classify(cli, tmp_path):
    (tmp_path / "a").mkdir()
    result = cli("watch", tmp_path / "a", "--classify=guess", "-y")
    assert result.code != 0 and "--classify=guess: use folder or header" in result.err


def test_config_classify_default_and_validation(home, tmp_path):
    settings = cfg.Settings(folders=(cfg.Folder(str(tmp_path)),))
    cfg.save_settings(home, settings)
    assert "classify =" not in home.config_file.read_text()
    assert cfg.load_settings(home).folders[0].classify == "folder"
    home.config_file.write_text(f"[folder 1]\npath = {tmp_path}\nclassify = Header\n")
    assert cfg.load_settings(home).folders[0].classify == "header"
    home.config_file.write_text(f"[folder 1]\npath = {tmp_path}\nclassify = exif\n")
    try:
        cfg.load_settings(home)
    except cfg.ConfigError as exc:
        assert "line 3" in exc.message and "must be folder or header" in exc.message
    else:
        raise AssertionError("classify = exif was accepted")


def test_propose_summary_lines(tmp_path):
    proposal = fo.propose(cfg.Settings(), None, [str(tmp_path)], timezone="Asia/Tokyo")
    lines = proposal.summary()
    assert "Night boundary: local noon, header dates in UTC converted to Asia/Tokyo" in lines
    assert "Calibrations: by folder name (bias, dark, flat, calib)" in lines
    assert proposal.folders[0].classify == "folder"


def test_dry_run_verbose_lists_files_with_what_dated_them(cli, home, tmp_path):
    root = tmp_path / "data"
    nina_frame(root / "NGC3372/a.fits")
    write_fits(root / "M1/b.fits", {"MJD-OBS": 59278.125})
    for path in root.rglob("*.fits"):
        os.utime(path, (1e9, 1e9))
    watch(home, cfg.Folder(str(root)))
    out = cli("run", "--dry-run", "-v").out
    assert "      NGC3372/a.fits  (dated by DATE-OBS in HDU 0, local time from DATE-LOC)" in out
    assert "      M1/b.fits  (dated by MJD-OBS in HDU 0, local time from assumed local)" in out
    assert "Note: 1 file without a time zone, DATE-LOC or site longitude" in out
    assert "dated by" not in cli("run", "--dry-run").out
    data = json.loads(cli("run", "--dry-run", "--json").out)
    entries = [e for log in data["night_logs"] for e in log["observations"]]
    assert sorted(s for e in entries for s in e["dated_by"]) == [
        "DATE-OBS in HDU 0", "MJD-OBS in HDU 0"]


def test_status_says_once_when_times_were_taken_as_local(cli, logged_in, tmp_path):
    root = tmp_path / "data"
    for name in ("a", "b"):
        path = write_fits(root / f"M1/{name}.fits", {"DATE-OBS": "2021-03-04T21:00:00"})
        os.utime(path, (1e9, 1e9))
    logged_in(cfg.Folder(str(root)))
    assert cli("run", "--min-age=0").code == 0
    assert json.loads(cli("status", "--json").out)["folders"][0]["assumed_local_time"] == 2
    out = cli("status").out
    assert out.count("--timezone=ZONE") == 1 and "2 files dated with header times" in out
