"""Exactly the right bytes reach the server (issue 18, the upload path): the file planned
and no other, the bytes planned and no others, checksums verified as they stream, names
intact on the wire, "already there" only when the server says so of this file, and a new
file under an old name never silently dropped (2026).

Every test runs real uploads against a sandbox over real HTTP, and ends by checking that
every file the sandbox holds has the exact bytes (sha256) of the local file it came from.
Moments inside a run (between the plan and the send, in the middle of a body) are reached
through the run's own events, not by sleeping.
"""

from __future__ import annotations

import io
import os
import socket
import threading
from pathlib import Path

import pytest
import requests
from fitsfiles import NIGHT, settle
from helpers import configure, sha, unavailable
from helpers import manifest_row as row
from hostile import wait_for
from sandbox_api import Api

from oort_lib.arcsecond.answer import is_duplicate
from oort_lib.arcsecond.body import FileBody, param
from oort_lib.run import sync
from oort_lib.sandbox import Sandbox
from oort_lib.state import config as cfg
from oort_lib.state import credentials
from oort_lib.state import manifest as mf

# --- the setup and the final check (the sandboxes: conftest's server, sb26) -------------


def setup(home, sb: Sandbox, root: Path, **settings) -> cfg.Settings:
    """Logged in to `sb` in its generation, watching `root` (with a telescope in 2026)."""
    generation = "2026" if sb.dialect == "2026" else "2021"
    telescope = sb.seed.personal_telescope_uuid if generation == "2026" else None
    return configure(home, sb.url, sb.seed.upload_key,
                     folders=[cfg.Folder(str(root), telescope=telescope)],
                     generation=generation, username=sb.seed.username, **settings)


def run(home, settings, events=None, **kwargs) -> sync.RunResult:
    creds = credentials.load(home.credentials_file)
    return sync.run(home, settings, creds, events=events, min_age=0, **kwargs)


def assert_exact(sb: Sandbox, *sources: Path) -> None:
    """Every file the sandbox holds is one of `sources`, byte for byte (its stored copy
    and its recorded hash); nothing half received is left in its temporary folder."""
    by_name = {path.name: sha(path) for path in sources}
    for held in sb.datafiles():
        assert held["filename"] in by_name, f"{held['filename']!r} was not sent from here"
        assert held["sha256"] == sha(Path(held["path"])) == by_name[held["filename"]], \
            held["filename"]
    assert wait_for(lambda: not list((sb.data_dir / "tmp").iterdir()))


def names_on(sb: Sandbox) -> list[str]:
    return sorted(f["filename"] for f in sb.datafiles())


def cut_uploads(sb: Sandbox) -> list:
    """Upload requests whose connection closed before an answer (body cut short)."""
    return [r for r in sb.requests if r[0] in ("POST", "PATCH") and "datafiles" in r[1]
            and r[2] == 0]


def fits_bytes(*shapes: tuple[int, int], checksum: bool = False) -> tuple[bytes, int]:
    """(a FITS file of one image HDU per shape, where its second HDU starts)."""
    import numpy as np
    from astropy.io import fits

    rng = np.random.default_rng(18)
    hdus = [fits.PrimaryHDU(rng.integers(0, 4000, shapes[0], dtype="int16"),
                            header=fits.Header(list(NIGHT.items())))]
    hdus += [fits.ImageHDU(rng.integers(0, 4000, shape, dtype="int16")) for shape in shapes[1:]]
    out = io.BytesIO()
    fits.HDUList(hdus).writeto(out, checksum=checksum)
    raw = out.getvalue()
    with fits.open(io.BytesIO(raw)) as opened:
        second = opened[1].fileinfo()["hdrLoc"] if len(shapes) > 1 else len(raw)
    return raw, second


def write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    settle(path)  # planned at once, whatever min_age
    return path


class OnFirstChunk(sync.Events):
    """Calls `action` once, when the first block of an upload is about to leave (from
    the upload's own thread: the body waits meanwhile)."""

    def __init__(self, action):
        self.action, self.fired = action, False

    def sent(self, nbytes: int) -> None:
        if not self.fired:
            self.fired = True
            self.action()


# --- bytes sent = bytes planned (points 3 and 7) ---------------------------------------


class Writer(threading.Thread):
    """A capture program finishing a file: appends `rest` in blocks once `go` is set,
    and sets `first` after its first block (so the upload under way sees it)."""

    def __init__(self, path: Path, rest: bytes, blocks: int = 4):
        super().__init__(daemon=True)
        self.path, self.rest, self.blocks = path, rest, blocks
        self.go, self.first = threading.Event(), threading.Event()

    def run(self) -> None:
        self.go.wait(30)
        step = -(-len(self.rest) // self.blocks)
        with open(self.path, "ab") as out:
            for start in range(0, len(self.rest), step):
                out.write(self.rest[start:start + step])
                out.flush()
                self.first.set()


def test_writer_appending_during_the_upload_leaves_nothing_then_sent_once(home, server,
                                                                          tmp_path):
    whole, split = fits_bytes((1000, 1000), (400, 400))
    root = tmp_path / "data"
    frame = write(root / "M31" / "light_001.fits", whole[:split])  # a whole first HDU
    settings = setup(home, server, root)
    writer = Writer(frame, whole[split:])
    writer.start()

    def start_writing():
        writer.go.set()
        assert writer.first.wait(30)

    first = run(home, settings, OnFirstChunk(start_writing))
    writer.join(30)
    assert first.uploaded == 0 and first.exit_code == 0  # it waits: not a failure
    (item, why), = first.postponed
    assert why == "changed during its upload; it is uploaded again later"
    assert row(home, frame.name)["status"] == mf.PENDING
    assert wait_for(lambda: cut_uploads(server))  # it was under way, then cut
    assert names_on(server) == []  # nothing of it, in either generation
    assert frame.read_bytes() == whole
    again = run(home, settings)
    assert again.uploaded == 1 and again.exit_code == 0
    assert names_on(server) == [frame.name]
    assert_exact(server, frame)


@pytest.mark.parametrize("change", ["grown", "shrunk", "rewritten"])
def test_file_changed_during_its_upload_2026_stores_nothing(home, sb26, tmp_path, change):
    data, _ = fits_bytes((1200, 1200))
    root = tmp_path / "data"
    frame = write(root / "M31" / "light_001.fits", data)
    settings = setup(home, sb26, root)

    def meddle():
        planned = frame.stat()
        if change == "grown":
            with open(frame, "ab") as out:
                out.write(b"\0" * 2880)
        elif change == "shrunk":  # a read that ends early
            os.truncate(frame, len(data) // 2)
        else:  # the same size, rewritten in place: only the time says so
            with open(frame, "r+b") as out:
                out.seek(len(data) - 100)
                out.write(b"\x01" * 10)
            os.utime(frame, ns=(planned.st_atime_ns, planned.st_mtime_ns + 10**9))

    result = run(home, settings, OnFirstChunk(meddle))
    assert result.uploaded == 0
    assert [why for _, why in result.postponed] == [
        "changed during its upload; it is uploaded again later"]
    assert wait_for(lambda: cut_uploads(sb26))  # cut before the body's end
    assert sb26.datafiles() == []  # 2026 keeps a file for good: nothing of it is there
    write(frame, data)
    again = run(home, settings)
    assert again.uploaded == 1 and again.exit_code == 0
    assert_exact(sb26, frame)


# --- only the file planned (point 8) -----------------------------------------------------


@pytest.mark.parametrize("target", ["outside", "inside"])
def test_symlink_swapped_in_after_planning_sends_nothing(home, sandbox, tmp_path, target):
    data, _ = fits_bytes((64, 64))
    root = tmp_path / "data"
    frame = write(root / "M31" / "light_001.fits", data)
    other_data = bytearray(data)
    other_data[-1] ^= 0xFF  # same size, another content
    other = write((tmp_path / "elsewhere" if target == "outside" else root / "M31")
                  / "light_002.fits", bytes(other_data))
    os.utime(other, ns=(frame.stat().st_atime_ns, frame.stat().st_mtime_ns))
    settings = setup(home, sandbox, root)
    aside = tmp_path / "aside.fits"

    class Swap(sync.Events):
        def planned(self, plan):
            os.rename(frame, aside)
            os.symlink(other, frame)  # same size, same time: only its identity differs

    result = run(home, settings, Swap(), jobs=1)
    assert result.exit_code == 1
    failed = {i.relpath: why for i, why in result.failed}
    assert failed["M31/light_001.fits"].startswith("another file than the one planned")
    assert "light_001.fits" not in names_on(sandbox)
    sent = [r for r in sandbox.requests if r[0] == "POST" and "datafiles" in r[1]]
    assert len(sent) == (1 if target == "inside" else 0)  # light_002 itself, when watched
    os.unlink(frame)
    os.rename(aside, frame)
    again = run(home, settings)
    assert again.exit_code == 0 and again.uploaded == 1
    assert_exact(sandbox, frame, other)


def test_symlink_inside_the_folder_at_walk_time_is_sent(home, sandbox, tmp_path):
    data, _ = fits_bytes((64, 64))
    root = tmp_path / "data"
    real = write(root / "raw" / "light_001.fits", data)
    link = root / "M31" / "linked.fits"
    link.parent.mkdir()
    os.symlink(real, link)
    settings = setup(home, sandbox, root)
    result = run(home, settings)
    assert result.exit_code == 0 and result.uploaded == 2
    assert names_on(sandbox) == ["light_001.fits", "linked.fits"]
    assert_exact(sandbox, real, link)


# --- checksums on the bytes as they stream (point 2) ------------------------------------


@pytest.mark.parametrize("when", ["after the plan", "before the plan"])
def test_flipped_bit_under_a_valid_datasum_is_cut_mid_stream(home, server, tmp_path, when):
    data, split = fits_bytes((1000, 1000), (300, 300), checksum=True)
    root = tmp_path / "data"
    frame = write(root / "M31" / "light_001.fits", data)
    fine = write(root / "M31" / "light_002.fits", fits_bytes((32, 32), checksum=True)[0])
    settings = setup(home, server, root)
    at = split // 2  # in the first HDU's data: the second HDU would still be to send

    def flip():
        planned = frame.stat()
        with open(frame, "r+b") as out:
            out.seek(at)
            byte = out.read(1)[0]
            out.seek(at)
            out.write(bytes([byte ^ 0x04]))
        # In place, same size and time: the plan's checks cannot see it, the sums do.
        os.utime(frame, ns=(planned.st_atime_ns, planned.st_mtime_ns))

    class FlipAfterPlan(sync.Events):
        def planned(self, plan):
            flip()

    if when == "before the plan":
        flip()
    result = run(home, settings, FlipAfterPlan() if when == "after the plan" else None,
                 jobs=1)
    assert result.exit_code == 1
    failed = {i.relpath: why for i, why in result.failed}
    problems = {relpath: why for _root, relpath, why in getattr(result.plan, "problems", ())}
    reason = failed.get("M31/light_001.fits") or problems.get("M31/light_001.fits")
    assert reason and "DATASUM" in reason and "damaged" in reason, (failed, problems)
    if when == "after the plan":
        assert result.bytes_sent < len(data)  # cut mid-stream, before the second HDU
        assert wait_for(lambda: cut_uploads(server))
    assert names_on(server) == ["light_002.fits"]
    recorded = row(home, frame.name)
    assert (recorded["status"], recorded["transient"]) == (mf.FAILED, 0)  # a problem
    quiet = run(home, settings)  # said once, then waits for the file to change
    assert quiet.exit_code == 0 and quiet.uploaded == 0
    write(frame, data)  # copied again, whole
    os.utime(frame)
    fixed = run(home, settings)
    assert fixed.exit_code == 0 and fixed.uploaded == 1
    assert_exact(server, frame, fine)


# --- names intact on the wire (point 9) --------------------------------------------------

NAMES = ["line\nbreak.fits", "carriage\rreturn.fits", "crlf\r\n--x.fits", 'quote"d.fits',
         "it's.fits", "tab\tand\x1bescape.fits", "caf\u00e9 \u661f\u96f2.fits",
         "percent%41 and %0.fits", "\u00e9\n\u00e9.fits"]


def test_names_with_line_breaks_and_quotes_arrive_intact(home, server, tmp_path):
    root = tmp_path / "data"
    files = [write(root / "M31" / name, fits_bytes((8 + n, 8))[0])
             for n, name in enumerate(NAMES)]
    backslash = write(root / "M31" / "back\\slash.fits", fits_bytes((40, 8))[0])
    settings = setup(home, server, root)
    result = run(home, settings)
    assert result.uploaded == len(NAMES)
    assert names_on(server) == sorted(NAMES)
    # A backslash is a folder separator to the server: refused there, with its reason,
    # never stored under a cut name.
    (item, why), = result.failed
    assert item.path == str(backslash) and "path separator" in why
    assert result.exit_code == 1
    assert_exact(server, *files)


@pytest.mark.parametrize("name", [*NAMES, "back\\slash.fits", "plain.fits",
                                  "".join(map(chr, range(1, 128))) + ".fits"])
def test_the_file_part_header_is_what_the_official_client_sends(name, tmp_path):
    try:
        from httpx import _multipart as multipart  # the official client's transport
    except ImportError:
        unavailable("httpx is not installed (make venv installs the official client)")
    path = tmp_path / "x.fits"
    path.write_bytes(b"SIMPLE")
    body = FileBody(str(path), name, filename_star=False)
    head = body.read()
    body.close()
    official = multipart.FileField("file", (name, b"", "application/octet-stream"))
    assert head == f"--{body.boundary}\r\n".encode() + official.render_headers()
    assert b"\n" not in param(name).encode() and b"\r" not in param(name).encode()


# --- "already there" only when the server says so of this file (point 10) --------------

REFUSALS = {
    "another sentence": "Storage quota reached; nothing already exists in dataset yet.",
    "another file": "light_009.fits already exists in dataset 1b2c.",
    "an echoed name": "{filename}: name refused (storage quota reached).",
}


@pytest.mark.parametrize("refusal", REFUSALS, ids=list(REFUSALS))
def test_the_duplicate_phrase_said_for_another_reason_fails_the_file(home, server, tmp_path,
                                                                     refusal):
    root = tmp_path / "data"
    name = "m31 already exists in dataset.fits" if refusal == "an echoed name" else "m31.fits"
    frame = write(root / "M31" / name, fits_bytes((16, 16))[0])
    settings = setup(home, server, root)
    server.faults.upload_refusal = REFUSALS[refusal]
    result = run(home, settings)
    assert result.exit_code == 1 and result.uploaded == result.already == 0
    (item, why), = result.failed
    assert why.startswith("refused by the server (400:"), why
    assert row(home, name)["status"] == mf.FAILED
    assert server.datafiles() == []
    server.faults.upload_refusal = ""
    again = run(home, settings, retry_failed=True)
    assert again.exit_code == 0 and again.uploaded == 1
    assert_exact(server, frame)


def test_a_real_duplicate_is_still_already_there_2026(home, sb26, tmp_path):
    root = tmp_path / "data"
    frame = write(root / "M31" / "m31.fits", fits_bytes((16, 16))[0])
    api = Api(sb26)
    dataset = api.dataset("M31")["uuid"]  # another installation sent it before
    assert api.send(dataset, frame.name, frame.read_bytes()).status_code == 201
    settings = setup(home, sb26, root)
    result = run(home, settings)
    assert result.exit_code == 0 and result.already == 1
    assert row(home, frame.name)["reason"] == "already on the server (not verified)"
    assert_exact(sb26, frame)


def _answer(body) -> requests.Response:
    import json

    response = requests.Response()
    response.status_code = 400
    response._content = json.dumps(body).encode()
    return response


@pytest.mark.parametrize("body, duplicate", [
    ({"detail": ["a.fits already exists in dataset 1."]}, True),  # 2021
    ({"detail": "a.fits already exists in dataset 1."}, True),  # 2026
    ({"non_field_errors": ['"a.fits" already exists in dataset 1.']}, True),
    (["a.fits already exists in dataset 1."], True),
    ({"detail": "ba.fits already exists in dataset 1."}, False),
    ({"detail": "Quota reached: a.fits already exists in dataset 1."}, False),
    ({"detail": "a.fits: nothing already exists in dataset 1."}, False),
    ({"detail": "a.fits is too large", "hint": "a.fits already exists in dataset 1."}, False),
    ({"file": ["a.fits already exists in dataset 1."]}, True),
    ({"detail": {"text": "a.fits already exists in dataset 1."}}, False),
])
def test_duplicate_answers_name_the_file(body, duplicate):
    assert is_duplicate(_answer(body), ["a.fits"]) is duplicate
    assert is_duplicate(_answer(body), []) is False


def test_a_name_sent_encoded_is_recognised_as_the_server_writes_it(tmp_path):
    path = tmp_path / "x.fits"
    path.write_bytes(b"SIMPLE")
    body = FileBody(str(path), "a\nb.fits")
    body.close()
    # A server that does not decode the parameter keeps the name as it went on the wire.
    assert is_duplicate(_answer({"detail": "a%0Ab.fits already exists in dataset 1."}),
                        body.names)


# --- a new file under an old name (point 11) --------------------------------------------


@pytest.mark.parametrize("how", ["moved away", "modified in place"])
def test_a_new_file_under_an_old_name_is_a_conflict_every_run_2026(cli, home, sb26, tmp_path,
                                                                   how):
    root = tmp_path / "data"
    old = write(root / "M51" / "Light_001.fits", fits_bytes((16, 16))[0])
    settings = setup(home, sb26, root)
    assert run(home, settings).uploaded == 1
    kept = tmp_path / "archive" / "Light_001.fits"
    if how == "moved away":
        kept.parent.mkdir()
        os.rename(old, kept)
    else:
        kept = write(kept, old.read_bytes())
    write(old, fits_bytes((20, 20))[0])  # the next night's first frame, same name
    os.utime(old)
    sb26.clear_requests()
    for _ in range(2):  # every run says it: never a quiet failure
        result = run(home, settings)
        assert result.exit_code == 1 and result.uploaded == 0
        (item, why), = result.conflicts
        assert why.startswith("conflict: the server already holds an earlier file named "
                              "Light_001.fits in dataset M51 (uploaded ")
        assert "cannot replace a file: rename this one" in why
        assert row(home, "Light_001.fits")["status"] == mf.CONFLICT
    assert [r for r in sb26.requests if r[0] != "GET"] == []  # nothing sent for it
    status = cli("status")
    assert "Light_001.fits" in status.out + status.err
    report = cli("report", f"--output={tmp_path / 'report.html'}")
    assert report.code == 0
    page = (tmp_path / "report.html").read_text()
    assert "Conflicts" in page and "earlier file named Light_001.fits" in page
    assert_exact(sb26, kept)  # the server's copy is the first file's, intact
    renamed = old.with_name("Light_001b.fits")
    os.rename(old, renamed)
    done = run(home, settings)
    assert done.exit_code == 0 and done.uploaded == 1 and not done.conflicts
    assert_exact(sb26, kept, renamed)


def test_a_new_file_under_an_old_name_replaces_it_2021(home, tmp_path):
    with Sandbox(tmp_path / "sb21", page_size=2, dialect="2021") as sb21:
        root = tmp_path / "data"
        old = write(root / "M51" / "Light_001.fits", fits_bytes((16, 16))[0])
        settings = setup(home, sb21, root)
        assert run(home, settings).uploaded == 1
        os.rename(old, tmp_path / "moved.fits")
        write(old, fits_bytes((20, 20))[0])
        os.utime(old)
        result = run(home, settings)
        assert result.exit_code == 0 and result.uploaded == 1
        assert [r[0] for r in sb21.requests if "datafiles" in r[1]][-1] == "PATCH"
        assert_exact(sb21, old)


# --- the sandbox refuses a body cut before its final boundary ---------------------------


def _target(sb: Sandbox) -> tuple[str, list[tuple[str, str]]]:
    """(upload path, text fields) of a dataset made for the test in `sb`'s generation."""
    api = Api(sb)
    if sb.dialect == "2026":
        return "/datafiles/", [("dataset", api.dataset("M31")["uuid"]), ("is_raw", "True")]
    return f"/datasets/{api.chain()['uuid']}/datafiles/", []


@pytest.mark.parametrize("cut", ["inside the file", "after the file bytes",
                                 "inside the final boundary"])
def test_a_body_cut_before_its_final_boundary_is_refused(server, tmp_path, cut):
    path, fields = _target(server)
    source = tmp_path / "cut.fits"
    source.write_bytes(fits_bytes((300, 300))[0])
    body = FileBody(str(source), "cut.fits", fields=fields,
                    filename_star=server.dialect == "2021")
    whole = b"".join(iter(lambda: body.read(), b""))
    assert len(whole) == body.len
    tail = len(f"\r\n--{body.boundary}--\r\n")
    keep = {"inside the file": len(whole) // 2, "after the file bytes": len(whole) - tail,
            "inside the final boundary": len(whole) - 4}[cut]
    head = (f"POST {path} HTTP/1.1\r\nHost: x\r\nX-Arcsecond-API-Authorization: Key "
            f"{server.seed.upload_key}\r\nContent-Type: {body.content_type}\r\n"
            f"Content-Length: {len(whole)}\r\n\r\n").encode()
    with socket.create_connection((server.host, server.port), timeout=10) as conn:
        conn.sendall(head + whole[:keep])
    assert wait_for(lambda: cut_uploads(server))
    # The same cut body, its length honest: a malformed body, refused with a 400.
    honest = requests.post(server.url + path, data=whole[:keep], timeout=10, headers={
        "X-Arcsecond-API-Authorization": f"Key {server.seed.upload_key}",
        "Content-Type": body.content_type})
    assert honest.status_code == 400, honest.text
    assert server.datafiles() == []
    assert wait_for(lambda: not list((server.data_dir / "tmp").iterdir()))
