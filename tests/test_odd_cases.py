"""The smaller findings of issue 19: `--` on the command line, a transient failure
waiting for its retry, the messages and exit codes of odd cases, `report --output=-`,
and an Oort-Cloud config with a BOM or that is a FIFO."""

from __future__ import annotations

import errno
import io
import json
import os
import sqlite3
import subprocess

from fitsfiles import write_frame
from helpers import configure, run_process
from helpers import manifest_row as status_of
from hostile import Hostile

from oort_lib.state import config as cfg

KEY = "0dd0dd5ecretc0ffee0123456789abcd"
QUICK = {"connect_timeout": 0.5, "read_timeout": 0.5, "retries": 1, "backoff_base": 0.01,
         "backoff_max": 0.2}
NIGHT = {"DATE-OBS": "2021-06-01T22:00:00", "OBJECT": "M31"}


def frame(path):
    return write_frame(path, NIGHT)


# --- the command line ----------------------------------------------------------------------


def test_double_dash_ends_the_options(cli, home, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "-y").mkdir()
    (tmp_path / "-h").mkdir()
    result = cli("watch", "-y", "--", "-y")
    assert result.code == 0, result.err
    assert [f.path for f in cfg.load_settings(home).folders] == [str(tmp_path / "-y")]
    # After `--`, -h is a folder, not a request for help.
    helpless = cli("watch", "-y", "--", "-h")
    assert helpless.code == 0 and "Usage" not in helpless.out, helpless.err
    assert cli("unwatch", "--", "-y").code == 0
    nothing = cli("watch", "--")
    assert nothing.code == 2 and "no FOLDER after `--`" in nothing.err


# --- a transient failure waiting for its retry ---------------------------------------------


def test_transient_local_failure_exits_1_while_it_waits(cli, home, logged_in, sandbox,
                                                        tmp_path, monkeypatch):
    """The README: exit 1 "while it lasts", so also in the runs inside its backoff, which
    name it; a permanent failure is said once, then quiet until the file changes."""
    import builtins

    from oort_lib.local import headers

    root = tmp_path / "data"
    victim = frame(root / "M31" / "light_001.fits")
    frame(root / "M31" / "light_002.fits")
    logged_in(root, retry_delay=3600)
    real_open = builtins.open

    def failing_open(path, *args, **kwargs):
        if os.fspath(path) == str(victim):
            raise OSError(errno.EIO, "Input/output error", os.fspath(path))
        return real_open(path, *args, **kwargs)

    with monkeypatch.context() as patch:
        patch.setattr(headers, "open", failing_open, raising=False)
        first = cli("run")
    assert first.code == 1 and "light_001.fits: unreadable" in first.err, first.err
    assert status_of(home, "light_001.fits")["transient"] == 1
    waiting = cli("run")  # inside its backoff (an hour): not read again, still failing
    assert waiting.code == 1, waiting.err
    assert "1 file failed earlier and waits for its retry at " in waiting.err
    assert f"{victim}: unreadable: Input/output error" in waiting.err
    assert cli("run", "--json").code == 1
    # Permanent: said once (with what to do), then quiet.
    sandbox.faults.upload_refusal = "storage quota reached"
    frame(root / "M31" / "light_003.fits")
    refused = cli("run", "-v")
    assert refused.code == 1
    assert ("1 file failed (not retried until the file changes, or `oort-sync run "
            "--retry-failed`):") in refused.err
    assert "light_003.fits: refused by the server (400: storage quota reached)" in refused.err
    again = cli("run")
    assert again.code == 1 and "light_003" not in again.err  # only the transient one


def test_refused_uploads_are_not_counted_as_uploaded_bytes(cli, home, logged_in, sandbox,
                                                           tmp_path):
    root = tmp_path / "data"
    frame(root / "M31" / "a.fits")
    frame(root / "M31" / "b.fits")
    logged_in(root)
    sandbox.faults.upload_refusal = "storage quota reached"
    result = cli("run", "-v")
    assert result.code == 1
    assert "0 files uploaded (0 B), 2 failed" in result.err, result.err
    assert "(retried later)" not in result.err  # refused: a permanent failure
    as_json = cli("run", "--json", "--retry-failed")
    summary = json.loads(as_json.out)
    assert summary["uploaded"] == 0 and summary["bytes"] == 0 and summary["bytes_sent"] > 0
    sandbox.faults.clear()
    uploaded = cli("run", "-v", "--retry-failed")
    size = (root / "M31" / "a.fits").stat().st_size * 2
    assert f"2 files uploaded ({size / 1000:.1f} kB)" in uploaded.err, uploaded.err
    with sqlite3.connect(home.manifest_file) as db:
        assert [b for b, in db.execute("SELECT bytes FROM runs ORDER BY id")] == [0, 0, size]


# --- messages and exit codes of odd cases --------------------------------------------------


def test_login_through_a_trickling_server_is_a_server_problem(cli, home, monkeypatch):
    with Hostile("trickle", delay=0.3) as server:
        cfg.save_settings(home, cfg.Settings(**QUICK))
        monkeypatch.setattr("sys.stdin", io.StringIO(KEY + "\n"))
        result = cli("login", f"--api={server.url}", "--key-stdin")
    assert result.code == 4, result.err
    assert result.err.startswith("oort-sync: Not logged in: the server gave no usable answer")
    assert "no complete answer within 1 s" in result.err and "Try again later" in result.err
    assert not home.credentials_file.exists()


def test_telescopes_behind_a_next_loop_is_a_server_problem(cli, home):
    with Hostile("next-loop") as server:
        configure(home, server.url, KEY, **QUICK)
        result = cli("telescopes")
    assert result.code == 4, result.err
    assert "Telescopes of your account: the server gave no usable answer" in result.err
    assert "pages never end" in result.err


def test_telescope_list_with_a_missing_page(cli, home):
    with Hostile("page-404") as server:
        configure(home, server.url, KEY, **QUICK)
        personal = cli("telescopes")
        known = cli("telescopes", "-o", "known")
        unknown = cli("telescopes", "-o", "nowhere")
    assert personal.code == 4, personal.err
    assert "None" not in personal.err and "does not exist" not in personal.err
    assert "Telescopes of your account: the server answered 404 for a page" in personal.err
    assert known.code == 4 and "organisation known: the server answered 404" in known.err
    assert unknown.code == 2 and "Organisation 'nowhere' does not exist" in unknown.err


def test_a_trickling_answer_is_said_in_a_sentence(cli, home, tmp_path):
    from oort_lib.errors import TransientError
    from oort_lib.run.reasons import classify

    exc = TransientError("https://api.x.io: no complete answer within 70 s (the server "
                         "trickles)")
    assert classify(exc) == "the server gave no complete answer within 70 s (it trickles)"
    assert classify(TransientError("https://api.x.io: odd")) == "the server: odd"
    frame(tmp_path / "data" / "M31" / "a.fits")
    with Hostile("trickle", delay=0.3) as server:
        configure(home, server.url, KEY, folders=[cfg.Folder(str(tmp_path / "data"))],
                  **QUICK)
        result = cli("run")
    assert "a.fits: the server gave no complete answer within 1 s" in result.err, result.err


def test_manifest_without_its_runs_table_is_damaged(cli, home, logged_in, sandbox, tmp_path):
    frame(tmp_path / "data" / "M31" / "a.fits")
    logged_in(tmp_path / "data")
    assert cli("run").code == 0
    with sqlite3.connect(home.manifest_file) as db:
        db.execute("DROP TABLE runs")
    result = cli("run")
    assert result.code == 2, result.err
    assert "the manifest is damaged (no such table: runs)" in result.err
    assert "--rebuild-manifest" in result.err and "writable" not in result.err
    assert cli("run", "--rebuild-manifest").code == 0


# --- report and import-oort ----------------------------------------------------------------


def test_report_to_standard_output(cli, home, logged_in, sandbox, tmp_path, monkeypatch):
    frame(tmp_path / "data" / "M31" / "a.fits")
    logged_in(tmp_path / "data")
    assert cli("run").code == 0
    monkeypatch.chdir(tmp_path)
    result = cli("report", "--output=-")
    assert result.code == 0, result.err
    assert result.out.lstrip().lower().startswith("<!doctype html")
    assert "M31" in result.out and result.out.rstrip().endswith("</html>")
    assert not (tmp_path / "-").exists()


OORT1 = """[watch-folder-a1b2c3]
username = astro
upload_key = {key}
subdomain =
path = {path}
telescope_uuid = {telescope}
zip = False
"""


def test_import_oort_accepts_a_config_saved_with_a_bom(cli, home, sandbox, tmp_path):
    data = tmp_path / "backyard"
    frame(data / "M31" / "a.fits")
    oort_dir = tmp_path / "dot-oort"
    oort_dir.mkdir()
    text = OORT1.format(key=sandbox.seed.upload_key, path=data,
                        telescope=sandbox.seed.personal_telescope_uuid)
    (oort_dir / "config.ini").write_bytes(b"\xef\xbb\xbf" + text.encode())
    cfg.save_settings(home, cfg.Settings(api=sandbox.url, retries=1, backoff_base=0.01))
    result = cli("import-oort", f"--oort-dir={oort_dir}", "-y")
    assert result.code == 0, result.err
    assert [f.path for f in cfg.load_settings(home).folders] == [str(data)]


def test_import_oort_refuses_a_fifo_at_once(home, tmp_path):
    oort_dir = tmp_path / "dot-oort"
    oort_dir.mkdir()
    os.mkfifo(oort_dir / "config.ini")
    proc = run_process("import-oort", f"--oort-dir={oort_dir}", "-y",
                       env={"OORT_SYNC_HOME": str(tmp_path / "home")})
    try:
        out, err = proc.communicate(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        raise AssertionError("import-oort blocked on a FIFO") from None
    assert proc.returncode == 2, err
    assert "config.ini is a FIFO, not a regular file" in err and "Traceback" not in err


def test_a_2xx_that_is_not_json_or_says_error_is_no_refusal():
    from oort_lib.errors import NotJson, TransientError
    from oort_lib.run.reasons import NOT_JSON, classify

    page = NotJson("POST /datafiles/: the server answered 200 with a body that is not JSON "
                   "(a proxy page?)", 200)
    assert classify(page) == NOT_JSON == "answer not understood (not JSON; a proxy page?)"
    body = TransientError("POST /datafiles/: the server answered 200 with an error: quota",
                          200)
    assert classify(body) == "the server answered 200 with an error: quota"
    assert classify(TransientError("POST /x/: bad", 400)) == "refused by the server (400: bad)"
