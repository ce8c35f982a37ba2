"""Nights that today's Arcsecond agrees with (issue 20, part 1): for a 2026 folder the dry
run, `explain`, `watch`, `telescopes` and the manifest (so the report) show the nights the
server files the files under, and the sandbox, which shares the rule, files them there.

Capture-style trees (N.I.N.A. writes DATE-OBS in UTC) in several zones, around local
noon and midnight, on telescopes with a site (a longitude, a time zone) and without."""

from __future__ import annotations

import io
import json
from datetime import date, datetime, time, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

from fitsfiles import write_tree

from oort_lib.samples import make_sample_tree
from oort_lib.sandbox import Sandbox
from oort_lib.state import config as cfg
from oort_lib.state import manifest as mf

UTC = timezone.utc
KEY = "5a4db0c5e7e57ca11ab1e0000000c0de"
NIGHT = date(2026, 3, 4)
FAST = {"retries": 3, "backoff_base": 0.01, "backoff_max": 0.2, "retry_delay": 0}

# Local wall times of one night's capture: (relpath, days after NIGHT, hour, minute).
CAPTURE = (
    ("M42/Light_001.fits", 0, 20, 30),
    ("M42/Light_002.fits", 0, 23, 55),
    ("M42/Light_003.fits", 1, 0, 5),
    ("M42/Light_004.fits", 1, 4, 30),
    ("Flats/Flat_001.fits", 0, 11, 50),  # either side of local noon
    ("Flats/Flat_002.fits", 0, 12, 10),
    ("Darks/Dark_001.fits", 1, 11, 55),
)


def capture(root: Path, zone: str, night: date = NIGHT, frames=CAPTURE) -> Path:
    """A night of frames taken in `zone`, DATE-OBS in UTC (every other one with a Z)."""
    headers = {}
    for number, (relpath, days, hour, minute) in enumerate(frames):
        wall = datetime.combine(night + timedelta(days=days), time(hour, minute),
                                ZoneInfo(zone))
        utc = wall.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="seconds")
        headers[relpath] = {"DATE-OBS": utc + ("Z" if number % 2 else ""),
                            "OBJECT": relpath.partition("/")[0]}
    write_tree(root, headers, shape=(8, 8), settled=False)
    return root


def login(cli, monkeypatch, url):
    monkeypatch.setattr("sys.stdin", io.StringIO(KEY + "\n"))
    result = cli("login", f"--api={url}", "--username=astro", "--key-stdin")
    assert result.code == 0, result.err


def watch(cli, root: Path, *options: str):
    result = cli("watch", root, *options, "-y")
    assert result.code == 0, result.err
    return result


def planned(cli) -> dict:
    result = cli("run", "--dry-run", "--json", "--min-age=0")
    assert result.code == 0, result.err
    return json.loads(result.out)


def shown(plan: dict) -> set[tuple[str, str, str]]:
    """(telescope, night, dataset) of every dataset the dry run shows."""
    return {(log["telescope"], log["night"], entry["dataset"])
            for log in plan["night_logs"]
            for kind in ("observations", "calibrations") for entry in log[kind]}


def filed(sandbox: Sandbox) -> set[tuple[str, str, str]]:
    """(telescope, night, dataset) of every dataset as the sandbox filed it."""
    logs = {n["uuid"]: n for n in sandbox.objects("nightlogs")}
    parents = {p["uuid"]: p for kind in ("observations", "calibrations")
               for p in sandbox.objects(kind)}
    result = set()
    for dataset in sandbox.objects("datasets"):
        parent = parents[dataset["observation"] or dataset["calibration"]]
        log = logs[parent["night_log"]]
        assert log["telescope"] == dataset["telescope"]
        result.add((dataset["telescope"], log["date"], dataset["name"]))
    return result


def by_dataset(plan: dict, telescope: str) -> dict[str, dict]:
    return {entry["dataset"]: dict(entry, night=log["night"], night_by=log.get("night_by"))
            for log in plan["night_logs"] if log["telescope"] == telescope
            for kind in ("observations", "calibrations") for entry in log[kind]}


def test_the_dry_run_shows_the_nights_the_server_files_under(cli, home, sb26, tmp_path,
                                                              monkeypatch):
    seed = sb26.seed
    sydney = capture(tmp_path / "sydney", "Australia/Sydney")
    chile = capture(tmp_path / "chile", "America/Santiago")
    hawaii = capture(tmp_path / "hawaii", "Pacific/Honolulu")
    paris = capture(tmp_path / "paris", "Europe/Paris")
    berlin = capture(tmp_path / "berlin", "Europe/Berlin")
    samples = make_sample_tree(tmp_path / "samples")
    login(cli, monkeypatch, sb26.url)
    # The issue's folder: --timezone set, on a telescope with no site on Arcsecond.
    watch(cli, sydney, "-t", seed.personal_telescope_uuid, "--timezone=Australia/Sydney")
    watch(cli, chile, "-o", seed.organisation, "-t", seed.telescope_uuid,
          "--timezone=America/Santiago")
    watch(cli, hawaii, "-t", seed.zoned_telescope_uuid)
    watch(cli, paris, "-o", seed.local_organisation, "-t", seed.local_telescope_uuid,
          "--timezone=Europe/Paris")
    watch(cli, berlin, "-o", seed.organisation, "-t", seed.spectro_telescope_uuid,
          "--timezone=Europe/Berlin")
    watch(cli, samples, "-o", seed.organisation, "-t", seed.telescope_uuid)
    assert cfg.load_settings(home).folders[2].site_timezone == "Pacific/Honolulu"
    plan = planned(cli)

    mine = by_dataset(plan, seed.personal_telescope_uuid)
    # 20:30 in Sydney is 09:30 UTC: by the header clock the night of the 3rd, and the
    # rest of the night with it, where the folder's zone said the 4th.
    assert mine["M42"]["night"] == "2026-03-03"
    assert mine["M42"]["file_nights"] == ["2026-03-03", "2026-03-04"]
    assert mine["M42"]["night_by"] == ("night by the header clock: the telescope has no "
                                       "site on Arcsecond")
    zoned = by_dataset(plan, seed.zoned_telescope_uuid)
    assert zoned["Flats"]["night"] == "2026-03-03"
    assert zoned["Flats"]["file_nights"] == ["2026-03-03", "2026-03-04"]  # Honolulu noon
    assert zoned["M42"]["night_by"] == "night by the telescope's site, time zone Pacific/Honolulu"
    rt1 = by_dataset(plan, seed.telescope_uuid)
    assert rt1["Flats"]["night"] == "2026-03-03" and "file_nights" not in rt1["Flats"]
    # Two folders, one dataset on the server: filed under the earliest night of both.
    assert rt1["M42"]["night"] == "2020-10-02"
    assert rt1["NGC3603/Halpha"]["file_nights"] == ["2020-09-08", "2020-09-09"]
    dob = by_dataset(plan, seed.local_telescope_uuid)
    assert dob["M42"]["file_nights"] == ["2026-03-04", "2026-03-05"]  # 135° E, not Paris
    text = "\n".join(plan["notes"])
    assert "--timezone=Australia/Sydney does not reach a 2026 server" in text
    assert "Europe/Paris and the site disagree by 8 h, and the server uses the site" in text
    assert f"telescope {seed.spectro_telescope_name} has no site on Arcsecond" in text

    result = cli("run", "--min-age=0")
    assert result.code == 0, result.err
    assert shown(plan) == filed(sb26)
    # The manifest (what the report and status read) shows the same nights.
    with mf.Manifest(home.manifest_file, readonly=True) as manifest:
        recorded = {(r["telescope"], r["night"], r["dataset"]) for r in manifest.rows(
            "SELECT telescope, night, dataset FROM files WHERE status = 'uploaded'")}
    assert recorded == filed(sb26)
    # A second dry run has nothing left to show.
    assert planned(cli)["night_logs"] == []


def test_the_issues_sydney_folder(cli, home, sb26, tmp_path, monkeypatch):
    """Watched with --timezone=Australia/Sydney on a telescope with no site: shown on the
    4th and split over two nights, filed by the server under the 3rd, whole."""
    root = capture(tmp_path / "sydney", "Australia/Sydney", frames=CAPTURE[:4])
    login(cli, monkeypatch, sb26.url)
    watch(cli, root, "-t", sb26.seed.personal_telescope_uuid, "--timezone=Australia/Sydney")
    plan = planned(cli)
    assert cli("run", "--min-age=0").code == 0
    assert shown(plan) == filed(sb26) == {
        (sb26.seed.personal_telescope_uuid, "2026-03-03", "M42")}


def test_an_earlier_file_moves_its_dataset_and_the_prediction_follows(
        cli, home, sb26, tmp_path, monkeypatch):
    seed = sb26.seed
    root = capture(tmp_path / "chile", "America/Santiago", frames=CAPTURE[:4])
    login(cli, monkeypatch, sb26.url)
    watch(cli, root, "-o", seed.organisation, "-t", seed.telescope_uuid)
    assert cli("run", "--min-age=0").code == 0
    assert filed(sb26) == {(seed.telescope_uuid, "2026-03-04", "M42")}
    # Frames of the night before, copied in later: the whole dataset moves there.
    capture(root, "America/Santiago", NIGHT - timedelta(days=1),
            [("M42/Early_001.fits", 0, 22, 0)])
    plan = planned(cli)
    assert shown(plan) == {(seed.telescope_uuid, "2026-03-03", "M42")}
    [entry] = plan["night_logs"][0]["observations"]
    assert entry["file_nights"] == ["2026-03-03", "2026-03-04"] and entry["files"] == 1
    lines = cli("run", "--dry-run", "--min-age=0").out
    assert "its files span nights 2026-03-03, 2026-03-04: the server files it under " \
           "2026-03-03" in lines  # fmt: skip
    assert cli("run", "--min-age=0").code == 0
    assert filed(sb26) == {(seed.telescope_uuid, "2026-03-03", "M42")}
    assert [n["date"] for n in sb26.objects("nightlogs")] == ["2026-03-03"]
    with mf.Manifest(home.manifest_file, readonly=True) as manifest:
        assert {r["night"] for r in manifest.rows("SELECT night FROM files")} == {"2026-03-03"}
    # A later night's frame joins the dataset where it is.
    capture(root, "America/Santiago", NIGHT + timedelta(days=3), [("M42/Late.fits", 0, 22, 0)])
    assert shown(planned(cli)) == {(seed.telescope_uuid, "2026-03-03", "M42")}
    assert cli("run", "--min-age=0").code == 0
    assert filed(sb26) == {(seed.telescope_uuid, "2026-03-03", "M42")}


def test_watch_and_telescopes_say_what_the_server_dates_nights_by(cli, home, sb26, tmp_path,
                                                                  monkeypatch):
    seed = sb26.seed
    login(cli, monkeypatch, sb26.url)
    sydney = watch(cli, capture(tmp_path / "sydney", "Australia/Sydney"), "-t",
                   seed.personal_telescope_uuid, "--timezone=Australia/Sydney").out
    assert ("Nights: dated by the server from the header clock (the telescope has no site "
            "on Arcsecond)") in sydney
    assert (f"Warning: telescope {seed.personal_telescope_name} has no site on Arcsecond: "
            "set its site on Arcsecond, or nights follow the header clock.") in sydney
    assert "Warning: --timezone=Australia/Sydney does not reach a 2026 server" in sydney
    assert "Night boundary" not in sydney and "converted to Australia/Sydney" not in sydney
    paris = watch(cli, capture(tmp_path / "paris", "Europe/Paris"), "-o",
                  seed.local_organisation, "-t", seed.local_telescope_uuid,
                  "--timezone=Europe/Paris").out
    assert "Nights: dated by the server from the telescope's site (longitude 135.00°)" in paris
    assert "disagree by 8 h, and the server uses the site" in paris
    hawaii = watch(cli, capture(tmp_path / "hawaii", "Pacific/Honolulu"), "-t",
                   seed.zoned_telescope_uuid).out
    assert "from the telescope's site (time zone Pacific/Honolulu)" in hawaii
    assert "Warning" not in hawaii

    listing = cli("telescopes", "-o", seed.organisation)
    assert listing.code == 0, listing.err
    lines = listing.out.splitlines()
    rt1 = next(i for i, line in enumerate(lines) if seed.telescope_uuid in line)
    assert lines[rt1 + 1].strip() == "site: longitude -70.74° (the server dates nights by it)"
    spectro = next(i for i, line in enumerate(lines) if seed.spectro_telescope_uuid in line)
    assert lines[spectro + 1].strip() == ("no site on Arcsecond: set its site on Arcsecond, "
                                          "or nights follow the header clock")
    local = cli("telescopes", "-o", seed.local_organisation).out
    assert f"watched folder {tmp_path / 'paris'}: --timezone=Europe/Paris does not reach" \
           in local and "the server uses the site" in local  # fmt: skip
    personal = cli("telescopes").out
    assert "site: time zone Pacific/Honolulu" in personal


def test_explain_names_what_dates_the_night(cli, home, sb26, tmp_path, monkeypatch):
    seed = sb26.seed
    sydney = capture(tmp_path / "sydney", "Australia/Sydney")
    chile = capture(tmp_path / "chile", "America/Santiago")
    login(cli, monkeypatch, sb26.url)
    watch(cli, sydney, "-t", seed.personal_telescope_uuid, "--timezone=Australia/Sydney")
    watch(cli, chile, "-o", seed.organisation, "-t", seed.telescope_uuid)
    [late] = json.loads(cli("explain", sydney / "M42/Light_003.fits", "--json").out)
    assert (late["night"], late["filed_under"]) == ("2026-03-04", "2026-03-04")
    assert late["night_by"] == "night by the header clock: the telescope has no site on Arcsecond"
    assert late["local_time_source"] == "header clock" and late["utc"] is None
    assert any("does not reach a 2026 server" in note for note in late["notes"])
    assert any("has no site on Arcsecond" in note for note in late["notes"])
    [flat] = json.loads(cli("explain", chile / "Flats/Flat_002.fits", "--json").out)
    assert flat["night"] == "2026-03-03"  # 12:10 in Santiago, 10:27 at 70.74° W
    assert flat["night_by"] == "night by the telescope's site at longitude -70.74°"
    assert flat["utc"] == "2026-03-04T15:10:00"
    assert not any("has no site" in note for note in flat["notes"])
    assert cli("run", "--min-age=0").code == 0
    # Once uploaded, the dataset is known to be filed under the night of its first frame.
    out = cli("explain", sydney / "M42/Light_003.fits").out
    assert ("night:       2026-03-04 (night by the header clock: the telescope has no site "
            "on Arcsecond; nights run from local noon to local noon)") in out
    assert "night log:   2026-03-03 (a 2026 server files a dataset whole under the " \
           "earliest night of its files)" in out  # fmt: skip


def test_a_run_that_finds_the_generation_dates_nights_for_it(cli, home, sb26, tmp_path,
                                                             monkeypatch):
    """A key from the environment, no login: planning cannot know the generation; the
    run finds 2026 and records the nights that server gives."""
    from helpers import configure

    seed = sb26.seed
    root = capture(tmp_path / "sydney", "Australia/Sydney")
    configure(home, sb26.url, KEY, username="astro", generation=None,
              folders=[cfg.Folder(str(root), telescope=seed.personal_telescope_uuid,
                                  timezone="Australia/Sydney")])
    # Unknown generation: the dry run shows the client's own rules (the folder's zone).
    assert {n for _t, n, _d in shown(planned(cli))} == {"2026-03-03", "2026-03-04"}
    assert cli("run", "--min-age=0").code == 0
    with mf.Manifest(home.manifest_file, readonly=True) as manifest:
        recorded = {(r["telescope"], r["night"], r["dataset"]) for r in manifest.rows(
            "SELECT telescope, night, dataset FROM files WHERE status = 'uploaded'")}
    assert recorded == filed(sb26)
    assert (seed.personal_telescope_uuid, "2026-03-03", "M42") in recorded


def test_2021_nights_still_follow_the_folders_rules(cli, home, tmp_path, monkeypatch):
    with Sandbox(tmp_path / "sb21", page_size=2, dialect="2021") as sb21:
        sb21.start()
        root = capture(tmp_path / "sydney", "Australia/Sydney")
        login(cli, monkeypatch, sb21.url)
        watch(cli, root, "--timezone=Australia/Sydney")
        cfg.save_settings(home, cfg.load_settings(home)._replace(**FAST))
        plan = planned(cli)
        assert all("night_by" not in log for log in plan["night_logs"])
        assert {(log["night"], entry["dataset"]) for log in plan["night_logs"]
                for kind in ("observations", "calibrations") for entry in log[kind]} == {
            ("2026-03-04", "M42"), ("2026-03-03", "Flats"), ("2026-03-04", "Flats"),
            ("2026-03-04", "Darks")}
        assert not any("2026 server" in note for note in plan["notes"])
        assert cli("run", "--min-age=0").code == 0
        assert sorted(n["date"] for n in sb21.objects("nightlogs")) == [
            "2026-03-03", "2026-03-04"]
