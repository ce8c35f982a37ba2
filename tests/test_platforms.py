"""Windows and macOS without a Windows machine or a Mac: the whole CLI flow under
tests/simulate_host.py (POSIX-only parts of os removed, fcntl unimportable, sys.platform
and os.name saying Windows; or sys.platform saying darwin), checking that it works and
that every file lands where that platform keeps it."""

from __future__ import annotations

import json
import os
import plistlib
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from oort_lib.samples import make_sample_tree

ROOT = Path(__file__).resolve().parent.parent
SHIM = ROOT / "tests" / "simulate_host.py"
TASK = "{http://schemas.microsoft.com/windows/2004/02/mit/task}"


class Host:
    """One simulated machine: a user home, its environment, and the CLI run in it."""

    def __init__(self, system: str, home: Path, env: dict[str, str]):
        self.system, self.home, self.env = system, home, env

    def run(self, *args: str, stdin: str = "") -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, str(SHIM), self.system, *map(str, args)],
                              input=stdin, env=self.env, capture_output=True, text=True,
                              timeout=120, cwd=self.home)


def login(host: Host, api: str, key: str) -> subprocess.CompletedProcess:
    """The flows' one login: username + key on stdin, as a headless machine does."""
    return host.run("login", f"--api={api}", "--username=astro", "--key-stdin",
                    stdin=key + "\n")


def _environment(home: Path, extra: dict[str, str]) -> dict[str, str]:
    # The tests' folder locks stay (conftest): not the machine's /run/lock.
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("XDG_", "OORT_", "ARCSECOND_", "PYTEST_"))
           or k == "OORT_SYNC_LOCK_DIR"}
    env.update(HOME=str(home), **extra)
    return env


@pytest.fixture
def windows(tmp_path) -> Host:
    home = tmp_path / "Users" / "astro"
    home.mkdir(parents=True)
    env = _environment(home, {
        "USERPROFILE": str(home), "USERNAME": "astro",
        "APPDATA": str(home / "AppData" / "Roaming"),
        "LOCALAPPDATA": str(home / "AppData" / "Local"),
        "OORT_SIM_AUDIT": str(tmp_path / "audit.json"),
        "ProgramData": str(tmp_path / "ProgramData"),
    })
    env.pop("OORT_SYNC_LOCK_DIR")  # where Windows keeps them: %ProgramData%
    return Host("windows", home, env)


@pytest.fixture
def macos(tmp_path) -> Host:
    home = tmp_path / "Users" / "astro"
    home.mkdir(parents=True)
    return Host("macos", home, _environment(home, {}))


def _flow(host: Host, sandbox, data: Path, tmp_path: Path) -> dict:
    """login, watch, dry run, run, a second run, status, report, logs: each must succeed.
    Returns what the checks below need."""
    done = login(host, sandbox.url, sandbox.seed.upload_key)
    assert done.returncode == 0, done.stderr
    assert "API generation 2026" in done.stdout
    done = host.run("watch", data, "--timezone=America/Santiago", "-t",
                    sandbox.seed.personal_telescope_uuid, "-y")
    assert done.returncode == 0, done.stderr
    plan = host.run("run", "--dry-run", "--json", "--min-age=0")
    assert plan.returncode == 0, plan.stderr
    planned = json.loads(plan.stdout)["totals"]["files"]
    assert planned == 13
    done = host.run("run", "--min-age=0")
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""  # no warning either (on Windows: no false 0600 warning)
    assert len(sandbox.objects("datafiles")) == planned
    sandbox.clear_requests()
    done = host.run("run", "--min-age=0")
    assert done.returncode == 0, done.stderr
    assert sandbox.requests == []
    status = host.run("status", "--json")
    assert status.returncode == 0, status.stderr
    report = tmp_path / "report.html"
    done = host.run("report", f"--output={report}")
    assert done.returncode == 0 and report.stat().st_size > 1000, done.stderr
    logs = host.run("logs")
    assert logs.returncode == 0 and "no log yet" not in logs.stdout
    doctor = host.run("doctor", "--json")  # the one problem: a telescope with no site
    assert doctor.stdout, doctor.stderr
    checks = {c["name"]: c["status"] for c in json.loads(doctor.stdout)["checks"]}
    assert doctor.returncode == 1, (doctor.stderr, checks)
    assert [name for name, status in checks.items() if status == "problem"] == [
        f"telescope {sandbox.seed.personal_telescope_name}"], checks
    assert checks["state folder"] == checks["run lock"] == checks["credentials"] == "ok"
    return {"status": json.loads(status.stdout)}


def _files_under(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}


def test_windows_flow_works_and_writes_to_appdata(windows, sandbox, tmp_path):
    data = make_sample_tree(tmp_path / "data")
    result = _flow(windows, sandbox, data, tmp_path)
    assert result["status"]["folders"][0]["path"] == str(data)
    roaming = windows.home / "AppData" / "Roaming" / "oort-sync"
    local = windows.home / "AppData" / "Local" / "oort-sync"
    assert {"config.ini", "credentials.json"} <= _files_under(roaming)
    assert "manifest.sqlite" in _files_under(local)
    assert (local / "Logs" / "oort-sync.log").read_text(encoding="utf-8").strip()
    # Nothing went to the XDG places a Linux run would use.
    assert not (windows.home / ".config").exists()
    assert not (windows.home / ".local").exists()
    audit = [json.loads(line) for line in
             Path(windows.env["OORT_SIM_AUDIT"]).read_text().splitlines()]
    assert {(a["platform"], a["os.name"]) for a in audit} == {("win32", "nt")}
    # The run asked for fcntl, was refused it, and locked through filelock instead.
    run = next(a for a in audit if a["args"] == ["run", "--min-age=0"])
    assert "fcntl" in run["refused"]
    # The folder lock went where every user of the machine sees it.
    assert list((tmp_path / "ProgramData" / "oort-sync" / "locks").glob("*.lock"))

    task = windows.run("schedule", "--windows")
    assert task.returncode == 0, task.stderr
    root = ET.fromstring(task.stdout.strip())
    command = root.find(f"{TASK}Actions/{TASK}Exec/{TASK}Command").text
    arguments = root.find(f"{TASK}Actions/{TASK}Exec/{TASK}Arguments").text
    assert command.endswith("pythonw.exe")
    assert arguments == "-m oort_lib run -q"


def test_windows_flow_zones_come_from_tzdata(windows, tmp_path):
    """The simulated Windows has no system zone files: only the tzdata package knows them."""
    data = tmp_path / "data"
    data.mkdir()
    done = windows.run("watch", data, "--timezone=America/Santiago", "-y")
    assert done.returncode == 0, done.stderr
    other = tmp_path / "other"
    other.mkdir()
    bad = windows.run("watch", other, "--timezone=Mars/Olympus", "-y")
    assert bad.returncode == 2 and "IANA" in bad.stderr


def test_macos_flow_works_and_writes_to_library(macos, sandbox, tmp_path):
    data = make_sample_tree(tmp_path / "data")
    _flow(macos, sandbox, data, tmp_path)
    support = macos.home / "Library" / "Application Support" / "oort-sync"
    logs = macos.home / "Library" / "Logs" / "oort-sync"
    assert {"config.ini", "credentials.json", "manifest.sqlite"} <= _files_under(support)
    assert (support / "credentials.json").stat().st_mode & 0o777 == 0o600
    assert (logs / "oort-sync.log").read_text(encoding="utf-8").strip()
    assert not (macos.home / ".config").exists()
    assert not (macos.home / ".local").exists()

    agent = macos.run("schedule", "--launchd")
    assert agent.returncode == 0, agent.stderr
    plist = plistlib.loads(agent.stdout.encode())
    assert plist["StandardOutPath"] == str(logs / "launchd.log")
    assert plist["ProgramArguments"][1:] == ["run", "-q"]


def test_macos_keeps_using_an_existing_xdg_install(macos, tmp_path):
    """Installed before oort-sync followed macOS conventions: its login and folders stay."""
    legacy = macos.home / ".config" / "oort-sync"
    legacy.mkdir(parents=True)
    (legacy / "config.ini").write_text("[oort-sync]\njobs = 3\n\n[folder 1]\npath = /data\n")
    status = macos.run("status", "--json")
    assert status.returncode == 0, status.stderr
    assert [f["path"] for f in json.loads(status.stdout)["folders"]] == ["/data"]
    assert not (macos.home / "Library").exists()
