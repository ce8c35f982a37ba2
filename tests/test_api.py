"""The HTTP client: URLs, pagination, error messages, retries and timeouts, over real HTTP.

Most behaviour is checked against the sandbox; a tiny scripted server stands in where a
test needs answers that no honest server gives (a `next` link to another host, HTML
error pages, a header capture).
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests

from oort_lib import __version__
from oort_lib.arcsecond.address import check_base_url
from oort_lib.arcsecond.answer import error_message
from oort_lib.arcsecond.client import Client
from oort_lib.errors import (
    AuthError,
    ConfigError,
    NotFound,
    PermanentError,
    ServerUnreachable,
    TransientError,
)


class Scripted:
    """A loopback server answering each path with a scripted (status, headers, body)."""

    def __init__(self):
        self.routes: dict[str, tuple[int, dict, bytes]] = {}
        self.seen: list[dict] = []
        scripted = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                scripted.seen.append(dict(self.headers))
                status, headers, body = scripted.routes.get(
                    self.path, (404, {}, b'{"detail": "Not found."}'))
                if status == 0:
                    time.sleep(float(body))
                    status, headers, body = 200, {}, b"[]"
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                try:
                    self.wfile.write(body)
                except BrokenPipeError:  # the client gave up waiting: that is the test
                    pass

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def json(self, path, data, status=200, headers=None):
        self.routes[path] = (status, headers or {}, json.dumps(data).encode())


@pytest.fixture
def scripted():
    server = Scripted()
    yield server
    server.server.shutdown()


@pytest.mark.parametrize("url, ok", [
    ("https://api.arcsecond.io/", True),
    ("http://127.0.0.1:8765", True),
    ("http://localhost:1", True),
    ("http://[::1]:8080", True),
    ("http://api.arcsecond.io", False),
    ("http://10.0.0.1", False),
    ("ftp://example.org", False),
    ("api.arcsecond.io", False),
    ("http://HOST\\@127.0.0.1", False),  # a parser would see host 127.0.0.1, curl HOST
    ("http://user@127.0.0.1:8765", False),
    ("https://api.arcsecond.io/?next=x", False),
    ("https://api.arcsecond.io/#x", False),
    ("http://127.0.0.1:99999999", False),
    ("http://evil_host.example", False),
    ("https://nas.local:5555/api/", True),  # a base path (Arcsecond.local) is kept
])
def test_base_url_rules(url, ok):
    if ok:
        assert check_base_url(url) == url.rstrip("/")
    else:
        with pytest.raises(ConfigError):
            check_base_url(url)


@pytest.mark.parametrize("url, allowed", [
    ("http://nas.local:5555/api", True),
    ("http://192.168.1.42:5555/api", True),
    ("http://10.0.0.1:8800", True),
    ("http://arcsecond", True),  # a single-label LAN name
    ("http://api.arcsecond.io", False),  # public: never, --allow-http or not
    ("http://8.8.8.8", False),
])
def test_plain_http_to_the_lan_needs_allow_http(url, allowed):
    with pytest.raises(ConfigError, match="allow-http" if allowed else "public host"):
        check_base_url(url)
    if allowed:
        assert check_base_url(url, allow_http=True) == url
    else:
        with pytest.raises(ConfigError):
            check_base_url(url, allow_http=True)


def test_tls_verification_is_on_whatever_the_environment(monkeypatch):
    monkeypatch.setenv("CURL_CA_BUNDLE", "")
    client = Client("https://api.arcsecond.io", "k")
    assert client.session.verify is True


def test_headers_timeouts_and_no_key_in_repr(scripted):
    scripted.json("/telescopes/", [{"uuid": "u"}])
    client = Client(scripted.url, "secret-key-123456")
    assert client.telescopes(None) == [{"uuid": "u"}]
    headers = scripted.seen[-1]
    assert headers["X-Arcsecond-API-Authorization"] == "Key secret-key-123456"
    assert headers["User-Agent"].startswith(f"oort-sync/{__version__}")
    assert "secret-key" not in repr(client.session.auth)


def test_pagination_is_followed_and_foreign_next_links_stay_home(scripted):
    base = scripted.url
    scripted.json("/nightlogs/?date=2021-01-01",
                  {"count": 3, "next": f"{base}/nightlogs/?page=2", "results": [{"uuid": 1}]})
    scripted.json("/nightlogs/?page=2",
                  {"count": 3, "next": f"{base}/nightlogs/?page=3", "results": [{"uuid": 2}]})
    scripted.json("/nightlogs/?page=3", {"count": 3, "next": None, "results": [{"uuid": 3}]})
    client = Client(base, "k")
    found = client.find(None, "nightlogs", {"date": "2021-01-01"})
    assert [n["uuid"] for n in found] == [1, 2, 3]
    # A link to another host is rebuilt onto the configured base: the key never leaves.
    scripted.json("/datasets/?name=x", {"next": "https://evil.example/more/?page=2",
                                        "results": [{"uuid": "a"}]})
    scripted.json("/more/?page=2", {"next": None, "results": [{"uuid": "b"}]})
    before = len(scripted.seen)
    assert [d["uuid"] for d in client.find(None, "datasets", {"name": "x"})] == ["a", "b"]
    assert len(scripted.seen) == before + 2


def test_next_link_loops_are_refused(scripted):
    scripted.json("/datasets/?name=loop", {"next": f"{scripted.url}/datasets/?page=2",
                                           "results": [{"uuid": "a"}]})
    scripted.json("/datasets/?page=2", {"next": f"{scripted.url}/datasets/?page=2",
                                        "results": [{"uuid": "b"}]})
    client = Client(scripted.url, "k")
    before = len(scripted.seen)
    with pytest.raises(PermanentError, match="pages never end"):
        client.find(None, "datasets", {"name": "loop"})
    assert len(scripted.seen) == before + 2  # page 2 names itself: refused before asking


def test_next_links_are_rebased_onto_a_base_path():
    client = Client("http://127.0.0.1:5555/api", "k")
    assert client.rebase("http://10.0.0.9:8800/local/datasets/?page=2") == (
        "http://127.0.0.1:5555/api/local/datasets/?page=2")
    assert client.rebase("http://127.0.0.1:5555/api/local/datasets/?page=3") == (
        "http://127.0.0.1:5555/api/local/datasets/?page=3")


def test_error_bodies_become_one_message(scripted):
    cases = {
        "/a/": (400, {"detail": ["x.fits already exists in dataset 1."]}),
        "/b/": (400, {"name": ["This field is required."]}),
        "/c/": (400, {"non_field_errors": ["Bad pair."]}),
        "/d/": (404, {"detail": "Not found."}),
        "/e/": (401, {"detail": "Invalid key."}),
        "/f/": (403, {"detail": "You do not have permission."}),
    }
    for path, (status, body) in cases.items():
        scripted.json(path, body, status)
    scripted.routes["/g/"] = (502, {"Content-Type": "text/html"}, b"<html>Bad Gateway</html>")
    client = Client(scripted.url, "k", retries=0)
    # The duplicate phrase is "already there" only for the file an upload sends (see
    # answer.is_duplicate); for any other request it is a refusal.
    with pytest.raises(PermanentError, match="x.fits already exists"):
        client.request("GET", "/a/")
    with pytest.raises(PermanentError, match="name: This field is required."):
        client.request("GET", "/b/")
    with pytest.raises(PermanentError, match="Bad pair."):
        client.request("GET", "/c/")
    with pytest.raises(NotFound):
        client.request("GET", "/d/")
    with pytest.raises(AuthError, match="Invalid key") as auth:
        client.request("GET", "/e/")
    assert auth.value.exit_code == 3
    with pytest.raises(AuthError, match="permission"):
        client.request("GET", "/f/")
    with pytest.raises(TransientError) as bad:
        client.request("GET", "/g/")
    assert "<html>" not in bad.value.message and "502" in bad.value.message


def test_error_message_of_a_bare_response():
    response = requests.Response()
    response.status_code = 500
    response.reason = "Internal Server Error"
    response._content = b"Traceback (most recent call last): ..."
    assert error_message(response) == "HTTP 500 Internal Server Error"


def test_retry_after_is_honoured(sandbox):
    """The wait before the retry is the server's Retry-After (0.4 s), not the 10 ms
    backoff: read from the pause the client asks for (its budget's), not a wall clock."""
    from oort_lib.arcsecond.budget import Budget

    waits: list[float] = []

    class Recorded(Budget):
        def pause(self, seconds, stop):
            waits.append(seconds)

    sandbox.faults.throttle_rate = 1.0
    sandbox.faults.retry_after = 0.4
    client = Client(sandbox.url, sandbox.seed.upload_key, retries=1, backoff_base=0.01,
                    budget=Recorded(None))
    with pytest.raises(TransientError) as info:
        client.telescopes(None)
    assert len(waits) == 1 and waits[0] >= 0.4, waits
    assert info.value.status == 429
    assert len(sandbox.requests) == 2


def test_read_timeout_and_unreachable(scripted):
    scripted.routes["/slow/"] = (0, {}, b"60")  # answers after a minute
    client = Client(scripted.url, "k", read_timeout=0.2, retries=1, backoff_base=0.01)
    start = time.monotonic()
    with pytest.raises(TransientError, match="no answer within 0.2 s"):
        client.request("GET", "/slow/")
    # A deadline, with a wide margin for a busy host: two tries of 0.2 s, not the minute.
    assert time.monotonic() - start < 20
    scripted.server.shutdown()
    scripted.server.server_close()
    down = Client(scripted.url, "k", retries=2, backoff_base=0.01)
    with pytest.raises(ServerUnreachable) as info:
        down.request("GET", "/x/")
    assert info.value.exit_code == 4 and "3 attempts" in info.value.message


def test_lost_create_is_not_retried_blindly(sandbox):
    sandbox.faults.lost_answer_rate = 1.0
    client = Client(sandbox.url, sandbox.seed.upload_key, retries=3, backoff_base=0.01)
    with pytest.raises(TransientError):
        client.create(None, "nightlogs", {"date": "2021-01-01"})
    sandbox.faults.lost_answer_rate = 0.0
    assert len(sandbox.objects("nightlogs")) == 1  # created once, not once per retry


@pytest.mark.parametrize("url, warned", [
    ("http://127.0.0.1:8765", False), ("http://[::1]:8765/api", False),
    ("http://localhost:1", False), ("https://nas.local", False),
    ("http://nas.local:5555/api", True), ("http://[fd00::2]:5555/api", True),
])
def test_plain_http_to_another_machine_is_warned_about(url, warned):
    from oort_lib.arcsecond.address import plain_http_off_loopback

    assert plain_http_off_loopback(url) is warned
