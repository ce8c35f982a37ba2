"""Faults, crashes, concurrency and files being written: nothing lost, nothing sent twice.

Each test here backs a line of the README's "Reliability" table.
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from collections import Counter
from pathlib import Path
from typing import NamedTuple

import pytest
from helpers import configure, run_process
from syscalls import holds_open, run_pid, traced, written

from oort_lib.samples import make_sample_tree, write_fits
from oort_lib.state import config as cfg
from oort_lib.state import manifest as mf
from oort_lib.state.lock import current_holder


def many_files(root: Path, count: int) -> Path:
    """`count` real FITS files over a few nights and folders (some calibrations)."""
    for index in range(count):
        folder = ["M31", "M31/Ha", "Flats/V", "NGC 7000"][index % 4]
        night = 10 + index % 3
        write_fits(root / folder / f"frame #{index:03d}.fits",
                   {"DATE-OBS": f"2021-03-{night:02d}T23:{index % 60:02d}:00", "OBJECT": folder})
    return root


def assert_exactly_once(sandbox, root: Path) -> None:
    """Every FITS file of the tree is on the server once, and no object is duplicated."""
    logs = sandbox.objects("nightlogs")
    assert not [k for k, n in Counter((n["date"], n["telescope"]) for n in logs).items() if n > 1]
    for kind in ("observations", "calibrations"):
        keys = Counter((o["night_log"], o["name"]) for o in sandbox.objects(kind))
        assert not [k for k, n in keys.items() if n > 1], kind
    datasets = Counter((d.get("observation"), d.get("calibration"), d["name"])
                       for d in sandbox.objects("datasets"))
    assert not [k for k, n in datasets.items() if n > 1]
    files = sandbox.objects("datafiles")
    names = Counter((f["dataset"], f["filename"]) for f in files)
    assert not [k for k, n in names.items() if n > 1]
    local = {p.name: p.stat().st_size for p in root.rglob("*.fits")}
    assert sorted(f["filename"] for f in files) == sorted(local)
    assert all(f["size"] == local[f["filename"]] for f in files)


def all_uploaded(paths: cfg.Paths) -> bool:
    with mf.Manifest(paths.manifest_file) as manifest:
        rows = manifest.rows("SELECT status FROM files WHERE relpath LIKE '%.fits'")
    return bool(rows) and all(r["status"] == "uploaded" for r in rows)


@pytest.mark.slow
def test_random_faults_converge_to_exactly_once(cli, home, logged_in, sandbox, tmp_path):
    root = many_files(tmp_path / "data", 24)
    logged_in(root, jobs=4)
    sandbox.faults.seed = 7
    sandbox.faults.error_rate = 0.12
    sandbox.faults.lost_answer_rate = 0.08
    sandbox.faults.throttle_rate = 0.05
    sandbox.faults.retry_after = 0.05
    sandbox.faults.reset_rate = 0.05
    codes = []
    for _ in range(12):
        result = cli("run", "--min-age=0")
        codes.append(result.code)
        assert result.code in (0, 1, 4), result.err
        assert "Traceback" not in result.err
        if result.code == 0 and all_uploaded(home):
            break
    injected = Counter(s for _m, _p, s in sandbox.requests if s >= 500 or s == 429)
    assert sum(injected.values()) >= 5, injected  # the faults really happened
    assert codes[-1] == 0, codes
    sandbox.faults.error_rate = sandbox.faults.lost_answer_rate = 0
    sandbox.faults.throttle_rate = sandbox.faults.reset_rate = 0
    assert_exactly_once(sandbox, root)
    sandbox.clear_requests()
    assert cli("run", "--min-age=0").code == 0
    assert sandbox.requests == []


def test_transient_error_fixed_by_retry_is_silent(cli, logged_in, sandbox, tmp_path):
    root = many_files(tmp_path / "data", 4)
    logged_in(root, retries=6)
    sandbox.faults.throttle_rate = 0.5
    sandbox.faults.retry_after = 0.01
    result = cli("run", "--min-age=0")
    assert result.code == 0 and result.err == "" and result.out == ""
    assert len(sandbox.objects("datafiles")) == 4
    assert any(status == 429 for _m, _p, status in sandbox.requests)


def test_revoked_key_stops_at_once_without_failing_files(home, logged_in, sandbox, tmp_path):
    root = many_files(tmp_path / "data", 30)
    logged_in(root, jobs=2)
    sandbox.faults.latency = 0.03
    proc = run_process("run", "--min-age=0")

    def revoke():
        while proc.poll() is None and len(sandbox.objects("datafiles")) < 3:
            time.sleep(0.01)
        sandbox.revoke_key(sandbox.seed.upload_key)

    thread = threading.Thread(target=revoke)
    thread.start()
    out, err = proc.communicate(timeout=120)
    thread.join()
    assert proc.returncode == 3, err
    assert "refused the key" in err
    uploaded = len(sandbox.objects("datafiles"))
    assert 3 <= uploaded < 30
    with mf.Manifest(home.manifest_file) as manifest:
        counts = dict(Counter(r["status"] for r in manifest.rows("SELECT status FROM files")))
    assert counts.get("failed", 0) == 0
    assert counts["uploaded"] == uploaded and counts["pending"] == 30 - uploaded


def test_server_down_exits_4_quickly(cli, home, tmp_path, monkeypatch):
    import socket

    from oort_lib.arcsecond.budget import Budget

    waits: list[float] = []  # each wait between attempts, as the client asks for it
    pause = Budget.pause
    monkeypatch.setattr(Budget, "pause", lambda self, seconds, stop: (
        waits.append(seconds), pause(self, seconds, stop)))
    with socket.socket() as sock:  # a free port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    root = many_files(tmp_path / "data", 3)
    cfg.save_settings(home, cfg.Settings(api=f"http://127.0.0.1:{port}",
                                         folders=(cfg.Folder(str(root)),)))
    from oort_lib.state import credentials

    credentials.save(home.credentials_file, credentials.Credentials(key="k" * 32))
    start = time.monotonic()
    result = cli("run", "--min-age=0")  # default retries and backoff
    elapsed = time.monotonic() - start
    assert result.code == 4, result.err
    assert "unreachable" in result.err
    # 5 attempts, 4 waits of the default backoff (0.5, 1, 2, 4 s, jittered): at most
    # 7.5 s of waiting, once for the run, not per file. The clock only bounds the whole
    # (about 5 s here), with a wide margin for a busy host.
    assert len(waits) == 4 and sum(waits) <= 7.5, waits
    assert elapsed < 60
    with mf.Manifest(home.manifest_file) as manifest:
        assert {r["status"] for r in manifest.rows("SELECT status FROM files")} == {"pending"}


# --- SIGKILL at each phase of a run, on an event the server sees ---------------------


class Moment(NamedTuple):
    """Where a run is killed: `phase` as the README names it, `what` happens then.

    `trap` (action, method, path pattern, nth) is the sandbox's event (trap.py): a
    request held as it arrives ("hold"), held once processed ("hold-answer": the object
    created, the file stored, the answer not sent) or just answered ("answered").
    `traced` runs it under strace: "walk" holds the run inside the open() of one file's
    header read; "commit" holds it inside the first write of the manifest's WAL after
    the first upload's answer (the record of that upload, jobs=1).
    """

    phase: str
    what: str
    trap: tuple | None = None
    jobs: int = 3
    traced: str | None = None


UPLOAD = r"/datafiles/$"
# The same in both generations: the uploads, then the manifest's commit.
UPLOADS = [
    Moment("uploads", "upload 1 started", ("hold", "POST", UPLOAD, 1)),
    Moment("uploads", "upload 3 started", ("hold", "POST", UPLOAD, 3)),
    Moment("uploads", "upload 2 stored, its answer not sent",
           ("hold-answer", "POST", UPLOAD, 2)),
    Moment("uploads", "upload 1 answered, its record not awaited",
           ("answered", "POST", UPLOAD, 1)),
    Moment("uploads", "upload 3 answered, its record not awaited",
           ("answered", "POST", UPLOAD, 3)),
    Moment("commits", "inside the manifest write recording upload 1",
           ("hold-answer", "POST", UPLOAD, 1), jobs=1, traced="commit"),
]
MOMENTS = {
    "2021": [
        Moment("walk", "reading the headers", traced="walk"),
        Moment("looking objects up", "the first night log lookup",
               ("hold", "GET", r"^/nightlogs/$", 1), jobs=1),
        Moment("creating objects", "a night log created, its answer not sent",
               ("hold-answer", "POST", r"^/nightlogs/$", 1), jobs=1),
        Moment("creating objects", "an observation created, its answer not sent",
               ("hold-answer", "POST", r"^/observations/$", 1), jobs=1),
        Moment("creating objects", "a dataset created, its answer not sent",
               ("hold-answer", "POST", r"^/datasets/$", 1), jobs=1),
        *UPLOADS,
    ],
    "2026": [
        Moment("walk", "reading the headers", traced="walk"),
        Moment("looking objects up", "the first dataset lookup",
               ("hold", "GET", r"^/datasets/$", 1), jobs=1),
        Moment("creating objects", "a dataset created, its answer not sent",
               ("hold-answer", "POST", r"^/datasets/$", 1), jobs=1),
        Moment("creating objects", "a second dataset created, its answer not sent",
               ("hold-answer", "POST", r"^/datasets/$", 1), jobs=3),
        *UPLOADS,
    ],
}


def _until(proc, ready, what: str, seconds: float = 60.0) -> None:
    """Wait for `ready()` while the run is alive; fail if it ends first."""
    deadline = time.monotonic() + seconds
    while not ready():
        assert proc.poll() is None, f"the run ended before {what}: {proc.communicate()}"
        assert time.monotonic() < deadline, f"no {what} within {seconds:g} s"
        time.sleep(0.002)


def recorded(home: cfg.Paths) -> Counter:
    """The names of the files the manifest holds as uploaded."""
    with mf.Manifest(home.manifest_file) as manifest:
        rows = manifest.rows("SELECT relpath FROM files WHERE status = ?", (mf.UPLOADED,))
    return Counter(r["relpath"].rsplit("/", 1)[-1] for r in rows)


def unrecorded(sandbox, home: cfg.Paths) -> int:
    """Files on the server that the manifest does not hold as uploaded (the killed runs'
    so far: the next ones find them there)."""
    on_server = Counter(f["filename"] for f in sandbox.objects("datafiles"))
    return sum((on_server - recorded(home)).values())


def _named(answer: bytes) -> str:
    """The file an upload's answer names: the datafile stored, or the duplicate refused
    ("NAME already exists in dataset ...", in a list in 2021)."""
    body = json.loads(answer)
    if "filename" in body:
        return body["filename"]
    detail = body["detail"][0] if isinstance(body["detail"], list) else body["detail"]
    return detail.split(" already exists in dataset ")[0]


def kill_at(moment: Moment, home: cfg.Paths, sandbox, root: Path) -> int:
    """Start a run, SIGKILL it at `moment`, proving it was alive then; returns how many
    files the server holds that the manifest does not record as uploaded."""
    args = ("run", "--min-age=0", f"--jobs={moment.jobs}")
    trap = sandbox.trap(moment.trap[0], moment.trap[1], moment.trap[2], nth=moment.trap[3]) \
        if moment.trap else None
    if moment.traced == "walk":
        files = sorted(root.rglob("*.fits"))
        victim = files[len(files) // 2]
        proc = traced(victim, "openat:delay_exit=1000000", *args)  # 1 s
        pid = run_pid(home.lock_file, proc)
        _until(proc, lambda: holds_open(pid, victim), "the header read")
        assert sandbox.requests == []  # planning: nothing asked of the server yet
    elif moment.traced == "commit":
        wal = Path(str(home.manifest_file) + "-wal")
        proc = traced(wal, "pwrite64:delay_exit=100000", *args)  # 0.1 s each
        pid = run_pid(home.lock_file, proc)
        _until(proc, lambda: trap.wait(0.05), moment.what)
        before = written(wal)  # the run waits for the answer: nothing else writes
        trap.release()
        _until(proc, lambda: written(wal) != before, "the manifest write")
    else:
        proc = run_process(*args)
        pid = proc.pid
        _until(proc, lambda: trap.wait(0.05), moment.what)
    assert proc.poll() is None  # alive at the kill...
    os.kill(pid, signal.SIGKILL)
    proc.communicate(timeout=60)
    assert proc.returncode == -signal.SIGKILL, proc.returncode  # ...and the kill ended it
    sandbox.clear_traps()  # what was held is reset, never processed after the kill
    if trap is not None:
        assert trap.hits == 1
    if moment.trap and moment.trap[:3] == ("hold-answer", "POST", UPLOAD):
        # The window the moment names was open: that upload's file on the server (stored,
        # or there already: a duplicate answer), its record never made.
        stored = _named(trap.answers[0])
        assert stored in {f["filename"] for f in sandbox.objects("datafiles")}
        assert stored not in recorded(home)
    assert current_holder(home.lock_file) is None  # the kernel dropped the lock
    return unrecorded(sandbox, home)


@pytest.mark.parametrize("generation", ["2021", "2026"])
def test_sigkill_at_each_phase_then_exactly_once(home, tmp_path, generation):
    """SIGKILL on an event the server sees (or, for the walk and the manifest write, a
    system call strace holds), at each phase of a run; then the next run leaves every
    file on the server once. 2026: the uploads a killed run did not record are sent
    again, and the server's duplicate answer says they are there."""
    from oort_lib.sandbox import Sandbox

    root = many_files(tmp_path / "data", 24)
    page_size = 2 if generation == "2021" else 1
    with Sandbox(tmp_path / "sb", page_size=page_size, dialect=generation) as sandbox:
        telescope = sandbox.seed.personal_telescope_uuid if generation == "2026" else None
        configure(home, sandbox.url, sandbox.seed.upload_key, username="astro",
                  generation=generation, folders=[cfg.Folder(str(root), telescope=telescope)])
        kills: Counter = Counter()
        for moment in MOMENTS[generation]:
            left = kill_at(moment, home, sandbox, root)
            kills[moment.phase] += 1
            print(f"{generation} SIGKILL [{moment.phase}] {moment.what}: {left} file(s) "
                  "on the server not recorded so far")
        print(f"{generation} kills injected per phase: {dict(kills)}")
        assert kills == Counter(m.phase for m in MOMENTS[generation])
        assert set(kills) == {"walk", "looking objects up", "creating objects", "uploads",
                              "commits"}
        final = run_process("run", "--min-age=0")
        out, err = final.communicate(timeout=120)
        assert final.returncode == 0, err
        assert_exactly_once(sandbox, root)
        assert all_uploaded(home)
        if generation == "2026":
            datasets = Counter((d["name"], d["telescope"]) for d in sandbox.objects("datasets"))
            assert set(datasets.values()) == {1} and len(datasets) == 4
            assert not [r for r in sandbox.requests if r[0] == "POST" and "/nightlogs/" in r[1]]
        sandbox.clear_requests()
        again = run_process("run", "--min-age=0")
        again.communicate(timeout=60)
        assert again.returncode == 0 and sandbox.requests == []


@pytest.mark.parametrize("signum, code", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_sigterm_and_sigint_stop_gracefully(home, sandbox, tmp_path, signum, code):
    root = many_files(tmp_path / "data", 30)
    configure(home, sandbox.url, sandbox.seed.upload_key, folders=[cfg.Folder(str(root))],
              jobs=2)
    sandbox.faults.latency = 0.05
    proc = run_process("run", "--min-age=0")
    while len(sandbox.objects("datafiles")) < 2:
        assert proc.poll() is None
        time.sleep(0.01)
    proc.send_signal(signum)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == code, err
    assert current_holder(home.lock_file) is None
    uploaded = len(sandbox.objects("datafiles"))
    assert uploaded < 30
    with mf.Manifest(home.manifest_file) as manifest:
        rows = manifest.rows("SELECT status FROM files")
    assert Counter(r["status"] for r in rows)["uploaded"] == uploaded  # consistent
    sandbox.faults.latency = 0
    final = run_process("run", "--min-age=0")
    final.communicate(timeout=60)
    assert final.returncode == 0
    assert_exactly_once(sandbox, root)


def test_second_run_exits_75_naming_the_holder(home, sandbox, tmp_path):
    root = many_files(tmp_path / "data", 12)
    configure(home, sandbox.url, sandbox.seed.upload_key, folders=[cfg.Folder(str(root))],
              jobs=1)
    sandbox.faults.latency = 0.1
    first = run_process("run", "--min-age=0")
    deadline = time.monotonic() + 30
    while current_holder(home.lock_file) is None:
        assert time.monotonic() < deadline and first.poll() is None
        time.sleep(0.02)
    second = run_process("run", "--min-age=0")
    out, err = second.communicate(timeout=30)
    assert second.returncode == 75
    assert f"pid {first.pid}" in err and len(err.strip().splitlines()) == 1
    quiet = run_process("run", "--min-age=0", "-q")  # as cron runs it: no mail for this
    assert quiet.communicate(timeout=30) == ("", "") and quiet.returncode == 75
    first.send_signal(signal.SIGTERM)
    first.communicate(timeout=60)


def test_file_being_written_is_never_uploaded_half_written(cli, home, logged_in, sandbox,
                                                          tmp_path):
    root = tmp_path / "data"
    growing = write_fits(root / "live" / "growing.fits", {"DATE-OBS": "2021-05-01T22:00:00"})
    many_files(root / "others", 8)
    logged_in(root)
    stop = threading.Event()

    def writer():
        with open(growing, "ab") as handle:
            while not stop.is_set():
                handle.write(b"\0" * 2880)
                handle.flush()
                time.sleep(0.002)

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        for min_age in ("0", "1"):
            result = cli("run", f"--min-age={min_age}")
            assert result.code in (0, 1), result.err
            row = mf.Manifest(home.manifest_file).file(str(root), "live/growing.fits")
            assert row["status"] != "uploaded", row
    finally:
        stop.set()
        thread.join()
    settled = time.time() - 10  # the writer's last write, min_age (1 s) and more ago
    os.utime(growing, (settled, settled))
    assert cli("run", "--min-age=1").code == 0
    stored = [f for f in sandbox.objects("datafiles") if f["filename"] == "growing.fits"]
    assert [f["size"] for f in stored] == [growing.stat().st_size]
    assert all_uploaded(home)


def test_vanished_and_replaced_between_walk_and_upload(home, logged_in, sandbox, tmp_path):
    from oort_lib.run import sync
    from oort_lib.state import credentials

    root = many_files(tmp_path / "data", 8)
    settings = logged_in(root)
    gone, changed = sorted(root.rglob("*.fits"))[:2]

    class Meddler(sync.Events):
        def planned(self, plan):
            gone.unlink()
            changed.write_bytes(changed.read_bytes() + b"\0" * 2880)

    creds = credentials.load(home.credentials_file)
    result = sync.run(home, settings, creds, events=Meddler(), min_age=0)
    # Vanished: failed (transient), never skipped; it is gone for good here, so the next
    # run forgets it. Changed: it waits to settle (not a failure).
    assert result.exit_code == 1
    failed = {i.relpath.rsplit("/", 1)[-1]: why for i, why in result.failed}
    assert "vanished" in failed[gone.name]
    reasons = {i.relpath.rsplit("/", 1)[-1]: why for i, why in result.postponed}
    assert "changed" in reasons[changed.name]
    assert {f["filename"] for f in sandbox.objects("datafiles")}.isdisjoint({gone.name})
    class Recorder(sync.Events):
        done_items: list = []

        def done(self, item, outcome, reason):
            self.done_items.append((item.relpath, outcome))

    recorder = Recorder()
    second = sync.run(home, settings, creds, min_age=0, events=recorder)
    assert second.uploaded == 1 and second.exit_code == 0
    assert recorder.done_items == [(str(changed.relative_to(root)), "uploaded")]


def test_missing_watched_folder_is_not_a_deletion(cli, home, logged_in, sandbox, tmp_path):
    root = make_sample_tree(tmp_path / "disk" / "data")
    logged_in(root)
    assert cli("run", "--min-age=0").code == 0
    with mf.Manifest(home.manifest_file) as manifest:
        before = manifest.rows("SELECT relpath, status FROM files ORDER BY relpath")
    os.rename(tmp_path / "disk", tmp_path / "unmounted")
    result = cli("run", "--min-age=0")
    assert result.code == 1
    assert "missing" in result.err and str(root) in result.err
    with mf.Manifest(home.manifest_file) as manifest:
        after = manifest.rows("SELECT relpath, status FROM files ORDER BY relpath")
    assert after == before
    os.rename(tmp_path / "unmounted", tmp_path / "disk")
    sandbox.clear_requests()
    assert cli("run", "--min-age=0").code == 0 and sandbox.requests == []


def test_damaged_manifest_rebuild_reuploads_nothing(cli, home, logged_in, sandbox, tmp_path):
    root = make_sample_tree(tmp_path / "data")
    logged_in(root)
    assert cli("run", "--min-age=0").code == 0
    home.manifest_file.write_bytes(b"\0garbage" * 1000)
    for extra in home.state_dir.glob("manifest.sqlite-*"):
        extra.unlink()
    broken = cli("run", "--min-age=0")
    assert broken.code == 2 and "--rebuild-manifest" in broken.err
    assert "Traceback" not in broken.err
    sandbox.clear_requests()
    rebuilt = cli("run", "--min-age=0", "--rebuild-manifest")
    assert rebuilt.code == 0, rebuilt.err
    assert "kept as" in rebuilt.err
    assert not [r for r in sandbox.requests if r[0] in ("POST", "PATCH")]
    assert list(home.state_dir.glob("manifest.sqlite.damaged-*"))


def test_slow_answers_time_out_and_are_retried(cli, home, logged_in, sandbox, tmp_path):
    root = many_files(tmp_path / "data", 4)
    logged_in(root, read_timeout=0.3, retries=1)
    sandbox.faults.slow_rate = 1.0
    sandbox.faults.slow_delay = 1.0
    sandbox.faults.paths = r"/datafiles/"
    start = time.monotonic()
    slow = cli("run", "--min-age=0")
    assert time.monotonic() - start < 30  # never hangs on a silent server
    # Every upload unanswered: after 3 in a row the run stops sending (issue 19), exit 4.
    assert slow.code == 4 and "no answer within 0.3 s" in slow.err
    assert "busy or unresponsive" in slow.err
    sandbox.faults.slow_rate = 0.0
    assert cli("run", "--min-age=0").code == 0
    assert_exactly_once(sandbox, root)


def test_credentials_readable_by_others_give_a_warning(cli, home, logged_in, sandbox, tmp_path):
    logged_in(many_files(tmp_path / "data", 1))
    os.chmod(home.credentials_file, 0o644)
    result = cli("run", "--min-age=0")
    assert result.code == 0
    assert "readable by other users" in result.err and "chmod 600" in result.err
    assert sandbox.seed.upload_key not in result.err
