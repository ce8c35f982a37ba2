"""Conformance: the official ``arcsecond`` CLI (4.5.0) logs in to and uploads into the
sandbox's 2026 generation, as it would into the cloud or an Arcsecond.local.

It runs as a real process (the console script next to this interpreter) with its own
configuration directory, so nothing of a real account on this machine is read or written.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest
from fitsfiles import write_tree
from helpers import needs

# Looked up, not imported: the package is only ever run as its own process here.
pytestmark = [needs(importlib.util.find_spec("arcsecond") is not None,
                    "the official arcsecond client is not installed (make venv installs it)"),
              pytest.mark.sandbox(page_size=1)]  # every list paged, item by item

CLI = Path(sys.executable).with_name("arcsecond")
# Three frames of one night at La Silla-ish longitude (the sandbox's robotland telescope).
FRAMES = {
    "m31_001.fits": "2024-05-02T03:00:00",
    "m31_002.fits": "2024-05-02T03:05:00",
    "m31 é 003.fits": "2024-05-02T03:10:00",
}


@pytest.fixture
def arcsecond(tmp_path, sb26):
    """Run the official CLI against the sandbox, registered and selected as "sandbox"."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ARCSECOND_")}
    env["ARCSECOND_CONFIG_DIR"] = str(tmp_path / "arcsecond-config")
    env["HOME"] = str(tmp_path / "home")  # in case anything still looks there

    def run(*args: str, stdin: str = "") -> subprocess.CompletedProcess:
        done = subprocess.run([str(CLI), *args], input=stdin, env=env, capture_output=True,
                              text=True, timeout=120)
        return done

    added = run("api", "add", "sandbox", sb26.url)
    assert added.returncode == 0, added.stdout + added.stderr
    used = run("api", "use", "sandbox")
    assert used.returncode == 0 and "now points at" in used.stdout, used.stdout + used.stderr
    return run


def frames(folder: Path) -> Path:
    write_tree(folder, {name: {"DATE-OBS": when, "OBJECT": "M31"}
                        for name, when in FRAMES.items()}, settled=False)
    return folder


def login(arcsecond, sb) -> None:
    done = arcsecond("login", "--username", sb.seed.username, "--type", "upload",
                     "--key", sb.seed.upload_key)
    assert "Logged in" in done.stdout, done.stdout + done.stderr


def upload(arcsecond, folder: Path, dataset: str, telescope: str, *portal: str) -> str:
    done = arcsecond("upload", str(folder), "-d", dataset, "-t", telescope, *portal,
                     stdin="\n")
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    return output


def test_official_client_logs_in_uploads_and_skips_what_is_already_synced(
        tmp_path, sb26, arcsecond):
    login(arcsecond, sb26)
    assert ("POST", "/auth/key/verify/", 204) in sb26.requests
    folder = frames(tmp_path / "night")
    telescope = sb26.seed.personal_telescope_uuid

    output = upload(arcsecond, folder, "M31 night", telescope)
    assert "uploads succeeded: 3, skipped: 0, failed: 0" in output, output
    [dataset] = sb26.objects("datasets")
    assert (dataset["name"], dataset["telescope"]) == ("M31 night", telescope)
    stored = sb26.datafiles(dataset["uuid"])
    assert sorted(f["filename"] for f in stored) == sorted(FRAMES)
    assert all(f["is_raw"] is True and f["tags"] == [] for f in stored)
    for row in stored:
        assert Path(row["path"]).read_bytes() == (folder / row["filename"]).read_bytes()
    # The server organised the files: no coordinates on this telescope, so the header's
    # UTC wall clock decides the night (before noon: the previous date).
    [nightlog] = sb26.objects("nightlogs")
    assert (nightlog["date"], nightlog["telescope"]) == ("2024-05-01", telescope)
    assert [o["target_name"] for o in sb26.objects("observations")] == ["M31"]

    sb26.clear_requests()
    again = upload(arcsecond, folder, "M31 night", telescope)
    assert "uploads succeeded: 0, skipped: 3, failed: 0" in again, again
    assert "already" in again.lower()
    assert len(sb26.datafiles()) == 3 and len(sb26.objects("datasets")) == 1
    # It walked the (one-per-page) dataset list rather than creating a second dataset.
    assert ("POST", "/datasets/", 201) not in sb26.requests


def test_official_client_uploads_into_an_organisation_portal(tmp_path, sb26, arcsecond):
    login(arcsecond, sb26)
    folder = frames(tmp_path / "flats")
    telescope = sb26.seed.telescope_uuid
    output = upload(arcsecond, folder, "Flats R", telescope, "-p", sb26.seed.organisation)
    assert "uploads succeeded: 3" in output, output
    [dataset] = sb26.objects("datasets")
    assert (dataset["organisation"], dataset["telescope"]) == ("robotland", telescope)
    assert len(sb26.datafiles(dataset["uuid"])) == 3
    paths = [path for _, path, _ in sb26.requests]
    assert "/auth/key/verify-organisation/" in paths and "/organisations/robotland/" in paths
    # A calibration folder name: filed as a calibration, on the telescope's local night.
    [calibration] = sb26.objects("calibrations")
    assert calibration["name"] == "Flats R"
    assert sb26.objects("calibrations")[0]["uuid"] == sb26.objects("datasets")[0]["calibration"]

    again = upload(arcsecond, folder, "Flats R", telescope, "-p", sb26.seed.organisation)
    assert "skipped: 3" in again and len(sb26.datafiles()) == 3


def test_official_client_refuses_a_wrong_key(sb26, arcsecond):
    done = arcsecond("login", "--username", sb26.seed.username, "--type", "upload",
                     "--key", "0" * 32)
    assert "Logged in" not in done.stdout
    assert "Invalid username or key." in done.stdout + done.stderr
    assert ("POST", "/auth/key/verify/", 401) in sb26.requests


def test_official_client_against_an_arcsecond_local_style_address(tmp_path, sb26, arcsecond):
    """``<host>/api`` with the ``local`` organisation, as Arcsecond.local serves its LAN."""
    added = arcsecond("api", "add", "local", sb26.url + "/api")
    used = arcsecond("api", "use", "local")
    assert used.returncode == 0, added.stdout + used.stdout + used.stderr
    assert sb26.requests[-1] == ("GET", "/api", 200)  # "api use" checks that it answers
    sb26.clear_requests()
    login(arcsecond, sb26)
    folder = frames(tmp_path / "m31")
    telescope = sb26.seed.local_telescope_uuid
    output = upload(arcsecond, folder, "M31", telescope, "-p", "local")
    assert "uploads succeeded: 3" in output, output
    paths = {path for _, path, _ in sb26.requests}
    assert {p for p in paths if not p.startswith("/api/")} == set(), paths
    assert "/api/local/datafiles/" in paths
    [dataset] = sb26.objects("datasets")
    assert dataset["organisation"] == "local" and len(sb26.datafiles(dataset["uuid"])) == 3
    # 135 degrees east: 03:00 UTC is noon there, so the night is that very date.
    [nightlog] = sb26.objects("nightlogs")
    assert (nightlog["date"], nightlog["telescope"]) == ("2024-05-02", telescope)
