"""Faults, crashes, concurrency and files being written: nothing lost, nothing sent twice.

Each test here backs a line of the README's "Reliability" table.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections import Counter
from pathlib import Path

import pytest
from conftest import configure, run_process

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


def test_server_down_exits_4_quickly(cli, home, tmp_path):
    import socket

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
    assert elapsed < 15
    with mf.Manifest(home.manifest_file) as manifest:
        assert {r["status"] for r in manifest.rows("SELECT status FROM files")} == {"pending"}


@pytest.mark.slow
def test_sigkill_at_many_moments_then_exactly_once(home, sandbox, tmp_path):
    root = many_files(tmp_path / "data", 40)
    configure(home, sandbox.url, sandbox.seed.upload_key, folders=[cfg.Folder(str(root))],
              jobs=3)
    sandbox.faults.latency = 0.01
    for delay in (0.05, 0.2, 0.35, 0.5, 0.65, 0.8, 1.0, 1.2, 1.5, 1.8, 2.2):
        proc = run_process("run", "--min-age=0")
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        proc.communicate()
        assert current_holder(home.lock_file) is None  # the kernel dropped the lock
    sandbox.faults.latency = 0
    final = run_process("run", "--min-age=0")
    out, err = final.communicate(timeout=120)
    assert final.returncode == 0, err
    assert_exactly_once(sandbox, root)
    assert all_uploaded(home)


def test_sigkill_at_many_moments_then_exactly_once_2026(home, tmp_path):
    """The same in today's API: a killed run's uploads are recorded by nobody; the next
    run sends them again and the server's duplicate answer says they are there."""
    from oort_lib.sandbox import Sandbox

    root = many_files(tmp_path / "data", 40)
    with Sandbox(tmp_path / "sb26", page_size=1, dialect="2026") as sandbox:
        sandbox.start()
        telescope = sandbox.seed.personal_telescope_uuid
        configure(home, sandbox.url, sandbox.seed.upload_key, username="astro",
                  generation="2026", folders=[cfg.Folder(str(root), telescope=telescope)],
                  jobs=3)
        sandbox.faults.latency = 0.01
        for delay in (0.05, 0.2, 0.35, 0.5, 0.8, 1.2, 1.8):
            proc = run_process("run", "--min-age=0")
            time.sleep(delay)
            proc.send_signal(signal.SIGKILL)
            proc.communicate()
            assert current_holder(home.lock_file) is None
        sandbox.faults.latency = 0
        final = run_process("run", "--min-age=0")
        out, err = final.communicate(timeout=120)
        assert final.returncode == 0, err
        assert_exactly_once(sandbox, root)
        datasets = Counter((d["name"], d["telescope"]) for d in sandbox.objects("datasets"))
        assert set(datasets.values()) == {1} and len(datasets) == 4
        assert not [r for r in sandbox.requests if r[0] == "POST" and "/nightlogs/" in r[1]]
        assert all_uploaded(home)


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
    time.sleep(1.1)
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
