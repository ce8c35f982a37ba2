"""The sandbox's faults, keep-alive, streamed uploads and HTTP admin, over real HTTP."""

from __future__ import annotations

import os
import resource
import socket
import threading
import time

import pytest
import requests
import urllib3
from requests_toolbelt import MultipartEncoder

from oort_lib.sandbox import Faults, Sandbox, Seed

SEED = Seed()
KEY = {"X-Arcsecond-API-Authorization": f"Key {SEED.upload_key}"}
DATE = "2024-05-01"
pytestmark = pytest.mark.sandbox(page_size=50)  # the sandbox's default


def post(sb: Sandbox, path: str, **kw) -> requests.Response:
    return requests.post(sb.url + path, headers=KEY, timeout=10, **kw)


def get(sb: Sandbox, path: str, **kw) -> requests.Response:
    return requests.get(sb.url + path, headers=KEY, timeout=10, **kw)


def dataset(sb: Sandbox) -> str:
    log = post(sb, "/nightlogs/", json={"date": DATE}).json()["uuid"]
    obs = post(sb, "/observations/", json={"night_log": log, "name": "M1"}).json()["uuid"]
    return post(sb, "/datasets/", json={"name": "M1", "observation": obs}).json()["uuid"]


# --- faults -------------------------------------------------------------------------------


def test_error_rate_answers_5xx_before_processing(sb):
    sb.faults.error_rate = 1
    sb.faults.retry_after = 0
    statuses = {post(sb, "/nightlogs/", json={"date": DATE}).status_code for _ in range(12)}
    assert statuses <= {500, 502, 503} and len(statuses) >= 2
    r = next(r for r in (get(sb, "/nightlogs/") for _ in range(50)) if r.status_code == 503)
    assert r.headers["Retry-After"] == "0" and "detail" in r.json()
    assert sb.objects("nightlogs") == []
    assert all(status in (500, 502, 503) for _, _, status in sb.requests)


def test_bad_gateway_is_html_like_a_proxy(sb):
    sb.faults.error_rate = 1
    r = next(r for r in (get(sb, "/nightlogs/") for _ in range(50)) if r.status_code == 502)
    assert r.headers["Content-Type"].startswith("text/html")


def test_faults_only_on_matching_paths_and_never_on_admin(sb):
    sb.faults.update({"error_rate": 1.0, "paths": r"/datafiles/"})
    assert get(sb, "/nightlogs/").status_code == 200
    ds = dataset(sb)
    assert post(sb, f"/datasets/{ds}/datafiles/", files={"file": ("a.fits", b"x")}
                ).status_code in (500, 502, 503)
    sb.faults.paths = ""
    assert get(sb, "/_sandbox/faults/").status_code == 200


def test_throttle_answers_429_with_retry_after(sb):
    sb.faults.throttle_rate = 1
    sb.faults.retry_after = 2
    r = get(sb, "/nightlogs/")
    assert r.status_code == 429
    assert r.headers["Retry-After"] == "2"
    assert "throttled" in r.json()["detail"]
    sb.faults.retry_after = 0.5
    assert get(sb, "/nightlogs/").headers["Retry-After"] == "0.5"


def test_lost_answer_still_creates_the_object(sb):
    sb.faults.lost_answer_rate = 1
    outcomes = []
    for _ in range(8):
        try:
            outcomes.append(post(sb, "/nightlogs/", json={"date": DATE}).status_code)
        except requests.ConnectionError:
            outcomes.append("dropped")
    assert set(outcomes) == {502, "dropped"}  # both ways of losing an answer happen
    sb.faults.clear()
    listed = get(sb, "/nightlogs/", params={"date": DATE}).json()
    assert listed["count"] == 8
    assert [status for _, _, status in sb.requests[:8]] == [
        0 if o == "dropped" else o for o in outcomes]


def test_lost_answer_on_upload_keeps_the_file(sb):
    ds = dataset(sb)
    sb.faults.update({"lost_answer_rate": 1.0, "seed": 3})
    name = ""
    with pytest.raises(requests.ConnectionError):
        for i in range(10):  # until the "drop" variant comes up
            name = f"{i}.fits"
            post(sb, f"/datasets/{ds}/datafiles/", files={"file": (name, b"abc")})
    sb.faults.clear()
    assert get(sb, f"/datasets/{ds}/datafiles/{name}/").status_code == 200


def test_reset_aborts_uploads_only(sb):
    ds = dataset(sb)
    sb.faults.reset_rate = 1
    assert get(sb, "/nightlogs/").status_code == 200  # not an upload
    for size in (100, 3_000_000):
        started = time.monotonic()
        with pytest.raises(requests.ConnectionError):
            post(sb, f"/datasets/{ds}/datafiles/", files={"file": ("a.fits", b"x" * size)})
        assert time.monotonic() - started < 30  # a deadline: reset, not left hanging
    sb.faults.reset_rate = 0
    assert sb.objects("datafiles") == []
    assert list((sb.data_dir / "tmp").iterdir()) == []
    r = post(sb, f"/datasets/{ds}/datafiles/", files={"file": ("a.fits", b"x")})
    assert r.status_code == 201
    assert ("POST", f"/datasets/{ds}/datafiles/", 0) in sb.requests


def test_slow_answers_trigger_read_timeouts_after_processing(sb):
    sb.faults.slow_rate = 1
    sb.faults.slow_delay = 1.0
    with pytest.raises(requests.ReadTimeout):
        requests.post(sb.url + "/nightlogs/", headers=KEY, json={"date": DATE}, timeout=0.3)
    sb.faults.slow_rate = 0
    assert len(sb.objects("nightlogs")) == 1  # processed, only the answer was late


# --- traps: the nth matching request, counted ----------------------------------------


def test_traps_strike_the_nth_matching_request_and_count(sb):
    error = sb.trap("error", "POST", r"^/nightlogs/$", nth=2, status=503)
    throttle = sb.trap("throttle", "GET", r"^/nightlogs/$", times=2, retry_after="7")
    statuses = [post(sb, "/nightlogs/", json={"date": DATE}).status_code for _ in range(3)]
    assert statuses == [201, 503, 201] and error.hits == 1 and error.seen == 3
    answers = [get(sb, "/nightlogs/") for _ in range(3)]
    assert [r.status_code for r in answers] == [429, 429, 200] and throttle.hits == 2
    assert answers[0].headers["Retry-After"] == "7"
    assert len(sb.objects("nightlogs")) == 2  # the 503 was not processed
    sb.clear_traps()
    assert post(sb, "/nightlogs/", json={"date": DATE}).status_code == 201
    with pytest.raises(ValueError, match="Unknown trap action"):
        sb.trap("explode", "GET", "/")


def test_reset_and_lost_traps_differ_in_what_was_processed(sb):
    sb.trap("reset", "POST", r"^/nightlogs/$")
    with pytest.raises(requests.ConnectionError):
        post(sb, "/nightlogs/", json={"date": DATE})
    assert sb.objects("nightlogs") == []
    ds = dataset(sb)
    lost = sb.trap("lost", "POST", "/datafiles/$")
    with pytest.raises(requests.ConnectionError):
        post(sb, f"/datasets/{ds}/datafiles/", files={"file": ("a.fits", b"abc")})
    assert lost.hits == 1 and [f["filename"] for f in sb.objects("datafiles")] == ["a.fits"]
    assert sb.requests[-1] == ("POST", f"/datasets/{ds}/datafiles/", 0)


def test_slow_trap_trickles_the_answer_of_a_processed_request(sb):
    slow = sb.trap("slow", "POST", r"^/nightlogs/$", delay=0.5)
    with requests.post(sb.url + "/nightlogs/", headers=KEY, json={"date": DATE},
                       timeout=(5, 0.2), stream=True) as answer:
        assert answer.status_code == 201 and slow.hits == 1  # the headers come at once...
        assert answer.raw.read(1) == b"{"
        with pytest.raises(urllib3.exceptions.ReadTimeoutError):  # ...the body: a byte
            answer.raw.read(2)  # every 0.5 s
    assert len(sb.objects("nightlogs")) == 1


@pytest.mark.parametrize("action", ["hold", "hold-answer"])
def test_hold_traps_wait_for_release(sb, action):
    held = sb.trap(action, "POST", r"^/nightlogs/$")
    answers: list = []

    def send():
        try:
            answers.append(post(sb, "/nightlogs/", json={"date": DATE}).status_code)
        except requests.ConnectionError:
            answers.append("reset")

    sender = threading.Thread(target=send)
    sender.start()
    assert held.wait(10)
    created = len(sb.objects("nightlogs"))
    assert created == (0 if action == "hold" else 1) and answers == []  # held there
    held.release(drop=True)
    sender.join(10)
    assert answers == ["reset"] and len(sb.objects("nightlogs")) == created
    again = sb.trap(action, "POST", r"^/nightlogs/$")
    sender = threading.Thread(target=send)
    sender.start()
    assert again.wait(10)
    again.release()
    sender.join(10)
    assert answers == ["reset", 201]


def test_answered_trap_is_reached_once_the_answer_is_out(sb):
    answered = sb.trap("answered", "GET", r"^/nightlogs/$", nth=2)
    assert get(sb, "/nightlogs/").status_code == 200 and not answered.reached.is_set()
    assert get(sb, "/nightlogs/").status_code == 200
    assert answered.wait(5) and answered.hits == 1


def test_stop_releases_held_requests(tmp_path):
    with Sandbox(tmp_path / "sandbox") as sandbox:
        held = sandbox.trap("hold", "GET", "/nightlogs/")
        sender = threading.Thread(target=lambda: pytest.raises(
            requests.ConnectionError, get, sandbox, "/nightlogs/"))
        sender.start()
        assert held.wait(10)
    sender.join(10)
    assert not sender.is_alive()


def test_latency_delays_every_answer(sb):
    sb.faults.latency = 0.2
    started = time.monotonic()
    for _ in range(3):
        assert get(sb, "/nightlogs/").status_code == 200
    assert time.monotonic() - started >= 0.6


def test_fault_sequence_is_reproducible(tmp_path):
    def statuses(seed: int) -> list[int]:
        with Sandbox(tmp_path / f"s{seed}-{time.monotonic_ns()}") as sandbox:
            sandbox.faults.update({"error_rate": 0.5, "seed": seed})
            return [get(sandbox, "/nightlogs/").status_code for _ in range(20)]

    assert statuses(7) == statuses(7)
    assert statuses(7) != statuses(8)


def test_fault_settings_are_checked():
    faults = Faults()
    for bad in ({"error_rate": 2}, {"nope": 1}, {"paths": "("}, {"latency": -1},
                {"seed": 1.5}, {"error_rate": True}):
        with pytest.raises(ValueError):
            faults.update(bad)
    assert faults == Faults()


# --- connections --------------------------------------------------------------------------


def test_connections_are_kept_alive(sb):
    ds = dataset(sb)
    before = sb.connections_accepted
    with requests.Session() as session:
        session.headers.update(KEY)
        for i in range(5):
            assert session.get(sb.url + "/nightlogs/", timeout=10).status_code == 200
            r = session.post(sb.url + f"/datasets/{ds}/datafiles/", timeout=10,
                             files={"file": (f"{i}.fits", b"x" * 50_000)})
            assert r.status_code == 201
        # Answers given before reading the body must not break the next request.
        r = session.post(sb.url + "/datasets/nope/datafiles/", timeout=10,
                         files={"file": ("z.fits", b"x" * 2_000_000)})
        assert r.status_code == 404
        assert session.get(sb.url + "/nightlogs/", timeout=10).status_code == 200
        r = session.post(sb.url + "/nightlogs/", timeout=10,
                         headers={"X-Arcsecond-API-Authorization": "Key bad"},
                         files={"file": ("z.fits", b"x" * 2_000_000)})
        assert r.status_code == 401
        assert session.get(sb.url + "/nightlogs/", timeout=10).status_code == 200
    assert sb.connections_accepted == before + 1


def test_connection_close_is_honoured(sb):
    with socket.create_connection(("127.0.0.1", int(sb.url.rsplit(":", 1)[1])), timeout=5) as s:
        s.sendall(b"GET /nope/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    assert data.startswith(b"HTTP/1.1 404") and b"Connection: close" in data


def test_streamed_upload_keeps_server_memory_flat(sb, tmp_path):
    ds = dataset(sb)
    big = tmp_path / "big.fits"
    size = 64 * 1024 * 1024
    with open(big, "wb") as f:  # mostly sparse: cheap to create, still 64 MB to send
        f.write(b"SIMPLE  =                    T" + b" " * 2850)
        f.seek(size - 4)
        f.write(b"END!")
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with open(big, "rb") as f:
        body = MultipartEncoder({"file": ("big.fits", f, "application/octet-stream")})
        r = requests.post(sb.url + f"/datasets/{ds}/datafiles/", data=body, timeout=60,
                          headers={**KEY, "Content-Type": body.content_type})
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert r.status_code == 201, r.text
    assert r.json()["size"] == size
    stored = sb.objects("datafiles")[0]
    assert os.path.getsize(stored["path"]) == size
    assert grown_mb < 40, f"server and client grew by {grown_mb:.0f} MB"


def test_stop_ends_open_connections_and_wait_returns(tmp_path):
    sandbox = Sandbox(tmp_path / "s").start()
    session = requests.Session()
    assert session.get(sandbox.url + "/nightlogs/", headers=KEY, timeout=5).status_code == 200
    threading.Timer(0.2, sandbox.stop).start()
    started = time.monotonic()
    sandbox.wait()
    assert time.monotonic() - started < 30  # a deadline: wait() returns, never hangs
    sandbox.stop()  # idempotent
    with pytest.raises(requests.ConnectionError):
        session.get(sandbox.url + "/nightlogs/", headers=KEY, timeout=5)


def test_url_and_loopback(tmp_path):
    assert Sandbox(tmp_path, host="127.0.0.1").is_loopback
    assert Sandbox(tmp_path, host="localhost").is_loopback
    assert Sandbox(tmp_path, host="::1").is_loopback
    assert not Sandbox(tmp_path, host="0.0.0.0").is_loopback
    assert Sandbox(tmp_path, host="0.0.0.0", port=8123).url == "http://127.0.0.1:8123"
    with Sandbox(tmp_path / "u") as sandbox:
        assert sandbox.url.startswith("http://127.0.0.1:") and not sandbox.url.endswith("/")
        assert int(sandbox.url.rsplit(":", 1)[1]) > 0


# --- HTTP admin ---------------------------------------------------------------------------


def test_admin_over_http(sb):
    assert requests.get(sb.url + "/_sandbox/faults/", timeout=5).status_code == 401
    member = {"X-Arcsecond-API-Authorization": f"Key {SEED.member_key}"}
    assert requests.get(sb.url + "/_sandbox/faults/", headers=member, timeout=5
                        ).status_code == 401
    assert get(sb, "/_sandbox/faults/").json() == Faults().as_dict()
    r = post(sb, "/_sandbox/faults/", json={"throttle_rate": 1, "retry_after": 3})
    assert r.status_code == 200 and r.json()["throttle_rate"] == 1
    assert sb.faults.throttle_rate == 1
    assert get(sb, "/nightlogs/").status_code == 429
    assert post(sb, "/_sandbox/faults/", json={"throttle_rate": 7}).status_code == 400
    assert post(sb, "/_sandbox/faults/clear/").json()["throttle_rate"] == 0
    # Revoking the admin's own key does not lock the admin out.
    assert post(sb, "/_sandbox/revoke/", json={"key": SEED.upload_key}).status_code == 200
    assert get(sb, "/nightlogs/").status_code == 401
    assert get(sb, "/_sandbox/requests/").status_code == 200
    assert post(sb, "/_sandbox/restore/", json={"key": SEED.upload_key}).status_code == 200
    ds = dataset(sb)
    objects = get(sb, "/_sandbox/objects/datasets/").json()
    assert [(o["uuid"], o["organisation"], o["owner"]) for o in objects] == [
        (ds, None, SEED.username)]
    assert get(sb, "/_sandbox/objects/bogus/").status_code == 404
    log = get(sb, "/_sandbox/requests/").json()
    assert ["POST", "/datasets/", 201] in log
    assert not any(path.startswith("/_sandbox/") for _, path, _ in log)
    assert requests.delete(sb.url + "/_sandbox/requests/", headers=KEY, timeout=5).json() == []
    assert sb.requests == []


def test_assigning_new_faults_reaches_the_running_server(sb):
    sb.faults = Faults(throttle_rate=1, retry_after=4)
    r = get(sb, "/nightlogs/")
    assert (r.status_code, r.headers["Retry-After"]) == (429, "4")
    sb.faults = Faults()
    assert get(sb, "/nightlogs/").status_code == 200


def test_clock_skew_moves_the_date_header_of_every_answer(sb):
    from email.utils import parsedate_to_datetime

    def server_clock(response: requests.Response) -> float:
        return parsedate_to_datetime(response.headers["Date"]).timestamp() - time.time()

    assert abs(server_clock(get(sb, "/nightlogs/"))) < 5  # a right clock by default
    sb.faults.clock_skew = 7200  # two hours ahead: every answer, a refusal's too
    assert abs(server_clock(get(sb, "/nightlogs/")) - 7200) < 5
    refused = requests.get(sb.url + "/nightlogs/", timeout=10)
    assert refused.status_code == 401 and abs(server_clock(refused) - 7200) < 5
    # Set over HTTP, behind as well as ahead; anything but a number of seconds refused.
    assert post(sb, "/_sandbox/faults/", json={"clock_skew": -3600}).json()["clock_skew"] == -3600
    assert abs(server_clock(get(sb, "/nightlogs/")) + 3600) < 5
    for bad in ("2h", float("nan"), 1e12, True):
        with pytest.raises(ValueError):
            sb.faults.update({"clock_skew": bad})
    assert sb.faults.clock_skew == -3600
    sb.faults.clear()
    assert abs(server_clock(get(sb, "/nightlogs/"))) < 5
