"""A hostile or broken server: the key appears nowhere, no call outlives its deadline, the
lock is released, stderr holds no traceback, and the exit code is the documented one.

Each scenario is a mode of tests/hostile.py; every output channel (stdout, stderr, the log,
the manifest and the whole state folder, `status --json`, `logs`, the report) is grepped
for the key. These tests back the Security and Reliability tables of the README.
"""

from __future__ import annotations

import io
import json
import os
import signal
import sqlite3
import threading
import time

import pytest
from fitsfiles import one_file
from helpers import configure, lock_is_free, run_process
from hostile import KEY, QUICK, Hostile, wait_for

from oort_lib.arcsecond.client import Client
from oort_lib.errors import Aborted, Redirected, TransientError
from oort_lib.state import config as cfg
from oort_lib.views import ping


def assert_no_key(home, tmp_path, cli, *results, key: str = KEY) -> None:
    """The key (or a recognisable part of it) is in no output, no state file, no report."""
    status = cli("status", "--json")
    logs = cli("logs", "-n", "500")
    report = cli("report", f"--output={tmp_path / 'report.html'}")
    texts = [r.out + r.err for r in (*results, status, logs, report)]
    texts.append((tmp_path / "report.html").read_text())
    files = [p for p in home.state_dir.rglob("*") if p.is_file()]
    assert home.log_file in files
    needle = key[4:-4]  # a key quoted, wrapped or cut is still found
    for text in texts:
        assert needle not in text
        assert "Traceback" not in text
    for path in files:
        assert needle.encode() not in path.read_bytes(), path
    assert status.code == 0 and json.loads(status.out)["schema"] == 1


SCENARIOS = [
    # mode, exit code, a phrase of stderr
    ("redirect", 2, "redirects to 127.0.0.1:"),
    ("redirect-307", 2, "Redirects are not followed"),
    ("trickle", 1, "no complete answer within 1 s"),
    ("trickle-body", 1, "no complete answer within 1 s"),
    ("next-loop", 1, "pages never end"),
    ("huge", 1, "larger than 16 MiB"),
    ("echo-key", 3, "refused the key"),
    ("error-200", 1, "answered 200 with an error"),
    # Reasons on screen are classified; the server's own words go to the log.
    ("retry-after", 1, "server error 503"),
]


@pytest.mark.parametrize("mode, code, phrase", SCENARIOS, ids=[s[0] for s in SCENARIOS])
def test_hostile_server_run(cli, home, tmp_path, mode, code, phrase):
    root = one_file(tmp_path / "data")
    with Hostile(delay=0.3) as evil, Hostile(mode, delay=0.3, evil=evil) as server:
        configure(home, server.url, KEY, folders=[cfg.Folder(str(root))], **QUICK)
        start = time.monotonic()
        result = cli("run", "--min-age=0")
        took = time.monotonic() - start
        assert result.code == code, result.err
        assert phrase in result.err
        assert took < 30, took  # every request has a deadline, retries a cap
        assert server.seen and all(k == f"Key {KEY}" for _, _, k in server.seen)
        assert evil.seen == []  # a redirect is never followed, with or without the key
        assert lock_is_free(home)
        assert_no_key(home, tmp_path, cli, result)
        if mode == "retry-after":
            assert "down for maintenance" in home.log_file.read_text()
    if code == 1:
        with sqlite3.connect(home.manifest_file) as db:
            (status, transient), = db.execute("SELECT status, transient FROM files")
        assert status == "failed"
        # Only a loop of pages is the server's fault forever; the others pass.
        assert transient == (0 if mode == "next-loop" else 1)


def test_long_retry_after_is_capped_and_logged(caplog):
    with Hostile("retry-after") as server:
        client = Client(server.url, KEY, retries=1, backoff_base=0.01, backoff_max=5)
        start = time.monotonic()
        with caplog.at_level("INFO", logger="oort_sync.api"):
            with pytest.raises(TransientError, match="maintenance"):
                client.request("GET", "/telescopes/")
        assert time.monotonic() - start < 60  # a deadline: one capped 5 s wait, not 86,400 s
        assert len(server.seen) == 2
        waits = [r for r in caplog.records if r.levelname == "INFO" and "retrying in 5.00 s"
                 in r.getMessage()]
        assert waits and KEY not in waits[0].getMessage()


def test_trickling_answer_hits_the_total_deadline():
    """A byte every 0.3 s never trips a 0.5 s read timeout; the total deadline stops it."""
    with Hostile("trickle-body", delay=0.3) as server:
        client = Client(server.url, KEY, connect_timeout=0.5, read_timeout=1.0, retries=0)
        start = time.monotonic()
        with pytest.raises(TransientError, match="no complete answer within 1.5 s"):
            client.request("GET", "/telescopes/")
        # The 1.5 s deadline, with a wide margin for a busy host (the trickle lasts 50 min).
        assert time.monotonic() - start < 20


def test_stop_cuts_a_request_within_a_second():
    import threading

    stop = threading.Event()
    with Hostile("trickle", delay=0.3) as server:
        client = Client(server.url, KEY, read_timeout=60, retries=3, stop=stop)
        stopped: list[float] = []
        threading.Timer(0.5, lambda: (stopped.append(time.monotonic()), stop.set())).start()
        with pytest.raises(Aborted):
            client.request("GET", "/telescopes/")
        # Cut within the watchdog's tick (0.1 s) of the stop; bounded with a wide margin
        # for a busy host, far below the 60 s read timeout and the retries.
        assert stopped and time.monotonic() - stopped[0] < 5


def test_huge_answer_is_not_read_whole():
    with Hostile("huge", huge_bytes=4 << 20) as server:
        client = Client(server.url, KEY, retries=0)
        client.max_answer = 1 << 20
        with pytest.raises(TransientError, match="larger than 1 MiB"):
            client.list("/telescopes/")


def test_redirect_names_the_target_and_sends_nothing_there():
    with Hostile() as evil, Hostile("redirect", evil=evil) as server:
        client = Client(server.url, KEY, retries=2)
        with pytest.raises(Redirected) as info:
            client.list("/telescopes/")
        assert evil.url.split("//")[1] in info.value.message
        assert evil.seen == [] and len(server.seen) == 1


def test_redirect_on_an_upload_is_seen_at_once(tmp_path):
    """A proxy answering 307 before reading the upload, and then waiting: the send that
    stalls is ended and the redirect read, not the whole read timeout waited."""
    from oort_lib.arcsecond.body import FileBody

    big = tmp_path / "big.fits"
    big.write_bytes(b"\0" * (40 << 20))  # more than the socket buffers hold
    with Hostile() as evil, Hostile("redirect-hold", evil=evil) as server:
        client = Client(server.url, KEY, read_timeout=30, retries=2)
        start = time.monotonic()
        with pytest.raises(Redirected):
            client.send_file("/datafiles/", lambda: FileBody(str(big), "big.fits"))
        assert time.monotonic() - start < 25  # a deadline: not the 30 s read timeout
        assert evil.seen == [] and len(server.seen) == 1


def test_two_hundred_with_an_error_body_is_transient():
    with Hostile("error-200") as server:
        client = Client(server.url, KEY, retries=0)
        with pytest.raises(TransientError) as info:
            client.request("POST", "/nightlogs/", json={}, idempotent=False)
        assert KEY not in info.value.message and "****" in info.value.message


@pytest.mark.filterwarnings("error::pytest.PytestUnhandledThreadExceptionWarning")
@pytest.mark.parametrize("mode, deadline", [("trickle", 1.0), ("trickle-body", 1.0),
                                            ("silent", ping.DEADLINE)])
def test_slow_ping_has_a_short_total_deadline(mode, deadline):
    """The ping `run --ping-url` sends (views/ping.py, the only one): a monitor that
    trickles its answer (headers or body) or never answers is given up on at the
    deadline, 5 s by default (the README's figure), whatever it does."""
    assert ping.DEADLINE == 5.0
    with Hostile("ok-empty") as fine:
        assert ping.send(fine.url + "/hc", start=True, deadline=deadline) is True
    with Hostile(mode, delay=0.3) as server:
        start = time.monotonic()
        assert ping.send(server.url + "/hc", start=True, deadline=deadline) is False
        elapsed = time.monotonic() - start
        assert server.seen and server.seen[0][:2] == ("GET", "/hc/start")  # it was reached
    assert deadline - 0.1 <= elapsed < deadline + 2  # the bound, and not sooner
    for worker in [t for t in threading.enumerate() if t.name == "ping"]:
        worker.join(10)  # the server gone, the abandoned request ends: quietly (no raise)
        assert not worker.is_alive()


def test_login_against_a_trickling_server_ends(cli, home, monkeypatch):
    with Hostile("trickle", delay=0.3) as server:
        cfg.save_settings(home, cfg.Settings(**QUICK))
        monkeypatch.setattr("sys.stdin", io.StringIO(KEY + "\n"))
        start = time.monotonic()
        result = cli("login", f"--api={server.url}", "--key-stdin")
        assert time.monotonic() - start < 30
        assert result.code in (1, 4), result.err
        assert "Traceback" not in result.err and KEY not in result.err + result.out


def test_sigterm_ends_a_run_stuck_on_a_trickling_server(home, tmp_path):
    """One SIGTERM: the request in flight (not an upload) is cut at once, the lock freed."""
    root = one_file(tmp_path / "data")
    with Hostile("trickle", delay=0.5) as server:
        configure(home, server.url, KEY, folders=[cfg.Folder(str(root))],
                  connect_timeout=5, read_timeout=120)
        proc = run_process("run", "--min-age=0")
        assert wait_for(lambda: server.seen, 20)
        time.sleep(0.3)
        start = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=90)
        assert time.monotonic() - start < 60  # a deadline: cut at once, not after 120 s
        assert proc.returncode == 143, err
        assert "Traceback" not in err and KEY not in out + err
        assert lock_is_free(home)


@pytest.mark.parametrize("raw, hint", [
    ("\u201c" + KEY + "\u201d", "with quotes"),
    (KEY[:16] + "\n" + KEY[16:], "line breaks"),
    ("'" + KEY + "'", "with quotes"),
])
def test_mangled_key_in_the_environment_is_refused_and_never_shown(cli, home, tmp_path,
                                                                   monkeypatch, raw, hint):
    root = one_file(tmp_path / "data")
    with Hostile("echo-key") as server:
        configure(home, server.url, "0" * 32, folders=[cfg.Folder(str(root))], **QUICK)
        monkeypatch.setenv("ARCSECOND_UPLOAD_KEY", raw)
        result = cli("run", "--min-age=0")
        assert result.code == 3 and hint in result.err
        assert server.seen == []  # refused before any request
        assert lock_is_free(home)
        monkeypatch.delenv("ARCSECOND_UPLOAD_KEY")
        assert_no_key(home, tmp_path, cli, result)


def test_blank_key_variable_is_ignored(cli, home, tmp_path, monkeypatch):
    with Hostile() as server:
        configure(home, server.url, KEY, folders=[cfg.Folder(str(tmp_path))], **QUICK)
        monkeypatch.setenv("ARCSECOND_UPLOAD_KEY", "  \t")
        from oort_lib.state import credentials

        assert credentials.load(home.credentials_file).key == KEY
        assert os.environ["ARCSECOND_UPLOAD_KEY"].strip() == ""


@pytest.mark.parametrize("api", [
    "http://evil.example\\@127.0.0.1:8765",
    "http://evil.example@127.0.0.1:8765",
    "http://127.0.0.1:8765?x=@evil.example",
    "http://127.0.0.1.evil.example",
    "http://192.168.1.10",
])
def test_odd_api_urls_are_refused(cli, home, monkeypatch, api):
    monkeypatch.setattr("sys.stdin", io.StringIO(KEY + "\n"))
    result = cli("login", f"--api={api}", "--key-stdin")
    assert result.code == 2, result.err
    assert "Traceback" not in result.err and KEY not in result.err
