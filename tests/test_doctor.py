"""`oort-sync doctor` (issue 23, part 2): every check of the setup, against the sandbox in
both API generations: a good setup passes; a server clock 2 h off, a missing folder, a
refused key, a telescope with no site (2026), an unreachable server, a dead lock holder,
a schedule without recent runs are each named, with the fix; the server is only read."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import pytest
from fitsfiles import NIGHT, write_frame
from helpers import FAST_RETRIES, configure, needs

from oort_lib import doctor
from oort_lib.arcsecond.client import Client
from oort_lib.host import MACOS, WINDOWS
from oort_lib.sandbox import Sandbox, Seed
from oort_lib.state import config as cfg
from oort_lib.state.lock import RunLock
from oort_lib.state.status import Verdict
from oort_lib.views.installed import installed

KINDS = ("nightlogs", "observations", "calibrations", "datasets", "datafiles")


# --- a setup as a person makes it: login, watch, run, a schedule ---------------------------


def fake_crontab(tmp_path: Path, monkeypatch, *lines: str) -> None:
    """A `crontab` first on PATH: `crontab -l` lists `lines`, or says there is none."""
    bindir = tmp_path / "bin"
    bindir.mkdir(exist_ok=True)
    script = bindir / "crontab"
    if lines:
        listing = tmp_path / "crontab.txt"
        listing.write_text("\n".join(lines) + "\n")
        script.write_text(f"#!/bin/sh\ncat '{listing}'\n")
    else:
        script.write_text("#!/bin/sh\necho \"no crontab for $USER\" >&2\nexit 1\n")
    script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{os.environ['PATH']}")


def cron_line(home: cfg.Paths) -> str:
    """The line `schedule --cron` gives this profile (its --home)."""
    return (f"*/5 * * * * nice -n 10 /opt/pipx/bin/oort-sync run -q "
            f"--home={os.environ['OORT_SYNC_HOME']} || [ $? -eq 75 ]")


def login(cli, monkeypatch, sandbox: Sandbox, key: str | None = None) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO((key or sandbox.seed.upload_key) + "\n"))
    result = cli("login", f"--api={sandbox.url}", "--username=astro", "--key-stdin")
    assert result.code == 0, result.err
    settings = cfg.load_settings(cfg.resolve_paths())
    cfg.save_settings(cfg.resolve_paths(), settings._replace(**FAST_RETRIES))


def good_setup(cli, monkeypatch, sandbox: Sandbox, tmp_path: Path) -> Path:
    """Logged in, a folder of robotland's rt1 (which has a site) watched, one run done
    (one frame uploaded), a cron line of this profile installed."""
    login(cli, monkeypatch, sandbox)
    root = tmp_path / "night"
    write_frame(root / "M31" / "m31_001.fits", NIGHT)
    watched = cli("watch", root, "-o", "robotland", "-t", "rt1", "-y")
    assert watched.code == 0, watched.err
    assert cli("run").code == 0
    fake_crontab(tmp_path, monkeypatch, "# m h dom mon dow command", "MAILTO=ops@example.org",
                 cron_line(cfg.resolve_paths()))
    return root


def checked(cli, *args: str) -> tuple[int, dict[str, dict]]:
    """`doctor --json`: its exit code and its checks by name."""
    result = cli("doctor", "--json", *args)
    data = json.loads(result.out)
    assert data["exit_code"] == result.code
    return result.code, {check["name"]: check for check in data["checks"]}


def problems(checks: dict[str, dict]) -> list[str]:
    return [name for name, check in checks.items() if check["status"] == "problem"]


# --- the good setup, and what the server sees of it ------------------------------------


def test_a_good_setup_passes_every_check(cli, server, tmp_path, monkeypatch):
    root = good_setup(cli, monkeypatch, server, tmp_path)
    result = cli("doctor")
    assert result.code == 0, result.out
    lines = result.out.splitlines()
    assert all(line.startswith("ok ") for line in lines[:-1]), result.out
    assert lines[-1] == f"All {len(lines) - 1} checks pass."
    text = result.out
    assert f"folder {root}: exists and is readable." in text
    assert "run lock: free." in text
    assert f"credentials: astro verified by {server.url} (API generation {server.dialect})" in text
    assert "server clock: within " in text
    assert "organisation robotland: " in text and "may upload" in text
    assert "telescope Robot Refractor 1: " in text
    assert "schedule: cron (crontab -l); the last finished run ended " in text
    if server.dialect == "2026":  # the server dates nights by its site
        assert "site: longitude -70.74° (the server dates nights by it)" in text


def test_doctor_writes_nothing_on_the_server(cli, server, tmp_path, monkeypatch):
    good_setup(cli, monkeypatch, server, tmp_path)
    before = {kind: server.objects(kind) for kind in KINDS}
    server.clear_requests()
    assert cli("doctor").code == 0
    assert {kind: server.objects(kind) for kind in KINDS} == before
    sent = server.requests
    assert sent, "doctor asked the server nothing"
    # Only reads, and the verifications of a 2026 server, which answer and store nothing.
    verifications = {"/auth/key/verify/", "/auth/key/verify-organisation/"}
    writes = [(method, path) for method, path, _ in sent
              if method not in ("GET", "HEAD", "OPTIONS")
              and not (method == "POST" and path in verifications)]
    assert writes == []
    if server.dialect == "2021":
        assert {method for method, _, _ in sent} == {"GET"}


def test_json_has_a_stable_shape(cli, sb26, tmp_path, monkeypatch):
    good_setup(cli, monkeypatch, sb26, tmp_path)
    result = cli("doctor", "--json")
    data = json.loads(result.out)
    assert set(data) == {"schema", "generated_at", "exit_code", "counts", "checks"}
    assert data["schema"] == 1 and data["exit_code"] == result.code == 0
    assert datetime.fromisoformat(data["generated_at"]).utcoffset() is not None
    assert set(data["counts"]) == {"ok", "warning", "problem"}
    assert sum(data["counts"].values()) == len(data["checks"]) >= 8
    for check in data["checks"]:
        assert set(check) == {"name", "status", "found", "fix"}
        assert check["status"] in {str(v) for v in Verdict}
        assert isinstance(check["found"], str) and check["found"]
        assert (check["fix"] is None) == (check["status"] == "ok")


# --- each cause named ------------------------------------------------------------------


@pytest.mark.parametrize("skew, said", [(7200, "2 h ahead of"), (-7200, "2 h behind")])
def test_a_server_clock_two_hours_off_is_named(cli, server, tmp_path, monkeypatch, skew, said):
    good_setup(cli, monkeypatch, server, tmp_path)
    server.faults.clock_skew = skew
    code, checks = checked(cli)
    assert code == 1
    assert problems(checks) == ["server clock"]
    clock = checks["server clock"]
    assert clock["found"].startswith(f"{said} this machine's (its Date header)")
    assert "timedatectl set-ntp true" in clock["fix"]
    server.faults.clock_skew = 240  # 4 minutes: within the 5 allowed
    code, checks = checked(cli)
    assert code == 0 and checks["server clock"]["found"] == "within 4 min of this machine's."


def test_a_missing_folder_is_named(cli, server, tmp_path, monkeypatch):
    root = good_setup(cli, monkeypatch, server, tmp_path)
    root.rename(tmp_path / "elsewhere")
    code, checks = checked(cli)
    assert code == 1 and problems(checks) == [f"folder {root}"]
    assert checks[f"folder {root}"]["found"].startswith("missing")
    assert checks[f"folder {root}"]["fix"].endswith(f"oort-sync unwatch {root}")


def test_a_refused_key_exits_3_after_the_local_checks(cli, server, tmp_path, monkeypatch):
    root = good_setup(cli, monkeypatch, server, tmp_path)
    server.revoke_key(server.seed.upload_key)
    result = cli("doctor")
    assert result.code == 3
    code, checks = checked(cli)
    assert code == 3 and problems(checks) == ["credentials"]
    assert "oort-sync login" in checks["credentials"]["fix"]
    # The local checks were made; those that need the server are left out; the refusal
    # was an answer, so the clocks were compared.
    assert {"state folder", "run lock", f"folder {root}", "schedule", "server clock"} <= set(
        checks)
    assert not [name for name in checks if name.startswith(("organisation", "telescope"))]


def test_an_unreachable_server_exits_4(cli, home, tmp_path, monkeypatch):
    with Sandbox(tmp_path / "gone") as gone:
        url = gone.url  # a port nobody listens on any more
    root = tmp_path / "night"
    root.mkdir()
    configure(home, url, Seed().upload_key, username="astro",
              generation="2026", folders=[cfg.Folder(str(root), telescope="rt1")],
              retries=1)
    code, checks = checked(cli)
    assert code == 4 and problems(checks) == ["credentials"]
    assert "unreachable" in checks["credentials"]["found"]
    assert "server clock" not in checks  # no answer: nothing to compare
    assert checks[f"folder {root}"]["status"] == "ok"


def test_a_telescope_with_no_site_is_named_in_2026(cli, sb26, tmp_path, monkeypatch):
    seed = sb26.seed
    login(cli, monkeypatch, sb26)
    root = tmp_path / "backyard"
    root.mkdir()
    assert cli("watch", root, "-t", seed.personal_telescope_uuid, "-y").code == 0
    code, checks = checked(cli)
    assert code == 1 and problems(checks) == [f"telescope {seed.personal_telescope_name}"]
    check = checks[f"telescope {seed.personal_telescope_name}"]
    assert "has no site on Arcsecond: nights follow the header clock" in check["found"]
    assert check["fix"].startswith("Set its site") and str(root) in check["fix"]


def test_a_2021_telescope_needs_no_site(cli, sb21, tmp_path, monkeypatch):
    seed = sb21.seed
    login(cli, monkeypatch, sb21)
    root = tmp_path / "backyard"
    root.mkdir()
    assert cli("watch", root, "-t", seed.personal_telescope_uuid, "-y").code == 0
    code, checks = checked(cli)
    assert checks[f"telescope {seed.personal_telescope_name}"]["status"] == "ok"
    assert problems(checks) == []


def test_a_role_that_may_not_upload_is_named(cli, server, tmp_path, monkeypatch):
    login(cli, monkeypatch, server)
    root = tmp_path / "night"
    root.mkdir()
    assert cli("watch", root, "-o", "robotland", "-t", "rt1", "-y").code == 0
    # Another account logs in under the watched folder: a guest, who may read only.
    monkeypatch.setattr("sys.stdin", io.StringIO(server.seed.guest_key + "\n"))
    assert cli("login", f"--api={server.url}", "--username=meteor", "--key-stdin").code == 0
    code, checks = checked(cli)
    assert code == 1 and problems(checks) == ["organisation robotland"]
    found = checks["organisation robotland"]["found"]
    assert ("meteor is a guest of robotland: that role may read but not upload." == found
            if server.dialect == "2021" else "may not upload to organisation robotland" in found)
    assert "Ask an admin of robotland" in checks["organisation robotland"]["fix"]


# --- the schedule and the last run ------------------------------------------------------


def test_no_schedule_is_a_warning_only(cli, sb26, tmp_path, monkeypatch):
    good_setup(cli, monkeypatch, sb26, tmp_path)
    fake_crontab(tmp_path, monkeypatch)  # crontab -l: no crontab for this user
    code, checks = checked(cli)
    assert code == 0
    schedule = checks["schedule"]
    assert schedule["status"] == "warning"
    assert schedule["found"].startswith("none found (looked at crontab -l, ")
    assert "oort-sync schedule --cron" in schedule["fix"]


def test_a_cron_line_of_another_profile_is_not_this_ones(home, tmp_path, monkeypatch):
    fake_crontab(tmp_path, monkeypatch, "*/5 * * * * /usr/bin/oort-sync run -q --home=/other")
    assert installed(str(tmp_path / "mine")).found == []
    assert installed("/other").found[0].kind == "cron"
    assert installed(None).found == []  # the default profile: no --home on its line
    fake_crontab(tmp_path, monkeypatch, "# */5 * * * * /usr/bin/oort-sync run -q",
                 "*/5 * * * * /usr/bin/oort-sync run -q")
    assert [s.where for s in installed(None).found] == ["crontab -l"]


def test_a_systemd_timer_is_found_and_needs_recent_runs(home, tmp_path, monkeypatch):
    from oort_lib.views.schedule import systemd_units

    fake_crontab(tmp_path, monkeypatch)
    units = Path(os.environ["HOME"]) / ".config" / "systemd" / "user"
    units.mkdir(parents=True)
    for name, text in systemd_units(os.environ["OORT_SYNC_HOME"]).items():
        (units / name).write_text(text)
    settings, mine = cfg.Settings(), os.environ["OORT_SYNC_HOME"]
    check = doctor.schedule(home, settings, mine, time.time())
    assert check.status == Verdict.WARNING  # written, never enabled
    assert check.found.startswith(f"written but not enabled: {units / 'oort-sync.timer'}")
    assert check.fix == "Enable it: systemctl --user enable --now oort-sync.timer"
    (units / "timers.target.wants").mkdir()
    (units / "timers.target.wants" / "oort-sync.timer").symlink_to(units / "oort-sync.timer")
    check = doctor.schedule(home, settings, mine, time.time())
    assert check.status == Verdict.PROBLEM  # enabled, and no run ever finished
    assert "is installed, but no run has finished yet" in check.found
    assert "journalctl --user -u oort-sync" in check.fix


def test_the_last_finished_run_must_be_recent(cli, sb26, tmp_path, monkeypatch):
    good_setup(cli, monkeypatch, sb26, tmp_path)
    home, settings = cfg.resolve_paths(), cfg.load_settings(cfg.resolve_paths())
    mine = os.environ["OORT_SYNC_HOME"]
    assert doctor.schedule(home, settings, mine, time.time()).status == Verdict.OK
    later = doctor.schedule(home, settings, mine, time.time() + 3 * 86400)  # 3 days on
    assert later.status == Verdict.PROBLEM
    assert "is installed, but the last finished run ended 3 d ago (exit code 0)" in later.found


def test_the_task_and_the_agent_are_found_where_they_live(tmp_path, monkeypatch):
    from oort_lib.views.launchagent import recipe as agent_recipe
    from oort_lib.views.scheduled_task import task_xml

    xml = task_xml("/srv/oort", program="C:\\Python\\pythonw.exe")
    asked = []

    def schtasks(argv, **options):
        asked.append(argv)
        return subprocess.CompletedProcess(argv, 0, xml.encode("utf-16"), b"")

    with monkeypatch.context() as patched:
        patched.setattr("shutil.which", lambda name: f"C:\\Windows\\System32\\{name}.exe")
        found = installed("/srv/oort", run=schtasks, kind=WINDOWS)
        assert found.found[0].kind == "windows" and found.found[0].enabled
        assert asked == [["schtasks", "/Query", "/TN", "oort-sync", "/XML"]]
        off = xml.replace("<Enabled>true</Enabled>\n    <Hidden>",
                          "<Enabled>false</Enabled>\n    <Hidden>")
        found = installed("/srv/oort", kind=WINDOWS, run=lambda argv, **o: subprocess.
                          CompletedProcess(argv, 0, off.encode("utf-16"), b""))
        assert not found.found[0].enabled
    fake_crontab(tmp_path, monkeypatch)
    agents = tmp_path / "Library" / "LaunchAgents"
    agents.mkdir(parents=True)
    (agents / "io.arcsecond.oort-sync.plist").write_text(
        agent_recipe(None, tmp_path / "logs", argv=["/usr/local/bin/oort-sync", "run", "-q"]))
    found = installed(None, kind=MACOS, environ={"HOME": str(tmp_path), "PATH": ""})
    assert [s.kind for s in found.found] == ["launchd"]


# --- the state folder and the lock ------------------------------------------------------


@needs(Path("/proc/locks").exists(), "the kernel's lock table (/proc/locks, Linux)")
def test_a_lock_held_for_a_dead_run_is_named(home, tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()  # its pid is free now
    lock = RunLock(home.lock_file).acquire()
    try:
        assert doctor.run_lock(home).found.startswith("held by the run in progress (pid "
                                                      f"{os.getpid()} ")
        # What a child that inherited the lock file leaves: the lock held, its run gone.
        note = home.lock_file.with_name(home.lock_file.name + ".holder")
        note.write_text(json.dumps({"pid": dead.pid, "since": time.time()}))
        check = doctor.run_lock(home)
        assert check.status == Verdict.PROBLEM
        assert f"held, but its run (pid {dead.pid} " in check.found
        assert check.fix.startswith(f"Find that process with `fuser -v {home.lock_file}`")
    finally:
        lock.release()
    note.write_text(json.dumps({"pid": dead.pid, "since": time.time()}))  # a killed run's
    check = doctor.run_lock(home)
    assert check.status == Verdict.OK
    assert check.found == (f"free (pid {dead.pid}, a run that was killed, left a note; "
                           "the next run replaces it).")


def test_a_state_folder_without_room_is_named(tiny_disk):
    paths = cfg.resolve_paths(str(tiny_disk))
    paths.state_dir.mkdir(parents=True)
    check = doctor.state_folder(paths)
    assert check.status == Verdict.PROBLEM
    assert "is writable, but its disk has only" in check.found
    assert list(paths.state_dir.iterdir()) == []  # the probe removed


def test_not_logged_in_is_named(cli, tmp_path):
    code, checks = checked(cli)
    assert code == 1 and checks["credentials"]["found"] == "nobody is logged in."
    assert checks["watched folders"]["status"] == "warning"


# --- the client reads the server's clock --------------------------------------------------


def test_the_client_reads_the_servers_clock(sb):
    client = Client(sb.url, sb.seed.upload_key)
    assert client.clock_offset() is None  # nothing asked yet
    client.telescopes(None)
    assert abs(client.clock_offset()) < 5
    sb.faults.clock_skew = -3600
    client.telescopes(None)
    assert abs(client.clock_offset() + 3600) < 5
    client.close()


def test_a_key_that_cannot_be_one_is_named_without_asking_the_server(cli, home, sb,
                                                                     monkeypatch):
    configure(home, sb.url, sb.seed.upload_key)
    monkeypatch.setenv("ARCSECOND_UPLOAD_KEY", "'5a4db0c5e7e57ca11ab1e0000000c0de'")
    code, checks = checked(cli)
    assert code == 1 and problems(checks) == ["credentials"]
    assert "does not look like an Arcsecond key" in checks["credentials"]["found"]
    assert sb.requests == []
