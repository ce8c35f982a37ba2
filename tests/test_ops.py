"""Living with oort-sync: terminal vs cron output, logs, status --json, pings."""

from __future__ import annotations

import json
import os
import pty
import select
import subprocess
import sys

import pytest
from helpers import ROOT
from terminal import run_in_terminal

from oort_lib.samples import make_sample_tree


def test_terminal_gets_progress_and_summary(home, logged_in, sandbox, tmp_path):
    logged_in(make_sample_tree(tmp_path / "data"))
    code, screen = run_in_terminal(["run", "--min-age=0"])
    assert code == 0, screen
    assert "13/13 files" in screen  # the progress bar reached the end
    assert "13 files uploaded" in screen and "2 skipped" in screen


def test_cron_gets_nothing_on_success_and_a_short_list_on_failure(cli, logged_in, sandbox,
                                                                 tmp_path):
    root = make_sample_tree(tmp_path / "data")
    logged_in(root, retries=0)
    sandbox.faults.error_rate = 1.0
    sandbox.faults.paths = r"/datafiles/$"
    failed = cli("run", "--min-age=0")
    assert failed.code == 1 and failed.out == ""
    lines = failed.err.strip().splitlines()
    assert lines[0] == "oort-sync: 13 files failed (retried later):"
    assert len(lines) == 14 and all(str(root) in line for line in lines[1:])
    sandbox.faults.error_rate = 0.0
    ok = cli("run", "--min-age=0")  # retry_delay is 0 in tests: retried at once
    assert (ok.code, ok.out, ok.err) == (0, "", "")
    assert len(sandbox.objects("datafiles")) == 13


def test_log_file_lines_rotation_and_json(cli, home, logged_in, sandbox, tmp_path):
    root = make_sample_tree(tmp_path / "data")
    logged_in(root, log_max_bytes=10_000, log_backups=2)
    assert cli("run", "--min-age=0").code == 0
    text = home.log_file.read_text()
    assert text.count("uploaded ") >= 13 and "run finished" in text
    tail = cli("logs", "-n", "3")
    assert tail.code == 0 and len(tail.out.strip().splitlines()) == 3
    from oort_lib.samples import write_fits

    for batch in range(6):  # about 30 kB of log lines: past two rotations of 10 kB
        for index in range(30):
            write_fits(root / f"batch{batch}" / f"frame_{index:03d}.fits",
                       {"DATE-OBS": "2021-01-01T22:00:00"}, shape=(4, 4))
        assert cli("run", "--min-age=0", "--log-level=DEBUG").code == 0
    logs = sorted(p.name for p in home.state_dir.glob("oort-sync.log*"))
    assert logs == ["oort-sync.log", "oort-sync.log.1", "oort-sync.log.2"]
    assert sum(p.stat().st_size for p in home.state_dir.glob("oort-sync.log*")) <= 3 * 10_500
    cli("run", "--min-age=0", "--json-log")
    last = home.log_file.read_text().strip().splitlines()[-1]
    assert json.loads(last)["message"].startswith("run finished")
    import logging

    from oort_lib.state import logfile

    # The log file is closed after each run: a host calling main() again never writes
    # into an earlier home.
    handlers = logging.getLogger(logfile.LOGGER).handlers
    assert not [h for h in handlers if isinstance(h, logfile._LogFile)]


def test_status_json_schema(cli, logged_in, sandbox, tmp_path):
    root = make_sample_tree(tmp_path / "data")
    logged_in(root)
    assert cli("run", "--min-age=0").code == 0
    data = json.loads(cli("status", "--json").out)
    assert data["schema"] == 1
    assert set(data) >= {"generated_at", "api", "running", "last_run", "last_success",
                         "folders", "totals"}
    assert data["running"] is None and data["last_run"]["exit_code"] == 0
    assert data["last_success"]["uploaded"] == 13
    folder = data["folders"][0]
    assert folder["path"] == str(root)
    assert folder["counts"] == {"uploaded": 13, "pending": 0, "deferred": 0, "failed": 0,
                                "skipped": 2, "conflict": 0}
    assert folder["bytes_uploaded"] == sum(
        f["size"] for f in sandbox.objects("datafiles"))
    assert {r["reason"]: r.get("example") for r in folder["reasons"]} == {
        "not FITS or XISF": None,
        "no date found": "no DATE-OBS, DATE_OBS, MJD-OBS, JD or DATE keyword"}
    assert data["totals"]["uploaded"] == 13


def test_ping_url_start_and_success_or_failure(cli, logged_in, sandbox, tmp_path):
    root = make_sample_tree(tmp_path / "data")
    logged_in(root)
    ping = f"{sandbox.url}/hc/abc"
    assert cli("run", "--min-age=0", f"--ping-url={ping}").code == 0
    pings = [p for _m, p, _s in sandbox.requests if p.startswith("/hc/")]
    assert pings == ["/hc/abc/start", "/hc/abc"]
    sandbox.clear_requests()
    (root / "NGC3603/Halpha/Mosaic1.fits").write_bytes(b"SIMPLE  =                    T")
    os.utime(root / "NGC3603/Halpha/Mosaic1.fits", (1, 1))
    sandbox.faults.error_rate = 1.0
    sandbox.faults.paths = r"^/datasets/"
    (root / "new").mkdir()
    from oort_lib.samples import write_fits

    write_fits(root / "new" / "x.fits", {"DATE-OBS": "2021-01-01T20:00:00"})
    os.utime(root / "new" / "x.fits", (1, 1))
    code = cli("run", "--min-age=0", f"--ping-url={ping}").code
    pings = [p for _m, p, _s in sandbox.requests if p.startswith("/hc/")]
    assert code == 1 and pings == ["/hc/abc/start", "/hc/abc/1"]


@pytest.mark.parametrize("mode", ["key", "password"])
def test_login_asks_the_key_or_password_without_echo(home, sandbox, mode):
    seed = sandbox.seed
    # The prompts themselves: getpass flushes what was typed before it asks.
    secret, prompt = ((seed.upload_key, b"(not shown): ") if mode == "key"
                      else (seed.password, b"Password for astro@sandbox.example: "))
    leader, follower = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "oort_sync.py"), "login", f"--api={sandbox.url}",
         *(["--password"] if mode == "password" else [])],
        stdin=follower, stdout=follower, stderr=follower, start_new_session=True,
        env={**os.environ, "OORT_SYNC_HOME": str(home.config_dir.parent)})
    os.close(follower)
    screen = b""
    for wanted, answer in ((b"username", seed.email), (prompt, secret)):
        while wanted not in screen:
            ready, _, _ = select.select([leader], [], [], 30)
            assert ready, screen
            screen += os.read(leader, 4096)
        os.write(leader, answer.encode() + b"\n")
    while proc.poll() is None or select.select([leader], [], [], 0.2)[0]:
        try:
            chunk = os.read(leader, 4096)
        except OSError:
            break
        if not chunk:
            break
        screen += chunk
    proc.wait(30)
    os.close(leader)
    text = screen.decode(errors="replace")
    assert proc.returncode == 0, text
    assert secret not in text  # not echoed
    if mode == "key":
        # 2026 (the sandbox speaks both): kept as typed, like the official client does.
        assert f"as {seed.email}" in text and "API generation 2026" in text
        assert "settings page" in text  # where to find the key, said before asking
    else:
        # 2021: the profile gives the canonical username and the memberships.
        assert f"as {seed.username}" in text and "robotland (admin)" in text
        assert "need your" in text  # says that today's servers need a key
    creds = json.loads(home.credentials_file.read_text())
    assert creds["key"] == seed.upload_key
    assert creds["username"] == (seed.email if mode == "key" else seed.username)
    assert creds["generation"] == ("2026" if mode == "key" else "2021")
    assert creds["api"] == sandbox.url
    assert (home.credentials_file.stat().st_mode & 0o777) == 0o600


def test_debug_log_records_retries_without_the_key(cli, home, logged_in, sandbox, tmp_path):
    logged_in(make_sample_tree(tmp_path / "data"), retries=8)
    sandbox.faults.throttle_rate = 0.3
    sandbox.faults.retry_after = 0.01
    result = cli("run", "--min-age=0", "--log-level=DEBUG")
    assert result.code == 0 and result.err == ""
    text = home.log_file.read_text()
    assert "DEBUG retrying in" in text and "429" in text
    assert sandbox.seed.upload_key not in text
