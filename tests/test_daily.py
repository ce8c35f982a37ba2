"""An operator's daily life (issue 14): a bar that fits, honest records, pings after the
lock, quiet outages, machine-readable times and log lines."""

from __future__ import annotations

import http.server
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from datetime import datetime

import pytest
from helpers import ROOT, configure, run_process
from terminal import run_in_terminal

from oort_lib.run import outage
from oort_lib.samples import make_sample_tree, write_fits
from oort_lib.state import config as cfg
from oort_lib.state import manifest as mf
from oort_lib.state.lock import RunLock

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def many(root, count: int):
    for index in range(count):
        write_fits(root / f"night{index % 3}" / f"frame_{index:03d}.fits",
                   {"DATE-OBS": f"2021-03-1{index % 3}T23:00:00", "OBJECT": "M31"})
    return root


def test_progress_fits_80_columns_and_redraws_in_place(home, sandbox, tmp_path):
    root = many(tmp_path / "data", 40)
    configure(home, sandbox.url, sandbox.seed.upload_key, folders=[cfg.Folder(str(root))],
              jobs=2)
    sandbox.faults.latency = 0.02  # a few redraws
    code, screen = run_in_terminal(["run", "--min-age=0"], columns=80)
    assert code == 0, screen
    text = ANSI.sub("", screen)
    assert "40/40 files" in text and "100%" in text and "ETA" in text
    # Every redraw and every printed line fits: nothing wraps at 80 columns.
    segments = [s for s in re.split(r"[\r\n]", text) if s.strip()]
    assert segments and max(len(s) for s in segments) <= 80, max(segments, key=len)
    assert text.count("\r") > 2  # redrawn in place ...
    assert text.count("\n") <= 3  # ... not scrolled: the final bar and the summary
    assert "40 files uploaded" in text


def test_verbose_lines_scroll_above_the_bar(home, sandbox, tmp_path):
    root = many(tmp_path / "data", 6)
    configure(home, sandbox.url, sandbox.seed.upload_key, folders=[cfg.Folder(str(root))])
    code, screen = run_in_terminal(["run", "--min-age=0", "-v"], columns=80)
    text = ANSI.sub("", screen)
    assert code == 0 and text.count("uploaded ") >= 6 and "6/6 files" in text


def test_no_change_path_never_imports_tqdm(tmp_path):
    code = ("import sys\nfrom oort_lib.views.progress import Bar\n"
            "class Plan:\n    items = []\n    files = 0\n    total_bytes = 0\n"
            "bar = Bar()\nbar.planned(Plan())\nbar.finish()\n"
            "assert 'tqdm' not in sys.modules\n")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


def test_without_terminal_plain_lines(cli, logged_in, tmp_path):
    root = many(tmp_path / "data", 3)
    logged_in(root)
    result = cli("run", "--min-age=0", "-v")
    assert result.code == 0
    lines = result.err.strip().splitlines()
    assert sum(line.startswith("uploaded ") for line in lines) == 3
    assert "\r" not in result.err and "%|" not in result.err


# --- honest records -------------------------------------------------------------------


def test_sigterm_run_is_recorded_with_143(cli, home, sandbox, tmp_path):
    root = many(tmp_path / "data", 20)
    configure(home, sandbox.url, sandbox.seed.upload_key, folders=[cfg.Folder(str(root))],
              jobs=1)
    sandbox.faults.latency = 0.05
    proc = run_process("run", "--min-age=0", "--json-log")
    while len(sandbox.objects("datafiles")) < 2:
        assert proc.poll() is None
        time.sleep(0.01)
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=60)
    assert proc.returncode == 143
    data = json.loads(cli("status", "--json").out)
    assert data["last_run"]["exit_code"] == 143
    assert data["last_run"]["state"] == "finished"
    assert data["last_success"] is None or data["last_success"]["exit_code"] in (0, 1)
    finished = [json.loads(line) for line in home.log_file.read_text().splitlines()
                if "run finished" in line]
    assert finished[-1]["exit_code"] == 143 and finished[-1]["level"] == "info"


def test_run_ended_by_an_exception_is_recorded_with_its_code(home, logged_in, tmp_path,
                                                              monkeypatch):
    from oort_lib.run import sync
    from oort_lib.state import credentials

    root = many(tmp_path / "data", 2)
    settings = logged_in(root)
    creds = credentials.load(home.credentials_file)

    class Boom(sync.Events):
        def planned(self, plan):
            raise ZeroDivisionError("a bug")

    with pytest.raises(ZeroDivisionError):
        sync.run(home, settings, creds, events=Boom(), min_age=0)

    class Interrupted(sync.Events):
        def planned(self, plan):
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        sync.run(home, settings, creds, events=Interrupted(), min_age=0)
    with mf.Manifest(home.manifest_file) as manifest:
        codes = [r["exit_code"] for r in manifest.last_runs(2)]
    assert codes == [130, 70]


def test_status_shows_running_and_did_not_finish(cli, home, logged_in, tmp_path):
    root = many(tmp_path / "data", 2)
    logged_in(root)
    assert cli("run", "--min-age=0").code == 0
    with mf.Manifest(home.manifest_file) as manifest:  # a run killed with -9 long ago
        manifest.conn.execute("INSERT INTO runs (pid, started_at) VALUES (999999, ?)",
                              (time.time() - 60,))
    data = json.loads(cli("status", "--json").out)
    assert data["last_run"]["state"] == "did not finish" and data["last_run"]["exit_code"] is None
    assert "did not finish" in cli("status").out
    with RunLock(home.lock_file), mf.Manifest(home.manifest_file) as manifest:
        manifest.start_run()  # this process holds the lock: a run in progress
        data = json.loads(cli("status", "--json").out)
        shown = cli("status").out
    assert data["last_run"]["state"] == "running"
    assert data["running"]["pid"] == os.getpid() and "uploaded_so_far" in data["running"]
    assert f"pid {os.getpid()}" in shown and "exit code None" not in shown


def test_status_lists_the_paths(cli, home):
    data = json.loads(cli("status", "--json").out)
    assert data["paths"] == {"config": str(home.config_file), "state": str(home.state_dir),
                             "log": str(home.log_file)}
    out = cli("status").out
    assert str(home.config_file) in out and str(home.log_file) in out


# --- machine-readable -----------------------------------------------------------------

RFC3339 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d\d:\d\d$")


def _times(value):
    if isinstance(value, dict):
        for key, item in value.items():
            if key.endswith(("_at", "since")) and isinstance(item, str):
                yield item
            else:
                yield from _times(item)
    elif isinstance(value, list):
        for item in value:
            yield from _times(item)


def test_json_times_are_rfc3339_with_a_colon(cli, home, logged_in, tmp_path, monkeypatch):
    monkeypatch.setenv("TZ", "Asia/Kolkata")  # +05:30: the minutes of the offset too
    time.tzset()
    try:
        root = many(tmp_path / "data", 2)
        logged_in(root)
        assert cli("run", "--min-age=0", "--json-log").code == 0
        data = json.loads(cli("status", "--json").out)
        stamps = list(_times(data))
        assert len(stamps) >= 3
        for stamp in stamps:
            assert RFC3339.match(stamp), stamp
            assert datetime.fromisoformat(stamp).utcoffset() is not None  # Python 3.10 too
        assert stamps[0].endswith("+05:30")
        lines = [json.loads(line) for line in home.log_file.read_text().splitlines()]
        assert all(RFC3339.match(line["time"]) for line in lines)
        uploaded = [line for line in lines if line.get("outcome") == "uploaded"]
        assert len(uploaded) == 2
        assert {"run_id", "file", "outcome", "bytes", "dataset"} <= set(uploaded[0])
        assert uploaded[0]["file"].startswith(str(root)) and uploaded[0]["bytes"] > 0
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()


# --- pings ----------------------------------------------------------------------------


class _Monitor(http.server.BaseHTTPRequestHandler):
    seen: list

    def _answer(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode() if length else ""
        self.seen.append((self.command, self.path, body))
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"OK")

    do_GET = do_POST = _answer

    def log_message(self, *args):
        pass


@pytest.fixture
def monitor():
    seen: list = []
    handler = type("Handler", (_Monitor,), {"seen": seen})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hc/abc", seen
    server.shutdown()
    server.server_close()


def test_busy_tick_sends_no_ping(cli, home, logged_in, tmp_path, monitor):
    url, seen = monitor
    logged_in(many(tmp_path / "data", 2))
    with RunLock(home.lock_file):
        assert cli("run", "--min-age=0", f"--ping-url={url}", "-q").code == 75
    assert seen == []
    assert cli("run", "--min-age=0", f"--ping-url={url}").code == 0
    assert [(m, p) for m, p, _b in seen] == [("GET", "/hc/abc/start"), ("GET", "/hc/abc")]


def test_failure_ping_carries_code_and_reason(cli, home, tmp_path, monitor):
    url, seen = monitor
    configure(home, "http://127.0.0.1:9", "k" * 40,
              folders=[cfg.Folder(str(many(tmp_path / "data", 1)))], retries=0)
    result = cli("run", "--min-age=0", f"--ping-url={url}")
    assert result.code == 4
    assert [(m, p) for m, p, _b in seen] == [("GET", "/hc/abc/start"), ("POST", "/hc/abc/4")]
    reason = seen[1][2]
    assert "unreachable" in reason and "\n" not in reason


def test_ping_has_a_total_deadline():
    import socket

    from oort_lib.views import ping

    silent = socket.socket()  # accepts connections, never answers
    silent.bind(("127.0.0.1", 0))
    silent.listen(5)
    try:
        started = time.monotonic()
        assert ping.send(f"http://127.0.0.1:{silent.getsockname()[1]}/hc", deadline=1.0) is False
        assert time.monotonic() - started < 10  # generous: the deadline is 1 s
    finally:
        silent.close()


# --- quiet outages --------------------------------------------------------------------


def test_missing_folder_prints_once_then_recovery(cli, home, logged_in, tmp_path):
    root = make_sample_tree(tmp_path / "disk" / "data")
    logged_in(root)
    assert cli("run", "--min-age=0").code == 0
    os.rename(tmp_path / "disk", tmp_path / "unplugged")
    first = cli("run", "--min-age=0")
    assert first.code == 1 and str(root) in first.err
    for _ in range(3):  # cron ticks during the outage: exit 1, nothing printed
        tick = cli("run", "--min-age=0")
        assert (tick.code, tick.out, tick.err) == (1, "", "")
    assert "still:" in home.log_file.read_text()
    os.rename(tmp_path / "unplugged", tmp_path / "disk")
    back = cli("run", "--min-age=0")
    assert back.code == 0
    assert re.search(r"recovered after \d+ s, 4 runs\.", back.err), back.err
    assert cli("run", "--min-age=0").err == ""  # and then quiet again


def test_outage_rules():
    problem = outage.Problem(outage.UNREACHABLE, outage.UNREACHABLE, "the server is down")
    first = outage.judge({}, [problem], 1000.0, checked_roots=[], server_checked=False)
    assert first.started == (problem,) and not first.quiet
    second = outage.judge(first.state, [problem], 2000.0, checked_roots=[],
                          server_checked=False)
    assert second.quiet == {"the server is down"} and not second.started
    # A tick with nothing to send did not ask the server: the outage is not over.
    idle = outage.judge(second.state, [], 3000.0, checked_roots=[], server_checked=False)
    assert idle.recovered == () and idle.state == second.state
    over = outage.judge(idle.state, [], 1000.0 + 3 * 3600 + 600, checked_roots=[],
                        server_checked=True)
    assert over.recovered == ("oort-sync: server unreachable: recovered after 3 h 10 min, "
                              "2 runs.",)
    assert over.state == {"ongoing": {}}
    assert [outage.duration(s) for s in (5, 300, 3 * 3600, 90000)] == [
        "5 s", "5 min", "3 h", "1 d 1 h"]


# --- reasons without URLs -------------------------------------------------------------


def test_failure_reasons_group_without_urls(cli, home, logged_in, sandbox, tmp_path):
    root = many(tmp_path / "data", 6)
    logged_in(root, retries=0)
    sandbox.faults.error_rate = 1.0
    sandbox.faults.paths = r"/datafiles/$"
    assert cli("run", "--min-age=0", "--json-log").code == 1
    folder = json.loads(cli("status", "--json").out)["folders"][0]
    failed = [r for r in folder["reasons"] if r["status"] == "failed"]
    assert len(failed) <= 3 and sum(r["files"] for r in failed) == 6  # 500, 502, 503
    assert all(re.fullmatch(r"server error 50\d", r["reason"]) for r in failed)
    assert "http" not in cli("status").out.split("Config:")[0].replace(sandbox.url, "")
    details = [json.loads(line) for line in home.log_file.read_text().splitlines()]
    assert any(sandbox.url in line.get("detail", "") or "/datafiles/" in line.get("detail", "")
               for line in details)


def test_reason_classes():
    from oort_lib import errors
    from oort_lib.run.reasons import classify

    def remote(kind, message, status=None):
        return kind(message, status)

    cases = [
        (remote(errors.TransientError, "POST /datasets/abc/datafiles/: Service down", 503),
         "server error 503"),
        (remote(errors.TransientError, "https://api.x.io: connection failed "
                "(ConnectionResetError(104, 'Connection reset by peer'))"), "connection reset"),
        (remote(errors.TransientError, "https://api.x.io: connection failed (refused)"),
         "connection refused"),
        (remote(errors.TransientError, "https://api.x.io: no answer within 60 s"),
         "no answer within 60 s"),
        (remote(errors.PermanentError, "POST /datasets/1b2c/datafiles/: file: too large", 400),
         "refused by the server (400: file: too large)"),
        (remote(errors.TransientError, "GET /x/: Request was throttled.", 429),
         "server busy (429 too many requests)"),
        (remote(errors.PermanentError, "see https://api.x.io/datasets/1/ for details"),
         "see the server for details"),
    ]
    for exc, reason in cases:
        assert classify(exc) == reason


# --- config edits that respect the user ------------------------------------------------

COMMENTED = """\
# My observatory's oort-sync settings.
# Edited by hand on 2026-10-01.

[oort-sync]
# the sandbox for now
api = {api}
; two is enough for the Pi
jobs = 2
retries = 3
backoff_base = 0.01
backoff_max = 0.2
retry_delay = 0

# The main camera.
[folder 1]
path = {first}
; the capture PC writes local time
timezone = Europe/Paris
"""


def test_commented_config_survives_watch_unwatch_and_login(cli, home, sandbox, tmp_path,
                                                           monkeypatch):
    import io

    first = many(tmp_path / "first", 1)
    second = many(tmp_path / "second", 1)
    configure(home, sandbox.url, sandbox.seed.upload_key)
    text = COMMENTED.format(api=sandbox.url, first=first)
    home.config_file.write_text(text)
    assert cli("watch", second, "-y").code == 0
    after = home.config_file.read_text()
    assert after.startswith(text.rstrip("\n"))  # every line, comment and blank kept
    assert f"[folder 2]\npath = {second}" in after
    assert cfg.load_settings(home).folders[0].timezone == "Europe/Paris"
    assert cli("unwatch", second).code == 0
    assert home.config_file.read_text().rstrip("\n") == text.rstrip("\n")
    assert cli("unwatch", first).code == 0
    left = home.config_file.read_text()
    assert "# the sandbox for now" in left and "; two is enough for the Pi\njobs = 2" in left
    assert "[folder 1]" not in left
    # A real login (the seeded user and key), to another address of the same server (its
    # /api prefix, as Arcsecond.local serves it): login must rewrite the api line.
    home.credentials_file.unlink()
    monkeypatch.setattr("sys.stdin", io.StringIO(sandbox.seed.upload_key + "\n"))
    login = cli("login", f"--api={sandbox.url}/api", f"--username={sandbox.seed.username}",
                "--key-stdin")
    assert login.code == 0, login.err
    assert home.credentials_file.exists()
    again = home.config_file.read_text()
    assert f"api = {sandbox.url}/api\n" in again  # written, and nothing else changed:
    assert again == left.replace(f"api = {sandbox.url}\n", f"api = {sandbox.url}/api\n"), again
    assert "# My observatory's oort-sync settings." in again and "; two is enough" in again


# --- first run ------------------------------------------------------------------------


def test_deferred_files_are_explained_with_when_they_are_due(cli, logged_in, tmp_path):
    root = many(tmp_path / "data", 3)  # just written: younger than min_age
    logged_in(root)
    before = time.time()
    result = cli("run", "-v", "--min-age=600")
    assert result.code == 0
    line = next(x for x in result.err.splitlines() if "modified less than" in x)
    assert line.startswith("3 files modified less than 600 s ago wait for the next run "
                           "(min_age); all due from ")
    due = datetime.strptime(line.rsplit(" ", 1)[1].rstrip("."), "%H:%M:%S").time()
    expected = datetime.fromtimestamp(before + 600)
    assert abs((datetime.combine(expected.date(), due) - expected).total_seconds()) < 60
    plan = cli("run", "--dry-run", "--min-age=600").out
    assert "3 files modified less than 600 s ago" in plan


# --- filters --------------------------------------------------------------------------


@pytest.mark.parametrize("pattern, relpath, is_folder, excluded", [
    ("*.tmp", "a.tmp", False, True),
    ("*.tmp", "deep/down/a.tmp", False, True),
    ("*.tmp", "a.fits", False, False),
    ("processed", "processed", True, True),
    ("processed", "M31/processed", True, True),
    ("processed/", "processed", False, False),  # folders only
    ("processed/", "M31/processed", True, True),
    ("WBPP/calibrated", "WBPP/calibrated", True, True),
    ("WBPP/calibrated", "x/WBPP/calibrated", True, False),  # anchored at the folder
    ("/master", "master", True, True),
    ("/master", "M31/master", True, False),
    ("**/registered/*.xisf", "a/b/registered/x.xisf", False, True),
    ("**/registered/*.xisf", "registered/x.xisf", False, True),
    ("*/master/*.xisf", "M31/master/m.xisf", False, True),
    ("*/master/*.xisf", "a/M31/master/m.xisf", False, False),  # * stays within a name
    ("Light_[0-4]*.fits", "n/Light_3_x.fits", False, True),
    ("Light_[0-4]*.fits", "n/Light_7_x.fits", False, False),
])
def test_exclude_globs(pattern, relpath, is_folder, excluded):
    from oort_lib.local.exclude import matcher

    assert (matcher([pattern])(relpath, is_folder) == pattern) is excluded


def test_exclude_patterns_that_make_no_sense_are_refused():
    from oort_lib.errors import ConfigError
    from oort_lib.local.exclude import check

    for bad in ("", "*", "../other", "C:/data"):
        with pytest.raises(ConfigError):
            check([bad])
    assert check(["*.tmp", " *.tmp ", "a\\b"]) == ("*.tmp", "a/b")


def test_excluded_folders_are_not_entered_and_shown_in_plan_and_explain(
        cli, home, logged_in, sandbox, tmp_path, monkeypatch):
    root = many(tmp_path / "data", 3)
    many(root / "WBPP" / "calibrated", 2)
    (root / "frame.fits.tmp").write_bytes(b"x" * 10)
    write_fits(root / "night0" / "stack.tmp.fits", {"DATE-OBS": "2021-03-10T23:00:00"})
    logged_in()
    watch = cli("watch", root, "-y", "--exclude=WBPP/calibrated", "--exclude=*.tmp",
                "--exclude=*.tmp.fits")
    assert watch.code == 0 and "Excluded: WBPP/calibrated  *.tmp  *.tmp.fits" in watch.out
    assert cfg.load_settings(home).folders[0].exclude == (
        "WBPP/calibrated", "*.tmp", "*.tmp.fits")
    entered = []
    real_scandir = os.scandir
    monkeypatch.setattr(os, "scandir", lambda p=".": entered.append(str(p)) or real_scandir(p))
    plan = json.loads(cli("run", "--dry-run", "--min-age=0", "--json").out)
    assert not [p for p in entered if "calibrated" in p]  # never listed
    assert plan["totals"]["files"] == 3
    assert {(e["path"], e["reason"]) for e in plan["excluded"]} == {
        ("WBPP/calibrated", "excluded by WBPP/calibrated"),
        ("frame.fits.tmp", "excluded by *.tmp"),
        ("night0/stack.tmp.fits", "excluded by *.tmp.fits")}
    text = cli("run", "--dry-run", "--min-age=0").out
    assert "Excluded (--exclude" in text and "WBPP/calibrated: excluded by WBPP/calibrated" in text
    monkeypatch.setattr(os, "scandir", real_scandir)
    assert cli("run", "--min-age=0").code == 0
    assert len(sandbox.objects("datafiles")) == 3
    explained = json.loads(cli("explain", root / "WBPP/calibrated/night0/frame_000.fits",
                               "--json").out)[0]
    assert explained["skipped"].startswith("excluded by WBPP/calibrated")
    status = json.loads(cli("status", "--json").out)["folders"][0]
    assert status["counts"]["skipped"] == 0  # excluded files are not recorded


# --- bandwidth ------------------------------------------------------------------------


def test_rates_and_timetables():
    from oort_lib.errors import ConfigError
    from oort_lib.run import bandwidth as bw

    assert bw.parse_rate("512k") == 512 * 1024 and bw.parse_rate("4M") == 4 * 1024**2
    assert bw.parse_rate("1.5M") == 1.5 * 1024**2 and bw.parse_rate("100") == 100 * 1024
    assert bw.parse_rate("off") is None and bw.parse_rate("0") is None
    table = bw.parse("08:00,off 19:00,1M 23:30,off")
    assert table == ((480, None), (1140, 1024**2), (1410, None))
    assert bw.rate_at(table, 7 * 60) is None  # before 08:00: the last entry of the day
    assert bw.rate_at(table, 20 * 60) == 1024**2 and bw.rate_at(table, 23 * 60 + 45) is None
    assert bw.rate_at(bw.parse("01:00,256k 06:00,off"), 0) is None
    assert bw.describe(table) == "from 08:00 no limit, from 19:00 1MB/s, from 23:30 no limit"
    for bad in ("fast", "12x", "25:00,1M", "08:00 19:00,1M", "8h,1M"):
        with pytest.raises(ConfigError):
            bw.parse(bad)


def test_limiter_holds_the_rate_across_workers():
    """Four workers take 64 kB chunks at once (the clock stands still): the shared bucket
    schedules every byte of all of them at the rate, so the last chunk may only leave
    when the total at the cap has had time to go (the benchmark measures it for real)."""
    from oort_lib.run import bandwidth as bw

    waits: list[float] = []
    limiter = bw.Limiter(bw.parse("512k"), clock=lambda: 100.0, sleep=waits.append)
    workers = [threading.Thread(target=lambda: [limiter.take(65536) for _ in range(64)])
               for _ in range(4)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    sent = 4 * 64 * 65536
    assert max(waits) == pytest.approx(sent / (512 * 1024) - bw.BURST_SECONDS)
    assert len(waits) == 4 * 64 - 2  # the first 0.25 s worth (2 chunks) go at once
    evening = bw.Limiter(bw.parse("19:00,1M 23:30,off"), minute=lambda: 20 * 60)
    assert evening.rate() == 1024**2
    night = bw.Limiter(bw.parse("19:00,1M 23:30,off"), minute=lambda: 23 * 60 + 31)
    assert night.rate() is None
    night.take(10**9)  # no limit: returns at once


def test_bwlimit_paces_a_real_run(cli, home, logged_in, sandbox, tmp_path):
    root = tmp_path / "data"
    for index in range(4):
        write_fits(root / f"f{index}.fits", {"DATE-OBS": "2021-03-10T23:00:00"},
                   shape=(256, 256))  # 4 x 256 kB
    logged_in(root, bwlimit="off")
    assert cfg.load_settings(home).bwlimit == "off"
    started = time.monotonic()
    assert cli("run", "--min-age=0", "--bwlimit=128k", "--jobs=4").code == 0
    elapsed = time.monotonic() - started
    assert len(sandbox.objects("datafiles")) == 4
    assert elapsed > 2.0  # 540 kB at 128 KiB/s: some 4 s (generous lower bound)
    bad = cli("run", "--bwlimit=fast")
    assert bad.code == 2 and "bandwidth 'fast'" in bad.err


# --- Oort 1.x -------------------------------------------------------------------------

OORT1 = """\
[watch-folder-a1b2c3]
username = astro
upload_key = {key}
subdomain =
role =
path = {personal}
telescope = {personal_telescope}
zip = False
api = main

[watch-folder-d4e5f6]
username = astro
upload_key = {key}
subdomain = {org}
role = admin
path = {observatory}
telescope_uuid = {telescope}
telescope_name = Robot Refractor 1
zip = False
api = main

[watch-folder-0a0b0c]
username = astro
upload_key = {key}
subdomain =
path = {gone}
telescope =
zip = False

[watch-folder-999999-tests]
path = /tmp/oort-tests
"""


def test_import_oort_1x_config(cli, home, sandbox, tmp_path):
    seed = sandbox.seed
    personal, observatory = many(tmp_path / "backyard", 2), many(tmp_path / "observatory", 2)
    oort_dir = tmp_path / "dot-oort"
    oort_dir.mkdir()
    config = oort_dir / "config.ini"
    config.write_text(OORT1.format(key=seed.upload_key, personal=personal,
                                   personal_telescope=seed.personal_telescope_uuid,
                                   org=seed.organisation, observatory=observatory,
                                   telescope=seed.telescope_uuid, gone=tmp_path / "unplugged"))
    before = config.read_bytes(), config.stat().st_mtime_ns
    cfg.save_settings(home, cfg.Settings(api=sandbox.url, retries=1, backoff_base=0.01))
    result = cli("import-oort", f"--oort-dir={oort_dir}", "-y")
    assert result.code == 0, result.err
    assert "3 watched folder(s)" in result.out and "nothing there is changed" in result.out
    assert "from " + str(config) in result.out and "verified" in result.out
    assert f"Not imported: {tmp_path / 'unplugged'}: no such folder." in result.out
    assert "oort-tests" not in result.out
    settings = cfg.load_settings(home)
    watched = {f.path: f for f in settings.folders}
    assert set(watched) == {str(personal), str(observatory)}
    assert watched[str(observatory)].organisation == seed.organisation
    assert watched[str(observatory)].telescope == seed.telescope_uuid
    assert watched[str(personal)].telescope == seed.personal_telescope_uuid
    assert (config.read_bytes(), config.stat().st_mtime_ns) == before  # untouched
    assert home.credentials_file.exists()
    assert cli("run", "--min-age=0").code == 0
    assert len(sandbox.objects("datafiles")) == 4
    again = cli("import-oort", f"--oort-dir={oort_dir}", "-y")  # nothing new
    assert again.code == 2 and "already watched" in again.out


def test_import_oort_without_config(cli, tmp_path):
    result = cli("import-oort", f"--oort-dir={tmp_path}")
    assert result.code == 2 and "no Oort-Cloud 1.x config here" in result.err


# --- report links ---------------------------------------------------------------------


def test_report_links_to_the_objects_on_the_server(cli, home, logged_in, sandbox, tmp_path):
    import html as htmllib

    import requests

    root = tmp_path / "data"
    for index in range(2):
        write_fits(root / "M31" / f"a{index}.fits", {"DATE-OBS": "2021-03-10T23:00:00"})
    logged_in(root, retries=0)
    assert cli("run", "--min-age=0").code == 0
    write_fits(root / "M31" / "late.fits", {"DATE-OBS": "2021-03-10T23:30:00"})
    sandbox.faults.error_rate = 1.0
    sandbox.faults.paths = r"/datafiles/$"
    assert cli("run", "--min-age=0").code == 1
    out = tmp_path / "report.html"
    assert cli("report", f"--output={out}").code == 0
    page = out.read_text()
    links = [htmllib.unescape(x) for x in re.findall(r'<a class="server" href="([^"]+)"', page)]
    nightlog = sandbox.objects("nightlogs")[0]["uuid"]
    dataset = sandbox.objects("datasets")[0]["uuid"]
    assert f"{sandbox.url}/#nightlog-{nightlog}" in links
    assert links.count(f"{sandbox.url}/#dataset-{dataset}") == 3  # table, failure, nights
    served = requests.get(sandbox.url + "/", timeout=10).text
    assert f'id="nightlog-{nightlog}"' in served and f'id="dataset-{dataset}"' in served


def test_web_addresses_per_kind_of_server():
    from oort_lib.views import weblinks as w

    cloud = w.site("https://api.arcsecond.io|astro|")
    assert w.night_log(cloud, "u1", "2021-03-10") == "https://www.arcsecond.io/nightlogs/u1"
    assert w.dataset(cloud, "d1") == "https://www.arcsecond.io/datasets/d1"
    portal = w.site("https://api.arcsecond.io|astro|robotland")
    assert w.night_log(portal, "u1", "2021-03-10") == (
        "https://robotland.arcsecond.io/nights/2021-03-10")
    assert w.dataset(portal, "d1") == "https://robotland.arcsecond.io/datasets/d1"
    local = w.site("http://nas.local:5555/api|astro|local")
    assert w.night_log(local, "u1", "2021-03-10") == "http://nas.local:5555/nights/2021-03-10"
    assert w.site("http://192.168.1.5:8800|astro|local").base == "http://192.168.1.5:5555"
    assert w.site("http://127.0.0.1:8765|astro|").kind == "sandbox"
    assert w.site(None) is None and w.site("https://example.org|a|") is None


def test_planning_shows_its_total_at_once(home, tmp_path):
    """A first plan over many files: the bar knows the total before reading a header."""
    from oort_lib.samples import make_bulk_tree

    root = make_bulk_tree(tmp_path / "data", 600)
    cfg.save_settings(home, cfg.Settings(folders=(cfg.Folder(str(root)),)))
    code, screen = run_in_terminal(["run", "--dry-run", "--min-age=0"], columns=80)
    assert code == 0, screen
    text = ANSI.sub("", screen)
    assert "planning: reading headers" in text and "| 0/600 [" in text
    bars = [s for s in re.split(r"[\r\n]", text) if "planning" in s]
    assert bars and max(len(s) for s in bars) <= 80
    assert "Plan: 600 files" in text
