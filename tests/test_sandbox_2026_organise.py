"""The 2026 sandbox organises uploads itself (night logs at the telescope's site), writes
odd ``next`` links on demand, upgrades old data dirs, and prints its banner."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
import requests
from sandbox_api import SEED, Api, org

from oort_lib.samples import write_fits
from oort_lib.sandbox import Faults, Sandbox

pytestmark = pytest.mark.sandbox(page_size=1)  # every list paged, item by item


def fits(tmp_path: Path, name: str, **header) -> bytes:
    return write_fits(tmp_path / "src" / name, header).read_bytes()


# --- server-side night logs ---------------------------------------------------------------


def test_night_log_at_the_telescopes_longitude(sb26, tmp_path):
    team = org(sb26)
    ds = team.dataset("M42 run", SEED.telescope_uuid)
    # 14:00 UTC is 09:17 at 70.7 degrees west: still the night that began on the 1st
    # (read as UTC it would be the afternoon of the 2nd).
    r = team.send(ds["uuid"], "m42_001.fits",
                  fits(tmp_path, "a.fits", **{"DATE-OBS": "2024-05-02T14:00:00", "OBJECT": "M 42"}))
    assert r.status_code == 201, r.text
    assert team.send(ds["uuid"], "m42_002.fits",
                     fits(tmp_path, "b.fits", **{"DATE-OBS": "2024-05-02T14:10:00"})
                     ).status_code == 201
    [log] = sb26.objects("nightlogs")
    assert (log["date"], log["telescope"], log["organisation"]) == (
        "2024-05-01", SEED.telescope_uuid, "robotland")
    [obs] = sb26.objects("observations")
    assert (obs["name"], obs["target_name"], obs["night_log"]) == ("M42 run", "M 42",
                                                                  log["uuid"])
    [stored] = sb26.objects("datasets")
    assert stored["observation"] == obs["uuid"] and stored["calibration"] is None
    assert sb26.objects("calibrations") == []
    page = requests.get(sb26.url + "/", timeout=10).text
    assert "2024-05-01" in page and "M42 run" in page and "m42_002.fits" in page
    # The night logs stay readable over the API, in both generations.
    listed = team.get("/nightlogs/", params={"date": "2024-05-01"}).json()
    assert [n["uuid"] for n in listed["results"]] == [log["uuid"]]


def test_east_of_greenwich_and_calibrations(sb26, tmp_path):
    local = Api(sb26, prefix="/api/local")
    ds = local.dataset("Darks 300s", SEED.local_telescope_uuid)
    # 03:00 UTC is noon at 135 degrees east: the night of the 2nd has begun.
    assert local.send(ds["uuid"], "d1.fits",
                      fits(tmp_path, "d.fits", **{"DATE-OBS": "2024-05-02T03:00:00"})
                      ).status_code == 201
    [log] = sb26.objects("nightlogs")
    assert (log["date"], log["organisation"]) == ("2024-05-02", "local")
    [cal] = sb26.objects("calibrations")
    assert (cal["name"], cal["night_log"]) == ("Darks 300s", log["uuid"])
    assert sb26.objects("datasets")[0]["calibration"] == cal["uuid"]
    assert sb26.objects("observations") == []


def test_without_coordinates_the_header_clock_decides(sb26, tmp_path):
    api = Api(sb26)  # the personal telescope has no coordinates
    ds = api.dataset("Jupiter")
    assert api.send(ds["uuid"], "j.fits",
                    fits(tmp_path, "j.fits", **{"DATE-OBS": "2024-05-02T14:00:00"})
                    ).status_code == 201
    [log] = sb26.objects("nightlogs")
    assert (log["date"], log["telescope"], log["owner"]) == (
        "2024-05-02", SEED.personal_telescope_uuid, SEED.username)
    assert sb26.objects("observations")[0]["target_name"] == "Jupiter"


def test_files_without_a_date_stay_in_their_dataset(sb26, tmp_path):
    api = Api(sb26)
    ds = api.dataset("Mixed")
    assert api.send(ds["uuid"], "nodate.fits", fits(tmp_path, "n.fits")).status_code == 201
    assert api.send(ds["uuid"], "notes.txt", b"not a FITS file at all").status_code == 201
    assert sb26.objects("nightlogs") == []
    assert len(sb26.datafiles(ds["uuid"])) == 2
    page = requests.get(sb26.url + "/", timeout=10).text
    assert "Not in a night log" in page and "notes.txt" in page
    # A later dated file places the dataset.
    assert api.send(ds["uuid"], "dated.fits",
                    fits(tmp_path, "d.fits", **{"DATE-OBS": "2024-05-02T01:00:00"})
                    ).status_code == 201
    assert [n["date"] for n in sb26.objects("nightlogs")] == ["2024-05-01"]
    assert sb26.objects("datasets")[0]["observation"] is not None


def test_a_2021_dataset_keeps_its_chain_in_both_mode(tmp_path):
    with Sandbox(tmp_path / "s") as sb:
        api = Api(sb)
        ds = api.chain("M31")
        assert api.send(ds["uuid"], "m31.fits",
                        fits(tmp_path, "m.fits", **{"DATE-OBS": "2030-01-01T20:00:00"})
                        ).status_code == 201
        assert api.upload(ds["uuid"], "m31_b.fits", b"data").status_code == 201
        assert len(sb.objects("nightlogs")) == 1  # the client's own, nothing added
        assert sb.objects("datasets")[0]["observation"] == ds["observation"]


# --- next links ---------------------------------------------------------------------------


def two_pages(sb: Sandbox, prefix: str) -> str:
    api = Api(sb, prefix=prefix)
    for name in ("A", "B"):
        api.dataset(name, SEED.local_telescope_uuid if prefix else SEED.personal_telescope_uuid)
    return api.get("/datasets/").json()["next"]


def test_next_links_normal_other_host_and_no_prefix(sb26):
    assert two_pages(sb26, "/api/local") == sb26.url + "/api/local/datasets/?page=2"
    sb26.faults.next_links = "other-host"
    api = Api(sb26, prefix="/api/local")
    assert api.get("/datasets/").json()["next"] == (
        "http://evil.example:1/api/local/datasets/?page=2")
    sb26.faults.next_links = "no-prefix"
    assert api.get("/datasets/", params={"name": "A"}).json()["next"] is None
    page = api.get("/telescopes/").json()
    assert page["next"] is None  # one telescope in "local"
    assert api.get("/datasets/").json()["next"] == sb26.url + "/local/datasets/?page=2"
    # Requests made without the prefix keep their links as they are.
    assert two_pages(sb26, "") == sb26.url + "/datasets/?page=2"
    assert ("GET", "/api/local/datasets/", 200) in sb26.requests


def test_next_links_over_the_admin_route(sb26):
    key = {"X-Arcsecond-API-Authorization": f"Key {SEED.upload_key}"}
    r = requests.post(sb26.url + "/_sandbox/faults/", json={"next_links": "other-host"},
                      headers=key, timeout=10)
    assert r.status_code == 200 and r.json()["next_links"] == "other-host"
    assert sb26.faults.next_links == "other-host"
    r = requests.post(sb26.url + "/_sandbox/faults/", json={"next_links": "sideways"},
                      headers=key, timeout=10)
    assert r.status_code == 400 and "next_links" in r.json()["detail"]
    with pytest.raises(ValueError):
        Faults().update({"next_links": "sideways"})
    requests.post(sb26.url + "/_sandbox/faults/clear/", headers=key, timeout=10)
    assert sb26.faults.next_links == "normal"


# --- an old data dir, the banner ----------------------------------------------------------


OLD_TABLES = """
CREATE TABLE datasets (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, uuid TEXT UNIQUE NOT NULL, org TEXT,
    owner TEXT NOT NULL, created TEXT NOT NULL, name TEXT NOT NULL,
    observation TEXT, calibration TEXT);
CREATE TABLE datafiles (
    pk INTEGER PRIMARY KEY AUTOINCREMENT, dataset TEXT NOT NULL, filename TEXT NOT NULL,
    org TEXT, owner TEXT NOT NULL, created TEXT NOT NULL, modified TEXT NOT NULL,
    size INTEGER NOT NULL, sha256 TEXT NOT NULL, UNIQUE (dataset, filename));
INSERT INTO datasets (uuid, org, owner, created, name, observation)
    VALUES ('d0d0d0d0-0000-4000-8000-000000000001', NULL, 'astro', '2024-01-01T00:00:00Z',
            'Old', 'o1');
INSERT INTO datafiles (dataset, filename, org, owner, created, modified, size, sha256)
    VALUES ('d0d0d0d0-0000-4000-8000-000000000001', 'old.fits', NULL, 'astro',
            '2024-01-01T00:00:00Z', '2024-01-01T00:00:00Z', 4, 'x');
"""


def test_a_data_dir_of_the_old_schema_is_upgraded(tmp_path):
    data = tmp_path / "old"
    data.mkdir()
    with sqlite3.connect(data / "sandbox.sqlite") as db:
        db.executescript(OLD_TABLES)
    with Sandbox(data) as sb:
        api = Api(sb)
        old = api.get("/datasets/d0d0d0d0-0000-4000-8000-000000000001/").json()
        assert (old["name"], old["telescope"], old["data_files_count"]) == ("Old", None, 1)
        [row] = sb.datafiles()
        assert (row["is_raw"], row["tags"]) == (True, [])
        ds = api.dataset("New")["uuid"]
        r = api.send(ds, "new.fits", b"data", [("is_raw", "False"), ("tags", "a")])
        assert r.status_code == 201 and (r.json()["is_raw"], r.json()["tags"]) == (False, ["a"])


def test_banner_says_where_and_who(tmp_path):
    with Sandbox(tmp_path / "s", dialect="2026") as sb:
        lines = sb.banner()
        assert lines[:2] == [f"API URL: {sb.url}", "dialect: 2026"]
        for expected in (
            f"username: {SEED.username}",
            f"upload key: {SEED.upload_key}",
            "organisation: robotland (Robot Land), role: admin",
            "organisation: local (Arcsecond.local), role: owner",
            f"organisation telescope (robotland): Robot Refractor 1 {SEED.telescope_uuid}"
            " (alias rt1)",
            f"organisation telescope (local): Local Dobsonian {SEED.local_telescope_uuid}",
            f"personal telescope: Backyard Newtonian {SEED.personal_telescope_uuid}"
            " (alias backyard)",
            f"Arcsecond.local style: {sb.url}/api with organisation local",
        ):
            assert expected in lines, expected
        assert all(": " in line for line in lines)
        assert not any("farland" in line and "telescope" in line for line in lines)
    with Sandbox(tmp_path / "t", dialect="2021") as sb:
        assert "dialect: 2021" in sb.banner()
        assert not any(line.startswith("Arcsecond.local") for line in sb.banner())
