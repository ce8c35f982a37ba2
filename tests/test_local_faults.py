"""Local trouble is classified like remote trouble: never a file lost or skipped for good.

An I/O error, a file that vanishes, moves or changes mode between the walk and its upload
is a *transient* failure: retried by later runs with the backoff of remote transient
errors, the run exits 1 while it lasts, and the file ends on the server once, with the
right content. Faults are injected with strace where it is installed (the real system
calls of a real process); the I/O-error class also in-process, at the one open() of
each phase. Then clocks, paths that move, configs that would upload twice, two profiles
at once, and `report --output`. Each test backs a row of the README's Reliability table.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import syscalls
from fitsfiles import NIGHT, settle, write_tree
from helpers import ROOT, assert_each_once, configure, needs, run_process, sha, unavailable
from helpers import manifest_row as row
from helpers import server_copies as on_server

from oort_lib.samples import write_fits
from oort_lib.state import config as cfg
from oort_lib.state import manifest as mf


def frames(root: Path, *names: str) -> list[Path]:
    return write_tree(root, {f"M31/{name}": NIGHT for name in names})


# --- strace: faults in the system calls of a real run ------------------------------------


@pytest.fixture(scope="session")
def strace() -> str:
    """strace, if it can trace here (.ci/run installs it)."""
    return syscalls.strace()


def traced(strace: str, path: Path, inject: str, *args: str) -> subprocess.CompletedProcess:
    """`oort-sync ARGS` with the fault `inject` (strace syntax) on the calls naming `path`."""
    syscall = inject.split(":", 1)[0]
    command = [strace, "-qq", "-f", "-o", os.devnull, "-P", str(path), "-e",
               f"trace={syscall}", "-e", f"inject={inject}", sys.executable,
               str(ROOT / "oort_sync.py"), *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=120)


# (what, the file's state before, the fault, the reason shown). strace counts the calls
# of each thread: planning (header read; for a changed file uploaded before, first the
# hash) runs in the main thread, each upload in a worker. A file retried after a failed
# upload is not read again by planning: its only open is the upload's.
FAULTS = [
    ("header read", "new", "openat:error=EIO:when=1", "Input/output error"),
    ("header read, every time", "new", "openat:error=EIO", "Input/output error"),
    ("hash of a changed file", "changed", "openat:error=EIO:when=1", "Input/output error"),
    ("upload", "retried", "openat:error=EIO:when=1", "Input/output error"),
    ("upload, data", "retried", "read:error=EIO:when=1", "Input/output error"),
    ("vanished before the upload", "retried", "openat:error=ENOENT:when=1", "vanished"),
    ("mode changed before the upload", "retried", "openat:error=EACCES:when=1",
     "permission denied"),
]


@pytest.mark.parametrize("what, state, inject, shown", FAULTS, ids=[f[0] for f in FAULTS])
def test_local_faults_are_transient_and_end_uploaded(strace, cli, home, logged_in, sandbox,
                                                     tmp_path, what, state, inject, shown):
    root = tmp_path / "data"
    victim, other = frames(root, "light_001.fits", "light_002.fits")
    logged_in(root)
    if state == "changed":
        assert cli("run").code == 0
        write_fits(victim, dict(NIGHT, EXPTIME=300), shape=(24, 24))  # a new version
        settle(victim)
    if state == "retried":
        sandbox.faults.update({"error_rate": 1.0, "paths": "datafiles"})
        assert cli("run").code == 1
        sandbox.faults.clear()
    first = traced(strace, victim, inject, "run")
    assert first.returncode == 1, first.stderr
    assert "Traceback" not in first.stderr and "internal error" not in first.stderr
    assert f"{victim.name}: " in first.stderr and shown in first.stderr
    recorded = row(home, victim.name)
    assert (recorded["status"], recorded["transient"]) == ("failed", 1), recorded
    status = json.loads(cli("status", "--json").out)["folders"][0]
    assert status["counts"]["failed"] >= 1 and status["counts"]["skipped"] == 0
    if "every time" in what:
        again = traced(strace, victim, inject, "run")
        assert again.returncode == 1 and shown in again.stderr  # while it lasts: exit 1
        assert row(home, victim.name)["attempts"] == 2, str(row(home, victim.name))
    if state == "changed":
        assert on_server(sandbox)[victim.name] != [sha(victim)]  # the old copy, for now
    clean = cli("run")
    assert clean.code == 0, clean.err
    assert_each_once(sandbox, victim, other)
    assert cli("run").code == 0 and row(home, victim.name)["status"] == "uploaded"


# --- the same class in-process: an I/O error at each open() ------------------------------


class _FailingReads:
    """A file whose reads fail with EIO after `good` bytes (a disk going bad mid-read)."""

    def __init__(self, handle, good: int):
        self._handle, self._left = handle, good

    def read(self, size=-1):
        if self._left <= 0:
            raise OSError(errno.EIO, "Input/output error")
        data = self._handle.read(min(size, self._left) if size and size > 0 else self._left)
        self._left -= len(data)
        return data

    def readinto(self, buffer):
        data = self.read(len(buffer))
        buffer[:len(data)] = data
        return len(data)

    def __getattr__(self, name):
        return getattr(self._handle, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self._handle.close()


@pytest.mark.parametrize("where", ["oort_lib.local.headers", "oort_lib.local.digest",
                                   "oort_lib.arcsecond.body"])
def test_io_error_in_header_hash_or_upload_is_retried(cli, home, logged_in, sandbox, tmp_path,
                                                      monkeypatch, where):
    import builtins
    import importlib

    root = tmp_path / "data"
    victim, other = frames(root, "light_001.fits", "light_002.fits")
    logged_in(root)
    if where == "oort_lib.local.digest":  # only a file uploaded before is hashed by planning
        assert cli("run").code == 0
        write_fits(victim, dict(NIGHT, EXPTIME=300), shape=(24, 24))
        settle(victim)
    real_open = builtins.open

    def failing_open(path, *args, **kwargs):
        handle = real_open(path, *args, **kwargs)
        if os.fspath(path) == str(victim):
            return _FailingReads(handle, 2880 if "body" in where else 0)
        return handle

    with monkeypatch.context() as patch:
        patch.setattr(importlib.import_module(where), "open", failing_open, raising=False)
        first = cli("run")
    assert first.code == 1, first.err
    assert f"{victim.name}: unreadable: Input/output error" in first.err
    assert "internal error" not in first.err
    recorded = row(home, victim.name)
    assert (recorded["status"], recorded["transient"]) == ("failed", 1)
    assert cli("run").code == 0
    assert_each_once(sandbox, victim, other)


# --- files that move, vanish or change mode between the walk and their upload -----------


def test_moved_away_and_back_during_a_run_is_uploaded_later(home, logged_in, sandbox,
                                                            tmp_path):
    from oort_lib.run import sync
    from oort_lib.state import credentials

    root = tmp_path / "data"
    moved, gone, stays = frames(root, "a.fits", "b.fits", "c.fits")
    settings = logged_in(root)
    creds = credentials.load(home.credentials_file)

    class Meddler(sync.Events):
        def planned(self, plan):
            os.rename(moved, tmp_path / "elsewhere.fits")
            gone.unlink()

    result = sync.run(home, settings, creds, events=Meddler())
    assert result.exit_code == 1
    assert {i.path: why for i, why in result.failed} == {
        str(moved): "vanished (moved or deleted) before its upload",
        str(gone): "vanished (moved or deleted) before its upload"}
    assert row(home, "a.fits")["status"] == "failed"  # never "skipped"
    os.rename(tmp_path / "elsewhere.fits", moved)
    again = sync.run(home, settings, creds)
    assert again.exit_code == 0 and again.uploaded == 1
    assert_each_once(sandbox, moved, stays)
    with mf.Manifest(home.manifest_file) as manifest:  # gone for good: forgotten
        assert manifest.file(str(root), "M31/b.fits") is None


def test_vanished_while_its_remote_chain_is_resolved(home, logged_in, sandbox, tmp_path,
                                                     monkeypatch):
    from oort_lib.arcsecond.gen2021 import Gen2021
    from oort_lib.run import sync
    from oort_lib.state import credentials

    root = tmp_path / "data"
    victim, other = frames(root, "a.fits", "b.fits")
    settings = logged_in(root)
    aside = tmp_path / "aside.fits"
    real = Gen2021.container

    def container(self, item):
        if item.path == str(victim) and victim.exists():
            os.rename(victim, aside)  # gone between the stat and the open of the upload
        return real(self, item)

    with monkeypatch.context() as patch:
        patch.setattr(Gen2021, "container", container)
        result = sync.run(home, settings, sync_creds(home))
    assert result.exit_code == 1
    (item, why), = result.failed
    assert item.path == str(victim) and why.startswith("vanished")
    assert row(home, "a.fits")["transient"] == 1
    os.rename(aside, victim)
    assert sync.run(home, settings, credentials.load(home.credentials_file)).exit_code == 0
    assert_each_once(sandbox, victim, other)


def sync_creds(home):
    from oort_lib.state import credentials

    return credentials.load(home.credentials_file)


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX modes")
@needs(not (hasattr(os, "geteuid") and os.geteuid() == 0 and not shutil.which("setpriv")),
       "as root, setpriv (util-linux) is needed")
def test_mode_changed_mid_run_is_retried_once_readable(home, sandbox, tmp_path):
    """A real chmod while a real run uploads (root cannot be refused a file: as root, the
    run drops that capability with setpriv)."""
    root = tmp_path / "data"
    files = frames(root, *(f"f{n}.fits" for n in range(6)))
    configure(home, sandbox.url, sandbox.seed.upload_key, folders=[cfg.Folder(str(root))],
              jobs=1)
    sandbox.faults.latency = 0.3
    drop = (["setpriv", "--bounding-set=-dac_override,-dac_read_search", "--"]
            if os.geteuid() == 0 else [])
    command = [*drop, sys.executable, str(ROOT / "oort_sync.py"), "run"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True)
    deadline = time.monotonic() + 60
    while not sandbox.objects("datafiles"):
        assert time.monotonic() < deadline and process.poll() is None
        time.sleep(0.02)
    os.chmod(files[-1], 0)
    _out, err = process.communicate(timeout=120)
    assert process.returncode == 1, err
    assert "f5.fits: permission denied" in err and "internal error" not in err
    sandbox.faults.latency = 0
    os.chmod(files[-1], 0o644)
    done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert_each_once(sandbox, *files)


# --- clocks -------------------------------------------------------------------------------

YEAR = 365 * 86400.0


class _Clock:
    """The time module as seen by one module, `offset` seconds off."""

    def __init__(self, offset: float):
        self.offset = offset

    def time(self):
        return time.time() + self.offset

    def __getattr__(self, name):
        return getattr(time, name)


def test_clock_a_year_ahead_at_a_failure_does_not_hold_the_file(cli, home, logged_in,
                                                                sandbox, tmp_path,
                                                                monkeypatch):
    from oort_lib.run import uploader

    root = tmp_path / "data"
    victim, = frames(root, "a.fits")
    logged_in(root, retry_delay=60)
    sandbox.faults.error_rate = 1.0
    sandbox.faults.paths = r"datafiles"
    with monkeypatch.context() as patch:
        patch.setattr(uploader, "time", _Clock(YEAR))  # where outcomes are recorded
        assert cli("run").code == 1
    assert row(home, "a.fits")["retry_at"] > time.time() + YEAR  # what that clock said
    # The clock is fixed.
    sandbox.faults.clear()
    again = cli("run")
    assert again.code == 0, again.err
    assert_each_once(sandbox, victim)


@pytest.mark.parametrize("offset, retried", [(0, False), (-YEAR, True), (+YEAR, True),
                                             (+7200, True)])
def test_retry_time_is_bounded_relative_to_now(home, tmp_path, offset, retried):
    """A retry 1 h away waits; the same retry seen by a clock moved back a year (or
    whose failure was recorded a year ahead) never waits more than the longest backoff."""
    from helpers import planned

    from oort_lib.run.retry import RETRY_MAX

    root = tmp_path / "data"
    victim, = frames(root, "a.fits")
    now = time.time()
    with mf.Manifest(home.manifest_file) as manifest:
        first = planned([cfg.Folder(str(root))], manifest, now=now)
        manifest.upsert_files(str(root), [dict(first.items[0].row(), status="failed",
                                               transient=1, attempts=1, retry_at=now + 3600)])
        plan = planned([cfg.Folder(str(root))], manifest, now=now + offset)
    assert 3600 < RETRY_MAX < YEAR
    assert (len(plan.items), len(plan.waiting)) == ((1, 0) if retried else (0, 1))


def test_future_mtime_waits_until_it_holds_still(cli, home, logged_in, sandbox, tmp_path,
                                                 monkeypatch):
    """An mtime in the future says nothing of a file's age (a clock ahead, a camera's
    clock in 2040): it is sent once its size and mtime held still for min_age."""
    from oort_lib.run import planner as plan

    root = tmp_path / "data"
    future, soon = (write_fits(root / "M31" / n, NIGHT) for n in ("future.fits", "soon.fits"))
    os.utime(future, (time.time() + YEAR, time.time() + YEAR))
    os.utime(soon, (time.time(), time.time()))  # within min_age: maybe writing
    logged_in(root, min_age=1)
    first = cli("run")
    assert first.code == 0, first.err
    assert "future.fits: modified 365 days in the future" in first.err
    assert "waits until its size and time hold still" in first.err
    assert on_server(sandbox) == {}
    assert row(home, "future.fits")["status"] == "deferred"
    assert row(home, "soon.fits")["status"] == "deferred"
    with monkeypatch.context() as patch:
        patch.setattr(plan, "time", _Clock(2))  # the next look, min_age (1 s) later
        second = cli("run")
    assert second.code == 0, second.err
    assert "future.fits: modified 365 days in the future" in second.err
    assert "held still" in second.err
    assert sorted(on_server(sandbox)) == ["future.fits", "soon.fits"]
    assert on_server(sandbox)["future.fits"] == [sha(future)]
    assert cli("run").err == ""  # said while it waited: it is uploaded now


def test_writer_with_its_clock_ahead_never_sends_half_a_frame(cli, home, logged_in, sandbox,
                                                              tmp_path, monkeypatch):
    """A capture PC whose clock runs 5 minutes ahead writes through a share: its frame,
    half written, is neither sent at once (mtime ahead) nor after it held still for
    min_age (not whole); the whole frame is sent once, with its exact bytes."""
    from oort_lib.run import planner as plan

    def later(*args: str):
        """A run whose planner's clock is min_age (1 s) past this one's: a next look."""
        with monkeypatch.context() as patch:
            patch.setattr(plan, "time", _Clock(2))
            return cli(*args)

    source = write_fits(tmp_path / "source" / "light_001.fits", NIGHT, shape=(200, 200))
    whole = source.read_bytes()
    target = tmp_path / "share" / "M31" / "light_001.fits"
    target.parent.mkdir(parents=True)
    target.write_bytes(whole[: len(whole) // 2])
    ahead = time.time() + 300
    os.utime(target, (ahead, ahead))
    logged_in(tmp_path / "share", min_age=1)
    assert cli("run").code == 0  # first look: it waits
    waiting = later("run", "-v")  # held still, but not whole: it waits (partial_wait)
    assert waiting.code == 0, waiting.err
    assert "1 file not whole yet waits" in waiting.err
    assert on_server(sandbox) == {}
    assert row(home, "light_001.fits")["status"] == "deferred"
    assert "bytes short" in row(home, "light_001.fits")["reason"]
    target.write_bytes(whole)  # the writer finishes
    os.utime(target, (ahead + 5, ahead + 5))
    assert cli("run").code == 0
    done = later("run")
    assert done.code == 0, done.err
    assert on_server(sandbox) == {"light_001.fits": [sha(target)]}
    assert sha(target) == hashlib.sha256(whole).hexdigest()


# --- paths that move ----------------------------------------------------------------------


@pytest.mark.parametrize("generation", ["2021", "2026"])
def test_symlink_re_pointed_between_runs_uploads_every_night(cli, home, sandbox, tmp_path,
                                                             generation):
    """`nights/current` points to tonight's folder; every night's files (with the same
    names as the night before) are uploaded, each night to its own place."""
    nights = tmp_path / "nights"
    first = [write_fits(nights / "2021-06-01" / f"light_{n}.fits", NIGHT) for n in (1, 2)]
    later = {**NIGHT, "DATE-OBS": "2021-06-02T22:00:00"}
    second = [write_fits(nights / "2021-06-02" / f"light_{n}.fits", later, shape=(20, 20))
              for n in (1, 2)]
    settle(*first, *second)
    (nights / "current").symlink_to("2021-06-01")
    telescope = sandbox.seed.personal_telescope_uuid if generation == "2026" else None
    configure(home, sandbox.url, sandbox.seed.upload_key, generation=generation,
              username=sandbox.seed.username if generation == "2026" else None,
              folders=[cfg.Folder(str(nights / "current"), telescope=telescope)])
    assert cli("run").code == 0
    (nights / "current").unlink()
    (nights / "current").symlink_to("2021-06-02")
    result = cli("run")
    assert result.code == 0, result.err
    assert cfg.load_settings(home).folders[0].path == str(nights / "current")  # as given
    held = sorted((f["filename"], f["sha256"]) for f in sandbox.objects("datafiles"))
    assert held == sorted((p.name, sha(p)) for p in first + second)
    assert cli("run").code == 0 and len(sandbox.objects("datafiles")) == 4


def test_empty_mountpoint_is_missing_not_empty(cli, home, logged_in, sandbox, tmp_path):
    """A disk unmounted from the watched folder leaves it empty, on another device."""
    disk = tmp_path / "disk"
    files = frames(disk, "a.fits", "b.fits")
    logged_in(disk)
    assert cli("run").code == 0
    seen = json.loads((home.state_dir / "folders.json").read_text())
    assert seen[str(disk)]["files"] is True
    # Unmounted: the mountpoint is an empty folder of the parent filesystem.
    shutil.move(disk, tmp_path / "unplugged")
    disk.mkdir()
    seen[str(disk)]["dev"] += 1  # the disk's own device, as the last run saw it
    (home.state_dir / "folders.json").write_text(json.dumps(seen))
    missing = f"{disk}: watched folder is missing (disk unmounted?)"
    for number in range(2):  # for as long as it lasts: exit 1, said once (quiet outages)
        result = cli("run")
        assert result.code == 1
        assert (missing in result.err) == (number == 0)
    assert missing in home.log_file.read_text()
    with mf.Manifest(home.manifest_file) as manifest:
        assert len(manifest.rows("SELECT * FROM files")) == 2  # nothing taken as deleted
    disk.rmdir()
    shutil.move(tmp_path / "unplugged", disk)  # mounted again (its device again)
    assert cli("run").code == 0
    assert_each_once(sandbox, *files)


def _mount_tmpfs(where: Path) -> bool:
    if sys.platform != "linux" or os.geteuid() != 0 or not shutil.which("mount"):
        return False
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m", "oort-test", str(where)],
                          capture_output=True)
    return done.returncode == 0


def test_real_unmount_is_missing_then_remount_uploads_nothing_twice(cli, home, logged_in,
                                                                    sandbox, tmp_path):
    """A real tmpfs mounted on the watched folder, unmounted, mounted again."""
    disk = tmp_path / "disk"
    disk.mkdir()
    if not _mount_tmpfs(disk):
        unavailable("cannot mount a tmpfs here (needs root on Linux)")
    try:
        files = frames(disk, "a.fits", "b.fits")
        kept = {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in files}
        logged_in(disk)
        assert cli("run").code == 0
        subprocess.run(["umount", str(disk)], check=True)
        result = cli("run")
        assert result.code == 1
        assert "missing (disk unmounted?)" in result.err and "another device" in result.err
        assert _mount_tmpfs(disk)
        for path in files:  # the same disk back (a tmpfs forgets: put the files back)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(kept[path.name][0])
            os.utime(path, ns=(kept[path.name][1], kept[path.name][1]))
        sandbox.clear_requests()
        assert cli("run").code == 0
        assert [r for r in sandbox.requests if r[0] == "POST"] == []
        assert_each_once(sandbox, *files)
    finally:
        subprocess.run(["umount", str(disk)], capture_output=True)


def test_emptied_on_the_same_device_is_said_once(cli, home, logged_in, sandbox, tmp_path):
    """Files moved away on purpose (archived after upload): told once, then quiet."""
    root = tmp_path / "data"
    frames(root, "a.fits")
    logged_in(root)
    assert cli("run").code == 0
    shutil.rmtree(root / "M31")
    told = cli("run")
    assert told.code == 1 and "had files and is empty now" in told.err
    assert cli("run").code == 0


# --- configs that would upload twice -------------------------------------------------------


def write_config(home, *paths: str) -> None:
    home.config_dir.mkdir(parents=True, exist_ok=True)
    sections = "".join(f"\n[folder {n}]\npath = {p}\n" for n, p in enumerate(paths, 1))
    home.config_file.write_text(f"[oort-sync]\napi = https://api.example.org\n{sections}")


@pytest.mark.parametrize("second, what", [
    ("{D}/", "are the same folder"),
    ("{D}/M31", "is inside"),
    ("{D}/../data", "are the same folder"),
    ("{L}", "are the same folder"),  # a symlink to it
])
def test_nested_or_repeated_folders_are_refused_naming_the_lines(cli, home, tmp_path, second,
                                                                 what):
    data = tmp_path / "data"
    frames(data, "a.fits")
    (tmp_path / "link").symlink_to(data)
    write_config(home, str(data), second.format(D=data, L=tmp_path / "link"))
    for command in (("status",), ("run", "--dry-run")):
        result = cli(*command)
        assert result.code == 2
        assert f"{home.config_file}, lines 5 and 8: " in result.err and what in result.err
    # The way out it names works although the config is refused.
    unwatch = result.err.split("`oort-sync unwatch ", 1)[1].split("`", 1)[0]
    assert cli("unwatch", unwatch).code == 0
    assert [f.path for f in cfg.load_settings(home).folders] == [str(data)]


def test_home_expanded_and_relative_paths_refused(cli, home, tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    frames(tmp_path / "data", "a.fits")
    write_config(home, "~/data")
    assert cfg.load_settings(home).folders[0].path == str(tmp_path / "data")
    assert cli("run", "--dry-run").code == 0
    write_config(home, "data")
    result = cli("status")
    assert result.code == 2
    assert "line 5: path = 'data' is relative" in result.err


def test_two_profiles_never_upload_one_folder_at_once(home, sandbox, tmp_path, monkeypatch):
    root = tmp_path / "data"
    files = frames(root, *(f"f{n}.fits" for n in range(8)))
    other = cfg.resolve_paths(str(tmp_path / "other-home"))
    for paths in (home, other):
        configure(paths, sandbox.url, sandbox.seed.upload_key, folders=[cfg.Folder(str(root))],
                  jobs=1)
    sandbox.faults.latency = 0.3  # the first run lasts seconds: the second meets it
    first = run_process("run")
    deadline = time.monotonic() + 30
    locks = Path(os.environ["OORT_SYNC_LOCK_DIR"])
    while not any(p.stat().st_size for p in locks.glob("*.lock")):  # the holder is written
        assert time.monotonic() < deadline and first.poll() is None
        time.sleep(0.02)
    second = run_process("run", "--home", str(tmp_path / "other-home"))
    _out, err = second.communicate(timeout=60)
    assert second.returncode == 75, err
    assert str(root) in err and f"pid {first.pid}" in err and str(home.state_dir) in err
    first.send_signal(signal.SIGTERM)
    first.communicate(timeout=60)
    sandbox.faults.latency = 0
    for paths in (home, other, home):  # one after the other: fine, nothing twice
        done = subprocess.run([sys.executable, str(ROOT / "oort_sync.py"), "run", "--home",
                               str(paths.config_dir.parent)], capture_output=True, text=True,
                              timeout=120)
        assert done.returncode == 0, done.stderr
    assert_each_once(sandbox, *files)


# --- report --output -------------------------------------------------------------------------


def test_report_output_is_a_regular_file_only(cli, home, tmp_path):
    target = tmp_path / "real.html"
    target.write_text("old")
    link = tmp_path / "link.html"
    link.symlink_to(target)
    fifo = tmp_path / "fifo.html"
    os.mkfifo(fifo)
    for refused, kind in ((link, "a symbolic link"), (fifo, "a FIFO"),
                          (Path("/dev/null"), "a device"), (tmp_path, "a folder")):
        result = cli("report", f"--output={refused}")
        assert result.code == 2 and kind in result.err, result.err
    assert target.read_text() == "old" and link.is_symlink()
    assert stat_kind(fifo) == "fifo"
    assert cli("report", f"--output={target}").code == 0
    assert "<html" in target.read_text()
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


def stat_kind(path: Path) -> str:
    import stat

    mode = os.lstat(path).st_mode
    return "fifo" if stat.S_ISFIFO(mode) else "other"
