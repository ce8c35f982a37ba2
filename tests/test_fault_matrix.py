"""The fault matrix: each kind of fault at each step of a run, counted, then every file
on the server once.

Today's generation (2026), against the sandbox over real HTTP. Each cell injects one
kind of fault at one step; the faults are counted where they happen (the sandbox's trap
says how many requests it struck, strace's log how many calls it failed, the exit
status whether a signal hit a live process), and a cell that injected nothing fails.
Then the faults stop and the next run must end with every local file on the server
exactly once, each dataset once, the manifest agreeing, and a run after it sends nothing.

Steps: `login` (the `login` command's POST /auth/key/verify/, then the credentials
written); `detection` (a run that does not know the generation asks the same route);
`dataset find` (GET /datasets/); `dataset create` (POST /datasets/); `upload` (POST
/datafiles/, and the file read to send it); `record` (the manifest write of an upload's
outcome).

Kinds, and the steps where they exist:

- 5xx (500), 429 (`Retry-After: 1`), reset (the connection reset before the request is
  processed), slow body (the answer's headers at once, then its body a byte every half
  second): at every step that is a request (login, detection, find, create, upload).
  The run (or login) retries and ends 0 by itself.
- answer lost after the server acted (processed, then the connection reset): create and
  upload only, the steps that change the server (a lost answer to a GET, or to the key
  verification, is a reset, the cell above). Retried: the next attempt finds the dataset,
  or gets the duplicate answer for the file; ends 0.
- local EIO: writing the credentials (login), reading the file to upload (upload),
  writing the manifest (record); disk full (ENOSPC): writing the credentials and the
  manifest, the only steps that write a local file. The other steps touch no local file.
  Injected with strace on the real system calls.
- SIGKILL and SIGTERM: at every step, while the sandbox holds that step's request (for
  create: the dataset made, its answer held), or (record) while strace holds the run
  inside the manifest write after the first upload's answer.

Faults the server cannot make at `record` (it is local) and local faults on steps that
touch no local file are the cells that do not exist: 22 server cells, 5 local ones and
12 signals, 39 in all, each printing how many faults it injected (pytest -s). The 2021
generation meets the same server faults at random in test_reliability.py, and SIGKILL at
each phase there too.
"""

from __future__ import annotations

import io
import os
import signal
import subprocess
import time
from collections import Counter
from pathlib import Path

import pytest
from fitsfiles import write_tree
from helpers import FAST_RETRIES, configure, run_process
from syscalls import injected, run_pid, traced, written

from oort_lib.state import config as cfg
from oort_lib.state import manifest as mf
from oort_lib.state.lock import current_holder

pytestmark = pytest.mark.sandbox(page_size=1)  # every list paged, item by item
ROUTES = {  # the request of each step, in the 2026 generation
    "login": ("POST", r"^/auth/key/verify/$"),
    "detection": ("POST", r"^/auth/key/verify/$"),
    "dataset find": ("GET", r"^/datasets/$"),
    "dataset create": ("POST", r"^/datasets/$"),
    "upload": ("POST", r"^/datafiles/$"),
}
REQUEST_STEPS = tuple(ROUTES)
SERVER_KINDS = {  # kind: (trap action, its options)
    "5xx": ("error", {"status": 500}),
    "429": ("throttle", {"retry_after": "1"}),
    "reset": ("reset", {}),
    "lost": ("lost", {}),
    "slow body": ("slow", {"delay": 0.5}),
}
SERVER_CELLS = [(kind, step) for kind in SERVER_KINDS for step in REQUEST_STEPS
                if kind != "lost" or step in ("dataset create", "upload")]
LOCAL_CELLS = [("EIO", "login"), ("EIO", "upload"), ("EIO", "record"),
               ("disk full", "login"), ("disk full", "record")]
SIGNAL_CELLS = [(kind, step) for kind in ("SIGKILL", "SIGTERM")
                for step in (*REQUEST_STEPS, "record")]
assert (len(SERVER_CELLS), len(LOCAL_CELLS), len(SIGNAL_CELLS)) == (22, 5, 12)  # as said
SLOW = {"connect_timeout": 1.0, "read_timeout": 1.0}  # a slow body meets the deadline


def cell(say, kind: str, step: str, count: int) -> None:
    say(f"fault matrix: {kind} at {step}: {count} injected")
    assert count >= 1, f"{kind} at {step}: nothing was injected"


@pytest.fixture
def say(capsys):
    """Print past the capture of the CLI's output (shown with pytest -s)."""

    def out(text: str) -> None:
        with capsys.disabled():
            print(text)

    return out


def tree(root: Path) -> Path:
    """Three frames in two folders (two datasets), written long enough ago."""
    write_tree(root, {f"{folder}/{name}": {"DATE-OBS": "2024-05-02T03:00:00", "OBJECT": folder}
                      for name, folder in (("m31_1.fits", "M31"), ("m31_2.fits", "M31"),
                                           ("ngc_1.fits", "NGC 7000"))})
    return root


def folder(sb, root: Path) -> cfg.Folder:
    return cfg.Folder(str(root), telescope=sb.seed.personal_telescope_uuid)


def set_up(home, sb, root: Path, step: str, **settings) -> None:
    """Watching `root`: logged in (the generation remembered), or for the login step
    only the settings, or for detection without the generation."""
    if step == "login":
        cfg.save_settings(home, cfg.Settings(api=sb.url, folders=(folder(sb, root),),
                                             **dict(FAST_RETRIES, **settings)))
        return
    configure(home, sb.url, sb.seed.upload_key, username=sb.seed.username,
              generation=None if step == "detection" else "2026",
              folders=[folder(sb, root)], **settings)


def login_args(sb) -> tuple[str, ...]:
    return ("login", f"--api={sb.url}", f"--username={sb.seed.username}", "--key-stdin")


def then_every_file_once(cli, home, sb, root: Path) -> None:
    """Faults off: logged in if the fault left it logged out, the next run uploads what
    is left, every file is on the server once, and a run after it sends nothing."""
    sb.clear_traps()
    if not home.credentials_file.exists():
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr("sys.stdin", io.StringIO(sb.seed.upload_key + "\n"))
            assert cli(*login_args(sb)).code == 0
    after = cli("run", "--min-age=0")
    assert after.code == 0, after.err
    files = sb.datafiles()
    names = Counter((f["dataset"], f["filename"]) for f in files)
    assert set(names.values()) == {1}, names
    local = {p.name: p.stat().st_size for p in root.rglob("*.fits")}
    assert sorted(f["filename"] for f in files) == sorted(local)
    assert all(f["size"] == local[f["filename"]] for f in files)
    datasets = Counter((d["name"], d["telescope"]) for d in sb.objects("datasets"))
    assert sorted(datasets.values()) == [1, 1], datasets
    with mf.Manifest(home.manifest_file) as manifest:
        statuses = {r["status"] for r in manifest.rows("SELECT status FROM files")}
    assert statuses == {mf.UPLOADED}
    sb.clear_requests()
    assert cli("run", "--min-age=0").code == 0 and sb.requests == []


# --- the server's faults: in the run itself, retried ------------------------------------


@pytest.mark.parametrize("kind, step", SERVER_CELLS, ids=[f"{k}@{s}" for k, s in SERVER_CELLS])
def test_server_fault(cli, say, home, sb26, tmp_path, monkeypatch, kind, step):
    root = tree(tmp_path / "data")
    set_up(home, sb26, root, step, **(SLOW if kind == "slow body" else {}))
    action, options = SERVER_KINDS[kind]
    trap = sb26.trap(action, *ROUTES[step], **options)
    if step == "login":
        monkeypatch.setattr("sys.stdin", io.StringIO(sb26.seed.upload_key + "\n"))
        faulted = cli(*login_args(sb26))
    else:
        faulted = cli("run", "--min-age=0")
    # One fault, retried: the command ends as if nothing had happened.
    assert faulted.code == 0, faulted.err
    assert "Traceback" not in faulted.err
    # ...having met it: the request was made again (a lost create: looked up instead).
    if (kind, step) == ("lost", "dataset create"):
        lost = sb26.requests.index(("POST", "/datasets/", 0))
        assert ("GET", "/datasets/", 200) in sb26.requests[lost:]
    else:
        assert trap.seen >= 2, sb26.requests
    cell(say, kind, step, trap.hits)
    then_every_file_once(cli, home, sb26, root)


# --- local faults: strace fails the real system call ------------------------------------


def _local_login(kind, home, sb, log: Path) -> tuple[int, str]:
    """EIO or ENOSPC on every write of the credentials (their temporary file)."""
    fault = "ENOSPC" if kind == "disk full" else "EIO"
    target = home.credentials_file.with_name(home.credentials_file.name + ".tmp")
    proc = traced(target, f"write:error={fault}", *login_args(sb), log=log,
                  stdin=subprocess.PIPE)
    out, err = proc.communicate(sb.seed.upload_key + "\n", timeout=120)
    assert not home.credentials_file.exists() and not target.exists()  # nothing half-written
    return proc.returncode, err


def _local_upload(cli, sb, root: Path, log: Path) -> tuple[int, str]:
    """EIO on the first read of a file by its upload (planning does not read a file that
    failed to upload before: its only read is the upload's)."""
    victim = root / "M31" / "m31_1.fits"
    refused = sb.trap("error", *ROUTES["upload"], times=100, status=503)
    assert cli("run", "--min-age=0").code == 1  # every upload refused
    assert refused.hits >= 3
    sb.clear_traps()
    proc = traced(victim, "read:error=EIO:when=1", "run", "--min-age=0", log=log)
    out, err = proc.communicate(timeout=120)
    assert f"{victim.name}: " in err and "Input/output error" in err
    return proc.returncode, err


def _local_record(kind, home, sb, log: Path) -> tuple[int, str]:
    """The manifest's disk fails while the first upload is in flight: its record is the
    first write to meet it. strace fails the writes to the WAL under the state folder's
    other name, which it gets (renamed, a symlink left in its place) while the sandbox
    holds that upload's answer."""
    fault = "error=ENOSPC" if kind == "disk full" else "error=EIO:when=1"
    state = home.state_dir
    moved = state.with_name(state.name + ".failing")
    answer = sb.trap("hold-answer", *ROUTES["upload"])
    proc = traced(moved / "manifest.sqlite-wal", f"pwrite64:{fault}", "run", "--min-age=0",
                  "--jobs=1", log=log)
    try:
        run_pid(home.lock_file, proc)
        assert answer.wait(60)
        assert proc.poll() is None
        os.rename(state, moved)
        os.symlink(moved, state)
        answer.release()
        out, err = proc.communicate(timeout=120)
    finally:
        if state.is_symlink():
            state.unlink()
            os.rename(moved, state)
    # That upload stored, its record failed, and nothing more was sent: no file goes
    # out that the manifest could not say was sent.
    assert [f["filename"] for f in sb.datafiles()] == ["m31_1.fits"]
    with mf.Manifest(home.manifest_file) as manifest:
        rows = manifest.rows("SELECT status FROM files WHERE relpath = 'M31/m31_1.fits'")
    assert rows[0]["status"] != mf.UPLOADED
    return proc.returncode, err


@pytest.mark.parametrize("kind, step", LOCAL_CELLS, ids=[f"{k}@{s}" for k, s in LOCAL_CELLS])
def test_local_fault(cli, say, home, sb26, tmp_path, kind, step):
    root = tree(tmp_path / "data")
    set_up(home, sb26, root, step, jobs=1)
    log = tmp_path / "strace.log"
    if step == "login":
        code, err = _local_login(kind, home, sb26, log)
    elif step == "upload":
        code, err = _local_upload(cli, sb26, root, log)
    else:
        code, err = _local_record(kind, home, sb26, log)
    assert "Traceback" not in err and "internal error" not in err, err
    if kind == "disk full":
        assert code == 2 and "disk is full" in err, err
    elif step == "upload":
        assert code == 1, err  # that file failed (transient), retried by the next run
    else:  # the OS's words for it, or SQLite's
        said = "Input/output error" if step == "login" else "disk I/O error"
        assert code == 2 and said in err, err
    cell(say, kind, step, injected(log))
    then_every_file_once(cli, home, sb26, root)


# --- signals: at the moment the sandbox (or strace) holds the step -----------------------


@pytest.mark.parametrize("kind, step", SIGNAL_CELLS, ids=[f"{k}@{s}" for k, s in SIGNAL_CELLS])
def test_signal(cli, say, home, sb26, tmp_path, kind, step):
    root = tree(tmp_path / "data")
    set_up(home, sb26, root, step, jobs=1)
    signum = getattr(signal, kind)
    if step == "record":
        # A first run whose uploads are refused writes the manifest (its creation under
        # strace's delay on every write would cost seconds); the next retries them.
        sb26.trap("error", *ROUTES["upload"], times=100, status=503)
        assert cli("run", "--min-age=0").code == 1
        sb26.clear_traps()
        trap = sb26.trap("hold-answer", *ROUTES["upload"])
        wal = Path(str(home.manifest_file) + "-wal")
        proc = traced(wal, "pwrite64:delay_exit=100000", "run", "--min-age=0", "--jobs=1")
        pid = run_pid(home.lock_file, proc)
        assert trap.wait(60)
        before = written(wal)
        trap.release()
        deadline = time.monotonic() + 60
        while written(wal) == before:  # the run is inside the write of that record
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.002)
    else:
        action = "hold-answer" if step == "dataset create" else "hold"
        trap = sb26.trap(action, *ROUTES[step])
        if step == "login":
            key = tmp_path / "key"
            key.write_text(sb26.seed.upload_key + "\n")
            with key.open() as stdin:
                proc = run_process(*login_args(sb26), stdin=stdin)
        else:
            proc = run_process("run", "--min-age=0", "--jobs=1")
        pid = proc.pid
        deadline = time.monotonic() + 60
        while not trap.reached.is_set():
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline
            time.sleep(0.002)
    assert proc.poll() is None  # alive when the signal comes
    os.kill(pid, signum)
    if step == "upload" and kind == "SIGTERM":
        trap.release()  # the upload in flight finishes (the grace), then the run stops
    out, err = proc.communicate(timeout=60)
    sb26.clear_traps()
    if kind == "SIGKILL":
        assert proc.returncode == -signal.SIGKILL
    elif step == "login":
        # login has no graceful stop to make: ended at once, nothing stored (below)
        assert proc.returncode == -signal.SIGTERM, err
    else:
        assert proc.returncode == 143, err  # a graceful stop
        assert "Traceback" not in err
    if step == "login":
        assert not home.credentials_file.exists()
    if kind == "SIGTERM" and step in ("upload", "record"):
        # The upload in flight finished and was recorded; none started after the signal.
        assert [f["filename"] for f in sb26.datafiles()] == ["m31_1.fits"]
        with mf.Manifest(home.manifest_file) as manifest:
            row = manifest.file(str(root), "M31/m31_1.fits")
        assert row["status"] == mf.UPLOADED
    assert current_holder(home.lock_file) is None
    cell(say, kind, step, 1)
    then_every_file_once(cli, home, sb26, root)
