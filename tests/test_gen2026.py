"""Today's Arcsecond (the 2026 generation), end to end: login, watch, run, against a
sandbox that speaks it over real HTTP, with small pages so page walking is exercised."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import pytest

from oort_lib.local import rules
from oort_lib.samples import SAMPLE_FILES, make_sample_tree, write_fits
from oort_lib.sandbox import Sandbox
from oort_lib.state import config as cfg

pytestmark = pytest.mark.sandbox(page_size=1)  # every list paged, item by item
FAST = {"retries": 3, "backoff_base": 0.01, "backoff_max": 0.2, "retry_delay": 0}
CHAIN = ("nightlogs", "observations", "calibrations")


def login(cli, monkeypatch, api, username="astro", key="5a4db0c5e7e57ca11ab1e0000000c0de",
          *extra):
    monkeypatch.setattr("sys.stdin", io.StringIO(key + "\n"))
    return cli("login", f"--api={api}", f"--username={username}", "--key-stdin", *extra)


def fast(home):
    cfg.save_settings(home, cfg.load_settings(home)._replace(**FAST))


def expected_datasets(root: Path) -> dict[str, set[str]]:
    """dataset name -> basenames, by the Oort rules, for the FITS/XISF sample files."""
    names: dict[str, set[str]] = {}
    for sample in SAMPLE_FILES:
        if (root / sample.relpath).exists() and sample.date is not None:
            _kind, dataset = rules.classify(sample.relpath, root.name)
            names.setdefault(dataset, set()).add(Path(sample.relpath).name)
    return names


def server_datasets(sb, organisation=None) -> dict[str, tuple[str, list[str]]]:
    """dataset name -> (telescope, sorted basenames) as the server holds them."""
    found = {}
    for dataset in sb.objects("datasets"):
        if dataset["organisation"] != organisation:
            continue
        files = sorted(f["filename"] for f in sb.datafiles(dataset["uuid"]))
        assert dataset["name"] not in found, "a dataset was created twice"
        found[dataset["name"]] = (dataset["telescope"], files)
    return found


def client_writes(sb, kinds=CHAIN):
    return [r for r in sb.requests if r[0] in ("POST", "PATCH", "PUT")
            and any(f"/{k}/" in r[1] for k in kinds)]


def test_personal_and_organisation_folders_each_file_once(cli, home, sb26, tmp_path,
                                                          monkeypatch):
    seed = sb26.seed
    personal = make_sample_tree(tmp_path / "personal")
    org = make_sample_tree(tmp_path / "observatory")
    result = login(cli, monkeypatch, sb26.url)
    assert result.code == 0, result.err
    assert "API generation 2026" in result.out and seed.upload_key not in result.out
    creds = json.loads(home.credentials_file.read_text())
    assert (creds["generation"], creds["username"], creds["api"]) == ("2026", "astro", sb26.url)
    fast(home)
    assert cli("watch", personal, "-t", seed.personal_telescope_uuid, "-y").code == 0
    watched = cli("watch", org, "-o", seed.organisation, "-t", seed.telescope_uuid,
                  "--tags=night 1,flat", "-y")
    assert watched.code == 0, watched.err
    assert "may upload" in watched.out and "Tags: night 1, flat" in watched.out

    run = cli("run", "--min-age=0")
    assert run.code == 0, run.err
    for root, organisation, telescope in ((personal, None, seed.personal_telescope_uuid),
                                          (org, seed.organisation, seed.telescope_uuid)):
        wanted = {name: (telescope, sorted(files))
                  for name, files in expected_datasets(root).items()}
        assert server_datasets(sb26, organisation) == wanted
    assert client_writes(sb26) == []  # the server builds night logs, not us
    assert not [r for r in sb26.requests if "/datasets/" in r[1] and "datafiles" in r[1]]
    files = sb26.datafiles()
    assert all(f["is_raw"] is True for f in files)
    org_files = [f for f in files if f["organisation"] == seed.organisation]
    assert org_files and all(f["tags"] == ["night 1", "flat"] for f in org_files)
    assert all(f["tags"] == [] for f in files if f["organisation"] is None)
    # One POST per file, dataset lookups amortised (issue 15's 1.02 bar, small scale).
    posts = [r for r in sb26.requests if r[0] == "POST" and r[1].endswith("/datafiles/")]
    assert len(posts) == len(files)
    # The server placed the files in night logs itself (the sandbox's own rules).
    assert sb26.objects("nightlogs")

    sb26.clear_requests()
    again = cli("run", "--min-age=0")
    assert again.code == 0 and again.out == "" and again.err == ""
    assert sb26.requests == []


def test_arcsecond_local_base_path_and_local_organisation(cli, home, sb26, tmp_path,
                                                          monkeypatch):
    seed = sb26.seed
    root = make_sample_tree(tmp_path / "night")
    sb26.faults.next_links = "no-prefix"  # a proxy that drops /api from `next` links
    assert login(cli, monkeypatch, sb26.url + "/api").code == 0
    fast(home)
    watched = cli("watch", root, "-o", "local", "-t", seed.local_telescope_uuid, "-y")
    assert watched.code == 0, watched.err
    assert cli("run", "--min-age=0").code == 0
    wanted = {n: (seed.local_telescope_uuid, sorted(f))
              for n, f in expected_datasets(root).items()}
    assert server_datasets(sb26, "local") == wanted
    paths = [p for _m, p, _s in sb26.requests]
    assert paths and all(p.startswith("/api/") for p in paths)


def test_both_dialects_detection_picks_2026(cli, home, tmp_path, monkeypatch):
    root = make_sample_tree(tmp_path / "night")
    with Sandbox(tmp_path / "both", page_size=2, dialect="both") as sb:
        sb.start()
        assert "API generation 2026" in login(cli, monkeypatch, sb.url).out
        assert cli("watch", root, "-t", sb.seed.personal_telescope_uuid, "-y").code == 0
        assert cli("run", "--min-age=0").code == 0
        assert client_writes(sb) == []
        assert len(sb.datafiles()) == sum(len(f) for f in expected_datasets(root).values())


def test_login_refused_writes_nothing_and_names_the_settings_page(cli, home, sb26,
                                                                 monkeypatch):
    bad = login(cli, monkeypatch, sb26.url, "astro", "0" * 32)
    assert bad.code == 3 and "settings page" in bad.err and "0" * 32 not in bad.err
    assert not home.credentials_file.exists()
    wrong_user = login(cli, monkeypatch, sb26.url, "comet")
    assert wrong_user.code == 3 and not home.credentials_file.exists()
    monkeypatch.setattr("sys.stdin", io.StringIO(sb26.seed.upload_key + "\n"))
    no_user = cli("login", f"--api={sb26.url}", "--key-stdin")
    assert no_user.code == 2 and "--username" in no_user.err
    monkeypatch.setattr("sys.stdin", io.StringIO("pw\n"))
    password = cli("login", f"--api={sb26.url}", "--username=astro", "--password")
    assert password.code != 0 and "need your" in password.err
    assert not home.credentials_file.exists()


def test_watch_needs_a_telescope_and_checks_membership(cli, home, sb26, tmp_path,
                                                       monkeypatch):
    seed = sb26.seed
    folder = tmp_path / "d"
    folder.mkdir()
    assert login(cli, monkeypatch, sb26.url).code == 0
    personal = cli("watch", folder, "-y")
    assert personal.code == 2 and seed.personal_telescope_uuid in personal.err
    org = cli("watch", folder, "-o", seed.organisation, "-y")
    assert org.code == 2 and seed.telescope_uuid in org.err
    assert seed.personal_telescope_uuid not in org.err
    unknown = cli("watch", folder, "-o", "nowhere", "-t", "x", "-y")
    assert unknown.code == 2 and "does not exist" in unknown.err
    not_member = cli("watch", folder, "-o", seed.other_organisation, "-t", "x", "-y")
    assert not_member.code == 3 and "may not upload" in not_member.err
    listing = cli("telescopes")
    assert listing.code == 0 and seed.personal_telescope_uuid in listing.out
    assert seed.personal_telescope_name in listing.out
    org_listing = cli("telescopes", "-o", seed.organisation)
    assert org_listing.code == 0 and seed.telescope_uuid in org_listing.out
    assert cli("watch", folder, "-t", "backyard", "-y").code == 0  # alias, from the list
    assert cfg.load_settings(home).folders[0].telescope == seed.personal_telescope_uuid
    assert cfg.load_settings(home).folders[0].telescope_name == seed.personal_telescope_name
    # A guest key may read but not upload: verify-organisation says so.
    assert login(cli, monkeypatch, sb26.url, "meteor", seed.guest_key).code == 0
    (tmp_path / "other").mkdir()
    guest = cli("watch", tmp_path / "other", "-o", seed.organisation, "-t", seed.telescope_uuid,
                "-y")
    assert guest.code == 3


def test_changed_file_is_reported_not_resent(cli, home, sb26, tmp_path, monkeypatch):
    root = make_sample_tree(tmp_path / "night")
    assert login(cli, monkeypatch, sb26.url).code == 0
    fast(home)
    assert cli("watch", root, "-t", sb26.seed.personal_telescope_uuid, "--reduced", "-y").code == 0
    assert cli("run", "--min-age=0").code == 0
    assert all(f["is_raw"] is False for f in sb26.datafiles())
    target = root / "NGC3603/Halpha/Mosaic1.fits"
    before = next(f for f in sb26.datafiles() if f["filename"] == "Mosaic1.fits")["sha256"]
    write_fits(target, {"DATE-OBS": "2020-09-09T14:00:00", "OBJECT": "changed"},
               shape=(64, 64))
    os.utime(target, (1e9, 1e9))
    sb26.clear_requests()
    changed = cli("run", "--min-age=0")
    assert changed.code == 1
    assert "cannot replace a file: rename this one" in changed.err
    assert not [r for r in sb26.requests if r[0] != "GET"]  # nothing re-sent
    after = next(f for f in sb26.datafiles() if f["filename"] == "Mosaic1.fits")["sha256"]
    assert after == before
    status = json.loads(cli("status", "--json").out)
    conflicts = [c for f in status["folders"] for c in f["conflicts"]]
    assert [c["path"] for c in conflicts] == ["NGC3603/Halpha/Mosaic1.fits"]
    assert "earlier file named Mosaic1.fits" in conflicts[0]["reason"]
    # A conflict, not a quiet failure: every run says it until a person acts.
    assert cli("run", "--min-age=0").code == 1


@pytest.mark.parametrize("fault", ["error_rate", "lost_answer_rate", "reset_rate",
                                   "throttle_rate"])
def test_faults_end_with_every_file_exactly_once(cli, home, sb26, tmp_path, monkeypatch,
                                                 fault):
    root = make_sample_tree(tmp_path / "night")
    assert login(cli, monkeypatch, sb26.url).code == 0
    fast(home)
    assert cli("watch", root, "-t", sb26.seed.personal_telescope_uuid, "-y").code == 0
    sb26.faults.seed = 7
    sb26.faults.retry_after = 0.01
    setattr(sb26.faults, fault, 0.3)
    codes = []
    for _ in range(12):
        codes.append(cli("run", "--min-age=0", "--retry-failed").code)
        if codes[-1] == 0:
            break
    setattr(sb26.faults, fault, 0.0)
    codes.append(cli("run", "--min-age=0", "--retry-failed").code)
    assert codes[-1] == 0, codes
    wanted = {n: (sb26.seed.personal_telescope_uuid, sorted(f))
              for n, f in expected_datasets(root).items()}
    assert server_datasets(sb26) == wanted  # each dataset once, each file once


def test_lost_dataset_create_answer_is_followed_by_a_find(cli, home, sb26, tmp_path,
                                                         monkeypatch):
    root = make_sample_tree(tmp_path / "night")
    assert login(cli, monkeypatch, sb26.url).code == 0
    fast(home)
    assert cli("watch", root, "-t", sb26.seed.personal_telescope_uuid, "-y").code == 0
    sb26.faults.paths = r"^/datasets/$"  # only the dataset list/create route
    sb26.faults.lost_answer_rate = 1.0
    cli("run", "--min-age=0")
    sb26.faults.lost_answer_rate = 0.0
    assert cli("run", "--min-age=0", "--retry-failed").code == 0
    names = [d["name"] for d in sb26.objects("datasets")]
    assert sorted(names) == sorted(expected_datasets(root))  # none created twice


def test_sandbox_then_real_server_uploads_everything_there(cli, home, tmp_path, monkeypatch):
    root = make_sample_tree(tmp_path / "night")
    count = sum(len(f) for f in expected_datasets(root).values())
    with Sandbox(tmp_path / "first", dialect="2026") as trial, \
            Sandbox(tmp_path / "real", dialect="2026") as real:
        trial.start()
        real.start()
        assert login(cli, monkeypatch, trial.url).code == 0
        assert cli("watch", root, "-t", trial.seed.personal_telescope_uuid, "-y").code == 0
        assert cli("run", "--min-age=0").code == 0
        assert len(trial.datafiles()) == count
        assert login(cli, monkeypatch, real.url).code == 0
        status = json.loads(cli("status", "--json").out)
        assert status["folders"][0]["destination"]["api"] == real.url
        assert cli("run", "--min-age=0").code == 0
        assert len(real.datafiles()) == count and len(trial.datafiles()) == count
        status = json.loads(cli("status", "--json").out)
        assert status["folders"][0]["counts"]["uploaded"] == count
        assert status["folders"][0]["generation"] == "2026"


def test_remembered_generation_is_detected_again_when_its_routes_are_gone(
        cli, home, sb26, tmp_path, monkeypatch):
    """A server upgraded from 2021 to 2026 after login: the 2021 routes answer 404."""
    from helpers import configure

    root = make_sample_tree(tmp_path / "night")
    configure(home, sb26.url, sb26.seed.upload_key, username="astro", generation="2021",
              folders=[cfg.Folder(str(root), telescope=sb26.seed.personal_telescope_uuid)])
    result = cli("run", "--min-age=0")
    assert result.code == 0, result.err
    assert len(sb26.datafiles()) == sum(len(f) for f in expected_datasets(root).values())
    assert json.loads(home.credentials_file.read_text())["generation"] == "2026"


def test_a_folder_without_telescope_fails_clearly(cli, home, sb26, tmp_path):
    from helpers import configure

    root = make_sample_tree(tmp_path / "night")
    configure(home, sb26.url, sb26.seed.upload_key, username="astro", generation="2026",
              folders=[cfg.Folder(str(root))])
    result = cli("run", "--min-age=0")
    assert result.code == 1 and "-t TELESCOPE" in result.err
    assert sb26.datafiles() == [] and sb26.objects("datasets") == []


def test_the_telescopes_longitude_places_files_as_the_server_does(
        cli, home, sb26, tmp_path, monkeypatch):
    """rt1 is at 70.74° W: 14:00 UTC is 09:17 there, the previous night. A 2026 server
    dates nights by the telescope's site only: the header's own SITELONG (which the
    client's 2021 rules prefer) does not move b.fits to the next night (issue 20)."""
    seed = sb26.seed
    root = tmp_path / "night"
    write_fits(root / "M8" / "a.fits", {"DATE-OBS": "2024-05-01T14:00:00Z"}, shape=(8, 8))
    write_fits(root / "M8" / "b.fits", {"DATE-OBS": "2024-05-01T14:00:00Z",
                                        "SITELONG": 139.7}, shape=(8, 8))
    assert login(cli, monkeypatch, sb26.url).code == 0
    watched = cli("watch", root, "-o", seed.organisation, "-t", seed.telescope_uuid, "-y")
    assert watched.code == 0 and "from the telescope's site (longitude -70.74°)" in watched.out
    assert cfg.load_settings(home).folders[0].longitude == -70.7375
    plan = json.loads(cli("run", "--dry-run", "--json", "--min-age=0").out)
    nights = {p: log["night"] for log in plan["night_logs"]
              for o in log["observations"] for p in o["paths"]}
    assert nights == {"M8/a.fits": "2024-04-30", "M8/b.fits": "2024-04-30"}
    assert {log["night_by"] for log in plan["night_logs"]} == {
        "night by the telescope's site at longitude -70.74°"}
    explained = json.loads(cli("explain", root / "M8" / "b.fits", "--json").out)
    assert explained[0]["night"] == "2024-04-30"
    assert explained[0]["night_by"] == "night by the telescope's site at longitude -70.74°"
    assert cli("run", "--min-age=0").code == 0
    assert [log["date"] for log in sb26.objects("nightlogs")] == ["2024-04-30"]


def test_a_name_taken_by_someone_else_is_recorded_as_not_verified(cli, home, sb26, tmp_path,
                                                                  monkeypatch):
    """Another client put a file of the same name in the dataset first: 2026 cannot
    compare contents, so it is "already on the server (not verified)", and status says so."""
    from sandbox_api import Api

    root = make_sample_tree(tmp_path / "night")
    api = Api(sb26)
    dataset = api.dataset("M42", sb26.seed.personal_telescope_uuid)
    assert api.send(dataset["uuid"], "lum.fz", b"someone else's bytes").status_code == 201
    assert login(cli, monkeypatch, sb26.url).code == 0
    assert cli("watch", root, "-t", sb26.seed.personal_telescope_uuid, "-y").code == 0
    assert cli("run", "--min-age=0").code == 0
    mine = [f for f in sb26.datafiles(dataset["uuid"]) if f["filename"] == "lum.fz"]
    assert len(mine) == 1 and mine[0]["size"] == len(b"someone else's bytes")
    status = json.loads(cli("status", "--json").out)
    reasons = {r["reason"]: r["files"] for f in status["folders"] for r in f["reasons"]}
    assert reasons.get("already on the server (not verified)") == 1
    assert "not verified" in cli("status").out


def test_tags_reserved_by_arcsecond_are_refused(cli, home, sb26, tmp_path, monkeypatch):
    folder = tmp_path / "d"
    folder.mkdir()
    assert login(cli, monkeypatch, sb26.url).code == 0
    refused = cli("watch", folder, "-t", sb26.seed.personal_telescope_uuid,
                  "--tags=night 1,arcsecond|telescope", "-y")
    assert refused.code == 2 and "reserved" in refused.err and "arcsecond|telescope" in refused.err
    assert cfg.load_settings(home).folders == ()
    # Commas separate tags; blanks around them are dropped, empty ones too.
    assert cfg.parse_tags(" a , b,,c ") == ("a", "b", "c")
