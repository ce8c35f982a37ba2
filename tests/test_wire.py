"""What oort-sync puts on the wire in the 2026 generation, byte by byte, compared with
what the official client 4.5.0 sends (shared/reference/arcsecond-api-2026.md, 5.1 and
2.1): a capture server records the raw requests."""

from __future__ import annotations

import json
import socket
import threading

import pytest

from oort_lib.arcsecond.client import Client
from oort_lib.arcsecond.gen2026 import Gen2026, verify_key
from oort_lib.arcsecond.remote import Container
from oort_lib.run.item import Item
from oort_lib.state.config import Folder

KEY = "5a4db0c5e7e57ca11ab1e0000000c0de"


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
