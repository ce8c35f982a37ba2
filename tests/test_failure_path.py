"""One clean failure path: every trigger of issue 11 gets a plain line on stderr and its
documented exit code; a bug gets one line, its traceback in the log, and exit code 70."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import threading
import time

import pytest
from helpers import run_process

from oort_lib.errors import EXIT_SOFTWARE, LockHeld
from oort_lib.samples import write_fits
from oort_lib.state import config as cfg
from oort_lib.state import manifest as mf
from oort_lib.state import migrations
from oort_lib.state.lock import RunLock
from oort_lib.views.status import status


def night_file(path):
    return write_fits(path, {"DATE-OBS": "2021-06-01T22:00:00", "OBJECT": "M13"})


def test_internal_error_is_one_line_with_the_traceback_in_the_log(cli, home, monkeypatch):
    def bug(*args, **kwargs):
        raise KeyError("a bug")

    monkeypatch.setattr("oort_lib.views.render.status_lines", bug)
    result = cli("status")
    assert result.code == EXIT_SOFTWARE == 70
    assert len(result.err.strip().splitlines()) == 1 and "Traceback" not in result.err
    assert "internal error in `status`" in result.err and str(home.log_file) in result.err
    log = home.log_file.read_text()
    assert "Traceback (most recent call last)" in log and "KeyError: 'a bug'" in log


def test_internal_error_of_a_run_reaches_the_log(cli, home, logged_in, tmp_path, monkeypatch):
    night_file(tmp_path / "data" / "a.fits")
    logged_in(tmp_path / "data")

    def bug(*args, **kwargs):
        raise ZeroDivisionError("planning bug")

    monkeypatch.setattr("oort_lib.run.sync.make_plan", bug)
    result = cli("run", "--min-age=0")
    assert result.code == 70 and "Traceback" not in result.err
    assert "ZeroDivisionError: planning bug" in home.log_file.read_text()
    lock = RunLock(home.lock_file)
    lock.acquire()  # released on the way out
    lock.release()


def test_bad_zone_in_the_config_names_the_line(cli, home, tmp_path):
    home.config_dir.mkdir(parents=True)
    home.config_file.write_text(f"[oort-sync]\njobs = 2\n\n[folder 1]\npath = {tmp_path}\n"
                                "timezone = America/Santigo\n")
    for command in (("run",), ("status",), ("run", "--dry-run")):
        result = cli(*command)
        assert result.code == 2, result.err
        assert f"{home.config_file}, line 6" in result.err and "America/Santigo" in result.err
        assert "Traceback" not in result.err


def test_config_saved_with_a_bom_is_accepted(cli, home, tmp_path):
    home.config_dir.mkdir(parents=True)
    home.config_file.write_bytes(b"\xef\xbb\xbf[oort-sync]\r\njobs = 3\r\n\r\n[folder 1]\r\n"
                                 + f"path = {tmp_path}\r\n".encode())
    settings = cfg.load_settings(home)
    assert settings.jobs == 3 and settings.folders[0].path == str(tmp_path)
    assert cli("status").code == 0


def test_manifest_busy_waits_briefly_then_exits_75(cli, home, logged_in, tmp_path,
                                                   monkeypatch):
    night_file(tmp_path / "data" / "a.fits")
    logged_in(tmp_path / "data")
    assert cli("run", "--min-age=0").code == 0
    night_file(tmp_path / "data" / "b.fits")
    monkeypatch.setattr(mf, "BUSY_WAIT", 0.5)
    other = sqlite3.connect(home.manifest_file, isolation_level=None)
    other.execute("BEGIN EXCLUSIVE")  # an sqlite3 shell left in a transaction
    try:
        start = time.monotonic()
        result = cli("run", "--min-age=0")
        assert time.monotonic() - start < 20  # a deadline: the busy wait (0.5 s), bounded
        assert result.code == 75, result.err
        assert "kept busy by another program" in result.err and "damaged" not in result.err
        assert "Traceback" not in result.err
        # A reader is not held up by the writer: status opens the manifest read-only.
        assert cli("status").code == 0
    finally:
        other.execute("ROLLBACK")
        other.close()
    assert cli("run", "--min-age=0").code == 0


def test_manifest_of_a_newer_version_is_refused(cli, home, logged_in, tmp_path):
    night_file(tmp_path / "data" / "a.fits")
    logged_in(tmp_path / "data")
    assert cli("run", "--min-age=0").code == 0
    with sqlite3.connect(home.manifest_file) as db:
        db.execute("INSERT INTO migrations (name, applied_at) VALUES ('0099_future', 0)")
    before = home.manifest_file.read_bytes()
    for command in (("run", "--min-age=0"), ("status",), ("report", f"--output={tmp_path}/r.html")):
        result = cli(*command)
        assert result.code == 2, result.err
        assert "newer oort-sync" in result.err and "0099_future" in result.err
        assert "damaged" not in result.err and "Traceback" not in result.err
    assert home.manifest_file.read_bytes() == before


def test_read_only_commands_leave_an_old_manifest_as_it_is(cli, home, logged_in, tmp_path):
    night_file(tmp_path / "data" / "a.fits")
    logged_in(tmp_path / "data")
    home.state_dir.mkdir(parents=True)
    db = sqlite3.connect(home.manifest_file)
    import sqlite_utils

    migrations._m0001_initial(sqlite_utils.Database(db))
    db.execute("CREATE TABLE migrations (name TEXT PRIMARY KEY, applied_at FLOAT)")
    db.execute("INSERT INTO migrations VALUES ('0001_initial', 0)")
    db.commit()
    db.close()
    for command in (("status", "--json"), ("report", f"--output={tmp_path}/r.html"),
                    ("explain", str(tmp_path / "data" / "a.fits"))):
        result = cli(*command)
        assert result.code == 0, (command, result.err)
    with sqlite3.connect(home.manifest_file) as db:
        assert [r[0] for r in db.execute("SELECT name FROM migrations")] == ["0001_initial"]
    assert cli("run", "--min-age=0").code == 0  # the run migrates it, as before


def test_status_never_takes_the_run_lock(home, tmp_path):
    """Its probe took the lock for a moment: a run starting then exited 75."""
    settings = cfg.Settings()
    RunLock(home.lock_file).acquire().release()  # the lock file exists, as after a run
    done = threading.Event()
    refused = []

    def look():
        while not done.is_set():
            status(home, settings)

    reader = threading.Thread(target=look)
    reader.start()
    try:
        for _ in range(400):
            lock = RunLock(home.lock_file)
            try:
                lock.acquire()
            except LockHeld:
                refused.append(1)
                continue
            assert status(home, settings)["running"]["pid"] == os.getpid()
            lock.release()
    finally:
        done.set()
        reader.join()
    assert refused == []


def test_broken_pipe_is_quiet(home):
    home.state_dir.mkdir(parents=True)
    home.log_file.write_text("".join(f"2026-01-01 00:00:00 INFO line {n}\n"
                                     for n in range(20000)))
    proc = run_process("logs", "-n", "20000")
    first = proc.stdout.readline()
    proc.stdout.close()  # `| head -1`
    err = proc.stderr.read()
    proc.wait(timeout=30)
    assert first.startswith("2026-01-01")
    assert err == "" and proc.returncode == 0


@pytest.mark.parametrize("argv, phrase", [
    (("run", "--min-age=nan"), "--min-age=nan: not a finite number"),
    (("run", "--min-age=inf"), "not a finite number"),
    (("run", "--min-age=-5"), "must not be negative"),
    (("run", "--min-age=1e300"), "must be at most"),
    (("run", "--jobs=1000"), "--jobs=1000: must be at most 64"),
    (("run", "--jobs=two"), "not a whole number"),
    (("logs", "-n", "99999999999999999999"), "must be at most 1,000,000"),
    (("logs", "-n", "-3"), "must not be negative"),
    (("sandbox", "--port=99999"), "--port=99999: must be at most 65,535"),
    (("sandbox", "--page-size=0"), "at least 1"),
])
def test_numbers_are_validated(cli, home, argv, phrase):
    result = cli(*argv)
    assert result.code == 2, result.err
    assert phrase in result.err and "Traceback" not in result.err


def test_control_characters_in_file_names_are_escaped_in_the_text_log(cli, home, logged_in,
                                                                     tmp_path):
    forged = "x\x1b[2J\n2026-01-01 00:00:00 INFO uploaded forged.fits"
    night_file(tmp_path / "data" / forged)
    logged_in(tmp_path / "data")
    assert cli("run", "--min-age=0").code == 0
    lines = home.log_file.read_text().splitlines()
    assert not [line for line in lines if line.startswith("2026-01-01 00:00:00")]
    assert [line for line in lines if "x\\x1b[2J\\x0a2026" in line]
    assert "\x1b" not in home.log_file.read_text()


def test_blank_key_variable_is_ignored_with_a_warning(cli, home, logged_in, tmp_path,
                                                      monkeypatch, sandbox):
    night_file(tmp_path / "data" / "a.fits")
    logged_in(tmp_path / "data")
    monkeypatch.setenv("ARCSECOND_UPLOAD_KEY", " \n")
    result = cli("run", "--min-age=0")
    assert result.code == 0, result.err
    assert "$ARCSECOND_UPLOAD_KEY holds only blanks and is ignored" in result.err
    assert len(sandbox.objects("datafiles")) == 1


def test_non_utf8_folder_name_is_refused_plainly(cli, home, tmp_path):
    folder = tmp_path / os.fsdecode(b"caf\xe9")
    folder.mkdir()
    result = cli("watch", str(folder), "-y")
    assert result.code == 2 and "not valid UTF-8" in result.err
    assert "Traceback" not in result.err


def _home_on(tiny_disk, home, logged_in, tmp_path, monkeypatch) -> cfg.Paths:
    """A home on the small disk, logged in and watching a folder of one file."""
    monkeypatch.setenv("OORT_SYNC_HOME", str(tiny_disk / "home"))
    paths = cfg.resolve_paths()
    night_file(tmp_path / "data" / "a.fits")
    logged_in(tmp_path / "data")
    cfg.save_settings(paths, cfg.load_settings(home))
    return paths


def test_full_disk_is_called_full_not_damaged(cli, home, logged_in, tmp_path, tiny_disk,
                                              monkeypatch):
    paths = _home_on(tiny_disk, home, logged_in, tmp_path, monkeypatch)
    data = tmp_path / "data"
    paths.credentials_file.write_bytes(home.credentials_file.read_bytes())
    assert cli("run", "--min-age=0").code == 0
    for index in range(50):  # new files: new manifest rows
        (data / "more").mkdir(exist_ok=True)
        (data / "more" / f"f{index:03d}.fits").write_bytes((data / "a.fits").read_bytes())
    filler = tiny_disk / "filler"
    try:
        with open(filler, "wb") as handle:
            while True:
                handle.write(b"\0" * 4096)
                handle.flush()
    except OSError:
        pass  # full
    result = cli("run", "--min-age=0")
    assert result.code == 2, result.err
    assert "disk is full" in result.err and "damaged" not in result.err
    assert "Traceback" not in result.err and "Logging error" not in result.err
    filler.unlink()
    assert cli("run", "--min-age=0").code == 0  # nothing damaged indeed


def test_sqlite_full_is_called_full_not_damaged(home):
    """SQLite's own "database or disk is full", as a full disk gives it."""
    from oort_lib.errors import ManifestError

    with pytest.raises(ManifestError) as info:
        with mf.Manifest(home.manifest_file) as manifest:
            pages = manifest.conn.execute("PRAGMA page_count").fetchone()[0]
            manifest.conn.execute(f"PRAGMA max_page_count = {pages}")
            manifest.upsert_files("/r", ({"relpath": f"f{n}.fits" * 20, "status": "pending"}
                                         for n in range(5000)))
    assert "disk is full" in info.value.message and "damaged" not in info.value.message


def test_read_only_state_folder(cli, home, logged_in, tmp_path, tiny_disk, monkeypatch):
    """A state folder mounted read-only: a run says so plainly (nothing "damaged"), and
    status still reads the manifest."""
    paths = _home_on(tiny_disk, home, logged_in, tmp_path, monkeypatch)
    data = tmp_path / "data"
    credentials_bytes = home.credentials_file.read_bytes()
    paths.credentials_file.write_bytes(credentials_bytes)
    os.chmod(paths.credentials_file, 0o600)
    assert cli("run", "--min-age=0").code == 0
    night_file(data / "b.fits")
    made = subprocess.run(["mount", "-o", "remount,ro", str(tiny_disk)], capture_output=True)
    assert made.returncode == 0, made.stderr
    result = cli("run", "--min-age=0")
    assert result.code == 2, result.err
    assert "damaged" not in result.err and "Traceback" not in result.err
    assert "Read-only" in result.err or "read-only" in result.err
    status = cli("status", "--json")
    assert status.code == 0, status.err
    assert json.loads(status.out)["totals"]["uploaded"] == 1


def test_non_ascii_key_on_stdin_is_refused_plainly(cli, home, monkeypatch):
    import io

    monkeypatch.setattr("sys.stdin", io.StringIO("ключ-5a4db0c5e7e57ca11ab1e0000c0de\n"))
    result = cli("login", "--api=http://127.0.0.1:9", "--key-stdin")
    assert result.code == 3, result.err
    assert "non-ASCII" in result.err and "ключ" not in result.err
    assert "Traceback" not in result.err


def test_a_log_failure_is_not_remembered_by_the_next_command(cli, home, tmp_path,
                                                            monkeypatch):
    """Two commands in one process (tests, a wrapper): the second one's log is its own."""
    from oort_lib.state import logfile

    logfile._LogFile.failed = OSError(17, "File exists", str(tmp_path / "elsewhere"))
    test_internal_error_is_one_line_with_the_traceback_in_the_log(cli, home, monkeypatch)
    assert logfile.write_failure() is None
