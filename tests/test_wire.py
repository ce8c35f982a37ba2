"""What oort-sync puts on the wire in the 2026 generation, compared with what the official
`arcsecond` client sends (4.5.0, the version installed for the tests).

The official client and oort-sync each log in and upload the same file through one
capturing relay (tests/relay.py) in front of the sandbox; the requests they sent are
compared (see test_same_requests_as_the_official_client for exactly what). The tests
after it check particular bytes against hand-written expectations (docs/arcsecond-api.md,
"2026: the upload" and "2026: key verification"), with a capture server answering every
request.
"""

from __future__ import annotations

import importlib.util
import io
import json
import os
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from helpers import FAST_RETRIES
from relay import Captured, Relay, parts

from oort_lib.arcsecond.client import Client
from oort_lib.arcsecond.gen2026 import Gen2026, verify_key
from oort_lib.arcsecond.remote import Container
from oort_lib.run.item import Item
from oort_lib.samples import write_fits
from oort_lib.state import config as cfg
from oort_lib.state.config import Folder

KEY = "5a4db0c5e7e57ca11ab1e0000000c0de"


# --- the official client and oort-sync, through one capturing relay ---------------------

OFFICIAL = Path(sys.executable).with_name("arcsecond")
KEY_HEADER = "X-Arcsecond-API-Authorization"


@pytest.fixture
def official(tmp_path):
    """Run the official CLI (its own configuration folder; nothing of this machine's)."""
    if importlib.util.find_spec("arcsecond") is None or not OFFICIAL.exists():
        if os.environ.get("CI"):
            pytest.fail("the official arcsecond client is not installed (make venv does)")
        pytest.skip("the official arcsecond client is not installed (make venv does)")
    env = {k: v for k, v in os.environ.items() if not k.startswith("ARCSECOND_")}
    env["ARCSECOND_CONFIG_DIR"] = str(tmp_path / "arcsecond-config")
    env["HOME"] = str(tmp_path / "official-home")

    def run(*args: str) -> str:
        command = [sys.executable, "-c", LIBRARY, *args[1:]] if args[0] == "library" \
            else [str(OFFICIAL), *args]
        done = subprocess.run(command, input="\n", env=env, capture_output=True, text=True,
                              timeout=120)
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout + done.stderr

    return run


# The official CLI's upload, with tags given as its library takes them (a list): in 4.5.0
# its `--tags` option hands its own check a string, which it refuses. As a script calls it.
LIBRARY = """
import sys
from arcsecond.api import ArcsecondConfig
from arcsecond.cloud.uploader import DatasetFileUploader, DatasetUploadContext
from arcsecond.cloud.uploader.walker import walk_folder_and_upload_files
from arcsecond.options import State

folder, dataset, telescope, portal, raw, tags = sys.argv[1:]
context = DatasetUploadContext(ArcsecondConfig.from_state(State()), dataset, telescope,
                               org_subdomain=portal, is_raw_data=raw == "True",
                               custom_tags=tags.split(","))
context.validate()
walk_folder_and_upload_files(DatasetFileUploader, context, folder)
print("library upload done")
"""


def same_json_request(theirs: Captured, ours: Captured, key: str | None) -> None:
    assert (ours.method, ours.path) == (theirs.method, theirs.path)
    assert ours.header(KEY_HEADER) == theirs.header(KEY_HEADER) == (key and f"Key {key}")
    assert ours.header("Authorization") is None and theirs.header("Authorization") is None
    assert ours.header("Content-Type") == theirs.header("Content-Type") == "application/json"
    assert sorted(json.loads(ours.body)) == sorted(json.loads(theirs.body))


def same_upload(theirs: Captured, ours: Captured, key: str) -> None:
    assert (ours.method, ours.path) == (theirs.method, theirs.path)  # the route
    # The key header, in the same form; no other credentials.
    assert ours.header(KEY_HEADER) == theirs.header(KEY_HEADER) == f"Key {key}"
    assert ours.header("Authorization") is None and theirs.header("Authorization") is None
    # The content type, boundary aside, and the framing: a length, not chunks.
    their_boundary, their_parts, *their_ends = parts(theirs)
    our_boundary, our_parts, *our_ends = parts(ours)
    assert (ours.header("Content-Type").replace(our_boundary, "B")
            == theirs.header("Content-Type").replace(their_boundary, "B")
            == "multipart/form-data; boundary=B")
    assert not ours.chunked and not theirs.chunked
    assert int(ours.header("Content-Length")) == len(ours.body)
    assert int(theirs.header("Content-Length")) == len(theirs.body)
    # Nothing before the first boundary, "--" CRLF after the last, in both.
    assert our_ends == their_ends == [b"", b"--\r\n"]
    # The parts: the same names in the same order, each with the same header lines
    # (byte for byte: the file's name is the same file's) and the same content.
    assert [p.name for p in our_parts] == [p.name for p in their_parts]
    for mine, theirs_part in zip(our_parts, their_parts):
        assert mine.lines == theirs_part.lines, mine.name
        assert mine.content == theirs_part.content, mine.name


CASES = {
    # case: the watched folder's settings (the official client is told the same)
    "personal account": {},
    "organisation, reduced, tags": {"organisation": "robotland", "reduced": True,
                                    "tags": ("night 1", "flat")},
}


@pytest.mark.parametrize("case", CASES)
def test_same_requests_as_the_official_client(official, cli, home, tmp_path, monkeypatch, case):
    """Compared, request by request, between the official client and oort-sync logging in
    and uploading the same file into the same dataset:

    - the key verification (POST /auth/key/verify/): route, no key header, JSON content
      type, the same JSON fields;
    - the dataset create (each its own dataset): route, key header, JSON content type,
      the same JSON fields;
    - the upload: route (with the organisation's prefix), the key header's exact form
      (`Key <key>`), no `Authorization` header, the content type (the boundary aside), a
      Content-Length matching the body (never chunked), nothing before the first boundary
      and `--` CRLF after the last, the parts' names and order, each part's header lines
      byte for byte (the file's name included: the same file, `m31 é 001.fits`), and each
      part's content (dataset UUID, `is_raw`, tags, the file's bytes).

    Not compared: the boundary, other headers (User-Agent, Accept, Accept-Encoding,
    Connection), the order of the HTTP headers and of JSON fields. Only the installed
    official version (4.5.0) is run."""
    from oort_lib.sandbox import Sandbox

    settings = CASES[case]
    with Sandbox(tmp_path / "sb", page_size=1, dialect="2026") as sandbox, \
            Relay(sandbox.url) as relay:
        seed = sandbox.seed
        telescope = seed.telescope_uuid if "organisation" in settings \
            else seed.personal_telescope_uuid
        root = tmp_path / "data"
        write_fits(root / "M31" / "m31 é 001.fits", {"DATE-OBS": "2024-05-02T03:00:00"})
        prefix = f"/{settings['organisation']}" if "organisation" in settings else ""

        assert "now points at" in official("api", "add", "relay", relay.url) + official(
            "api", "use", "relay")
        assert "Logged in" in official("login", "--username", seed.username, "--type",
                                       "upload", "--key", seed.upload_key)
        if settings:  # the library, for the tags (see LIBRARY)
            official("library", str(root / "M31"), "M31", telescope, settings["organisation"],
                     "False", ",".join(settings["tags"]))
        else:
            uploaded = official("upload", str(root / "M31"), "-d", "M31", "-t", telescope)
            assert "uploads succeeded: 1" in uploaded, uploaded
        assert len(sandbox.datafiles()) == 1
        theirs = relay.seen[:]

        monkeypatch.setattr("sys.stdin", io.StringIO(seed.upload_key + "\n"))
        assert cli("login", f"--api={relay.url}", f"--username={seed.username}",
                   "--key-stdin").code == 0
        write_fits(root / "NGC 7000" / "ngc.fits", {"DATE-OBS": "2024-05-02T03:00:00"})
        folder = cfg.Folder(str(root), telescope=telescope, **settings)
        cfg.save_settings(home, cfg.Settings(api=relay.url, folders=(folder,),
                                             **FAST_RETRIES))
        for path in root.rglob("*.fits"):
            os.utime(path, (1e9, 1e9))
        ran = cli("run", "--min-age=0")
        assert ran.code == 0, ran.err
        ours = relay.seen[len(theirs):]

        def one(requests, method, path):
            found = [r for r in requests if (r.method, r.path) == (method, path)]
            assert found, (method, path, [(r.method, r.path) for r in requests])
            return found[0]

        same_json_request(one(theirs, "POST", "/auth/key/verify/"),
                          one(ours, "POST", "/auth/key/verify/"), None)
        same_json_request(one(theirs, "POST", f"{prefix}/datasets/"),
                          one(ours, "POST", f"{prefix}/datasets/"), seed.upload_key)
        upload = f"{prefix}/datafiles/"
        our_uploads = {r.body.split(b'filename="')[1].split(b'"')[0]: r
                       for r in ours if (r.method, r.path) == ("POST", upload)}
        same_upload(one(theirs, "POST", upload), our_uploads["m31 é 001.fits".encode()],
                    seed.upload_key)
        # The same dataset: oort-sync found the official client's, and the server said
        # the file is there already.
        assert len([d for d in sandbox.objects("datasets") if d["name"] == "M31"]) == 1
        assert len(sandbox.datafiles()) == 2


# --- particular bytes, against hand-written expectations ---------------------------------


class Capture:
    """Answers every request with `status` and an empty JSON body; keeps the raw bytes."""

    def __init__(self, status: int = 201):
        self.status = status
        self.raw: list[bytes] = []
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                data = b""
                while b"\r\n\r\n" not in data:
                    data += conn.recv(65536)
                head, _, body = data.partition(b"\r\n\r\n")
                length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n")
                               if line.lower().startswith(b"content-length:")), 0)
                while len(body) < length:
                    body += conn.recv(65536)
                self.raw.append(head + b"\r\n\r\n" + body)
                answer = b"{}"
                conn.sendall(b"HTTP/1.1 %d X\r\nContent-Type: application/json\r\n"
                             b"Content-Length: %d\r\nConnection: close\r\n\r\n%s"
                             % (self.status, len(answer), answer))

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def capture():
    server = Capture()
    yield server
    server.close()


def _item(path, folder: Folder) -> Item:
    st = path.stat()
    return Item(folder=folder, full_path=str(path), relpath=path.name, size=st.st_size,
                mtime_ns=st.st_mtime_ns, hash=None, header_date="2024-01-01T00:00:00",
                night="2023-12-31", kind="observation", dataset="M31", target="M31")


def _headers(raw: bytes) -> tuple[str, dict[str, str], bytes]:
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    return lines[0], headers, body


def test_upload_parts_in_the_official_order(capture, tmp_path):
    content = bytes(range(256)) * 3
    path = tmp_path / "m31 é.fits"
    path.write_bytes(content)
    folder = Folder(str(tmp_path), organisation="myobs", telescope="t-uuid",
                    tags=("night 1", "flat"))
    remote = Gen2026(Client(capture.url, KEY, retries=0), cache=None, destination="d")
    digest = remote.send(_item(path, folder), Container(dataset="11111111-2222"))
    assert len(digest) == 64
    request, headers, body = _headers(capture.raw[-1])
    assert request == "POST /myobs/datafiles/ HTTP/1.1"
    assert headers["x-arcsecond-api-authorization"] == f"Key {KEY}"
    boundary = headers["content-type"].split("boundary=")[1]
    assert headers["content-type"] == f"multipart/form-data; boundary={boundary}"
    assert int(headers["content-length"]) == len(body)
    assert "transfer-encoding" not in headers  # a known length, not chunked
    dash = f"--{boundary}".encode()
    parts = body.split(dash)
    assert parts[0] == b"" and parts[-1] == b"--\r\n"
    fields = [p.strip(b"\r\n").split(b"\r\n\r\n", 1) for p in parts[1:-1]]
    assert [f[0] for f in fields] == [
        b'Content-Disposition: form-data; name="dataset"',
        b'Content-Disposition: form-data; name="is_raw"',
        b'Content-Disposition: form-data; name="tags"',
        'Content-Disposition: form-data; name="file"; filename="m31 é.fits"\r\n'
        "Content-Type: application/octet-stream".encode(),
    ]  # raw UTF-8 name, no RFC 5987 filename*, as the official client sends it
    assert [f[1] for f in fields[:3]] == [b"11111111-2222", b"True", b"night 1,flat"]
    assert parts[-2] == b"\r\n" + fields[3][0] + b"\r\n\r\n" + content + b"\r\n"


def test_reduced_folder_without_tags_sends_three_parts(capture, tmp_path):
    path = tmp_path / "stack.xisf"
    path.write_bytes(b"XISF0100" + b"\0" * 100)
    folder = Folder(str(tmp_path), telescope="t-uuid", reduced=True)
    remote = Gen2026(Client(capture.url, KEY, retries=0), cache=None, destination="d")
    remote.send(_item(path, folder), Container(dataset="ds"))
    request, headers, body = _headers(capture.raw[-1])
    assert request == "POST /datafiles/ HTTP/1.1"  # the personal account: no prefix
    names = [line for line in body.split(b"\r\n") if line.startswith(b"Content-Disposition")]
    assert names == [b'Content-Disposition: form-data; name="dataset"',
                     b'Content-Disposition: form-data; name="is_raw"',
                     b'Content-Disposition: form-data; name="file"; filename="stack.xisf"']
    assert b"\r\n\r\nFalse\r\n" in body


def test_key_verification_carries_no_key_header(tmp_path):
    capture = Capture(status=204)
    try:
        verify_key(Client(capture.url + "/api", KEY, retries=0), "astro", KEY)
        request, headers, body = _headers(capture.raw[-1])
    finally:
        capture.close()
    assert request == "POST /api/auth/key/verify/ HTTP/1.1"  # after the base path
    assert "x-arcsecond-api-authorization" not in headers and "authorization" not in headers
    assert headers["content-type"] == "application/json"
    assert json.loads(body) == {"username": "astro", "key": KEY}
