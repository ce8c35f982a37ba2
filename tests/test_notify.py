"""Failure-only notifications (issue 23): `run --notify-url` POSTs once when runs start
failing and once when one succeeds again, over real HTTP to a webhook of the test's own,
against the sandbox in both generations."""

from __future__ import annotations

import http.server
import json
import socket
import threading
import time

import pytest
from fitsfiles import NIGHT, write_tree
from helpers import configure, configure_for

from oort_lib.run import outage
from oort_lib.run.plan import Missing, Plan
from oort_lib.run.result import RunResult
from oort_lib.state import config as cfg
from oort_lib.state.lock import RunLock
from oort_lib.views import notify

UNREACHABLE = "http://127.0.0.1:9"  # the discard port: nothing listens on loopback


class _Webhook(http.server.BaseHTTPRequestHandler):
    seen: list
    status: list  # the status to answer (a list, so a test can change it while serving)

    def do_POST(self):  # noqa: N802 - the name http.server calls
        length = int(self.headers.get("Content-Length") or 0)
        self.seen.append((self.path, self.headers.get("Content-Type"), self.rfile.read(length)))
        self.send_response(self.status[0])
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args):
        pass


class Hook:
    """A Slack-like incoming webhook on loopback: it keeps each POST it gets."""

    def __init__(self):
        self.seen: list = []
        self.status = [200]
        handler = type("Handler", (_Webhook,), {"seen": self.seen, "status": self.status})
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/T0/B0/x"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def bodies(self) -> list[dict]:
        assert all(kind == "application/json" for _p, kind, _b in self.seen)
        return [json.loads(raw) for _p, _k, raw in self.seen]


@pytest.fixture
def hook():
    webhook = Hook()
    yield webhook
    webhook.server.shutdown()
    webhook.server.server_close()


def _frames(root, *names):
    return write_tree(root, {f"{name}.fits": NIGHT for name in names})


def test_success_failure_failure_recovery_sends_two_posts(cli, home, server, hook, tmp_path):
    root = tmp_path / "data"
    _frames(root, "a", "b")
    configure_for(home, server, server.dialect, root)
    key = server.seed.upload_key
    run = ("run", "--min-age=0", f"--notify-url={hook.url}")
    assert cli(*run).code == 0
    assert hook.seen == []  # a success says nothing

    _frames(root, "c", "d")
    server.faults.error_rate, server.faults.paths = 1.0, r"/datafiles/$"  # 500, 502, 503
    started = time.time()
    assert cli(*run).code == 1
    assert cli(*run).code == 1  # retried at once (retry_delay 0): still failing, no POST
    assert len(hook.seen) == 1
    server.faults.error_rate = 0.0
    assert cli(*run).code == 0
    assert cli(*run).code == 0  # all well again: nothing more

    assert len(hook.seen) == 2 and [p for p, _k, _b in hook.seen] == ["/hooks/T0/B0/x"] * 2
    failure, recovery = hook.bodies()
    host = socket.gethostname()
    assert failure["event"] == "failure" and recovery["event"] == "recovery"
    assert failure["host"] == recovery["host"] == host
    assert failure["text"].startswith(f"oort-sync on {host}: 2 files failed (server error 50")
    assert " since " in failure["text"] and "\n" not in failure["text"]
    assert failure["exit_code"] == 1 and failure["failing_runs"] == 1
    assert started - 1 <= notify_time(failure["since"]) <= time.time()
    assert failure["counts"]["failed"] == 2 and failure["counts"]["uploaded"] == 0
    assert sum(r["files"] for r in failure["reasons"]) == 2
    assert all(r["reason"].startswith("server error 50") for r in failure["reasons"])
    assert recovery["since"] == failure["since"] and recovery["failing_runs"] == 2
    assert recovery["counts"]["uploaded"] == 2 and recovery["reasons"] == []
    assert recovery["text"].startswith(f"oort-sync on {host}: runs succeed again after ")
    assert "(2 failing runs since " in recovery["text"]
    assert "2 files uploaded by this one" in recovery["text"]
    assert all(key not in raw.decode() for _p, _k, raw in hook.seen)
    assert not (home.state_dir / "outages.json").exists()  # nothing ongoing, not failing


def notify_time(stamp: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(stamp).timestamp()


def test_unreachable_then_refused_key_is_one_outage(cli, home, sandbox, hook, tmp_path):
    """The server unreachable, then the key refused: a failure all along, one POST;
    a tick that finds the lock held changes nothing; then the recovery."""
    root = tmp_path / "data"
    _frames(root, "a")
    folders = [cfg.Folder(str(root))]
    configure(home, UNREACHABLE, "k" * 40, folders=folders, retries=0)
    run = ("run", "--min-age=0", f"--notify-url={hook.url}")
    assert cli(*run).code == 4
    configure(home, sandbox.url, "refused-" + "k" * 32, folders=folders)
    assert cli(*run).code == 3
    with RunLock(home.lock_file):
        assert cli(*run, "-q").code == 75
    assert len(hook.seen) == 1
    (failure,) = hook.bodies()
    assert failure["text"].startswith(f"oort-sync on {socket.gethostname()}: server "
                                      "unreachable (connection refused) since ")
    assert failure["exit_code"] == 4 and failure["counts"]["pending"] == 1
    assert failure["reasons"][0] == {"reason": "server unreachable (connection refused)",
                                     "files": None}
    state = json.loads((home.state_dir / "outages.json").read_text())
    assert state["failing"]["runs"] == 2 and state["failing"]["told"] is True

    configure(home, sandbox.url, sandbox.seed.upload_key, folders=folders)
    assert cli(*run).code == 0
    assert [b["event"] for b in hook.bodies()] == ["failure", "recovery"]
    assert hook.bodies()[1]["failing_runs"] == 2  # the lock-held tick was no run


def test_an_undelivered_failure_is_sent_again(cli, home, sandbox, hook, tmp_path):
    """A webhook that was down when runs started failing hears of it from the next
    failing run; once it has, the failing runs send nothing more."""
    root = tmp_path / "data"
    _frames(root, "a")
    configure(home, UNREACHABLE, "k" * 40, folders=[cfg.Folder(str(root))], retries=0)
    run = ("run", "--min-age=0", f"--notify-url={hook.url}")
    hook.status[0] = 502
    assert cli(*run).code == 4
    hook.status[0] = 200
    assert cli(*run).code == 4
    assert cli(*run).code == 4
    bodies = hook.bodies()
    assert [(b["event"], b["failing_runs"]) for b in bodies] == [("failure", 1), ("failure", 2)]
    assert bodies[0]["since"] == bodies[1]["since"]


def test_an_error_before_the_run_is_a_failure(cli, home, sandbox, hook, tmp_path):
    """A damaged manifest ends the run before it has a result (exit code 2): notified
    like any failure; the run that rebuilds it recovers."""
    root = tmp_path / "data"
    _frames(root, "a")
    configure(home, sandbox.url, sandbox.seed.upload_key, folders=[cfg.Folder(str(root))],
              notify_url=hook.url)  # from the config this time
    home.state_dir.mkdir(parents=True, exist_ok=True)
    home.manifest_file.write_bytes(b"this is no SQLite database" * 100)
    result = cli("run", "--min-age=0")
    assert result.code == 2 and "manifest" in result.err
    (failure,) = hook.bodies()
    assert failure["exit_code"] == 2 and "manifest is damaged" in failure["text"]
    assert failure["reasons"][0]["files"] is None
    assert cli("run", "--min-age=0", "--rebuild-manifest").code == 0
    assert [b["event"] for b in hook.bodies()] == ["failure", "recovery"]


def test_the_key_never_reaches_a_body(tmp_path):
    """Whatever a reason holds (here a missing folder whose path holds the key), the body
    has it masked."""
    key = "Zq7" + "x1y2" * 8
    result = RunResult(Plan([]))
    result.plan.missing.append(Missing(f"/mnt/{key}", f"/mnt/{key}: missing (unmounted?)"))
    turn = outage.Turn(outage.Event.FAILURE, time.time(), 1)
    body = notify.message(turn, result, 1, key)
    raw = json.dumps(body)
    assert key not in raw and key.lower() not in raw.lower() and "****" in body["text"]
    assert body["reasons"] == [{"reason": "/mnt/****: missing (unmounted?)", "files": None}]
    assert notify.message(turn, result, 1, None)["reasons"][0]["reason"].endswith(
        "(unmounted?)")  # no key known: nothing masked, nothing lost


def test_notification_has_the_ping_deadline(tmp_path):
    silent = socket.socket()  # accepts connections, never answers
    silent.bind(("127.0.0.1", 0))
    silent.listen(5)
    try:
        started = time.monotonic()
        body = {"text": "t", "event": "failure"}
        url = f"http://127.0.0.1:{silent.getsockname()[1]}/hook"
        assert notify.tell(url, tmp_path / "outages.json", body, deadline=1.0) is False
        assert time.monotonic() - started < 10  # generous: the deadline is 1 s
    finally:
        silent.close()
    assert not (tmp_path / "outages.json").exists()  # not delivered: not told


def test_notify_url_from_the_config_and_refusals(cli, home, sandbox, hook, tmp_path):
    root = tmp_path / "data"
    _frames(root, "a")
    configure(home, sandbox.url, sandbox.seed.upload_key, folders=[cfg.Folder(str(root))],
              notify_url=hook.url)
    assert cfg.load_settings(home).notify_url == hook.url
    assert f"notify_url = {hook.url}" in home.config_file.read_text()

    text = home.config_file.read_text()
    home.config_file.write_text(text.replace(hook.url, "hooks.slack.com/services/T0"))
    result = cli("status")
    assert result.code == 2 and "notify_url = 'hooks.slack.com/services/T0'" in result.err
    assert str(home.config_file) in result.err and ", line " in result.err

    # A public host in plain http: refused by the run before it starts, naming the setting.
    home.config_file.write_text(text.replace(hook.url, "http://hooks.example.com/x"))
    result = cli("run", "--min-age=0")
    assert result.code == 2 and "notify_url in " in result.err
    assert "http://hooks.example.com/x" in result.err
    result = cli("run", "--min-age=0", "--notify-url=ftp://127.0.0.1/x")
    assert result.code == 2 and "--notify-url = ftp://127.0.0.1/x" in result.err
    assert not home.manifest_file.exists()  # nothing ran
    assert cli("run", "--min-age=0", f"--notify-url={hook.url}").code == 0  # the flag wins
    assert hook.seen == []
