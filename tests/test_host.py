"""host.py and the platform-dependent corners, one by one: each test pretends to be the
platform (sys.platform, the os functions it lacks) in this process and checks the one
behaviour that differs there."""

from __future__ import annotations

import logging
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from oort_lib import folders, host
from oort_lib.errors import ConfigError, LockHeld
from oort_lib.local import scan
from oort_lib.run.interrupt import GracefulStop
from oort_lib.state import config as cfg
from oort_lib.state import credentials, lock, logfile

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def on_windows(monkeypatch):
    """sys.platform says Windows and the POSIX-only calls are gone (paths stay POSIX)."""
    monkeypatch.setattr(sys, "platform", "win32")
    for name in ("geteuid", "getegid", "getgroups", "fchmod"):
        monkeypatch.delattr(os, name, raising=False)


def test_linux_dirs_are_what_platformdirs_says(monkeypatch, tmp_path):
    from platformdirs.unix import Unix

    monkeypatch.setattr(sys, "platform", "linux")
    monkeypatch.setenv("HOME", str(tmp_path))
    for name in ("XDG_CONFIG_HOME", "XDG_STATE_HOME"):
        monkeypatch.delenv(name, raising=False)
    expected = Unix("oort-sync", appauthor=False)
    dirs = host.user_dirs("oort-sync")
    assert dirs.config == Path(expected.user_config_dir) == tmp_path / ".config" / "oort-sync"
    assert dirs.state == Path(expected.user_state_dir)
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "st"))
    assert host.user_dirs("oort-sync").state == Path(Unix("oort-sync").user_state_dir)
    # On Linux the log stays in the state folder, where earlier versions put it.
    assert cfg.resolve_paths().log_file == tmp_path / "st" / "oort-sync" / "oort-sync.log"


def test_home_flag_and_variable_are_the_same_on_every_platform(monkeypatch, tmp_path):
    for platform in ("linux", "darwin", "win32"):
        monkeypatch.setattr(sys, "platform", platform)
        paths = cfg.resolve_paths(str(tmp_path / "h"))
        assert paths == cfg.Paths(tmp_path / "h" / "config", tmp_path / "h" / "state")
        assert paths.log_file == tmp_path / "h" / "state" / "oort-sync.log"
        env = {"OORT_SYNC_HOME": str(tmp_path / "e")}
        assert cfg.resolve_paths(None, env).manifest_file == (
            tmp_path / "e" / "state" / "manifest.sqlite")


def test_windows_nesting_ignores_case(on_windows):
    # os.sep is "/" in this process: the case folding is what is under test here.
    with pytest.raises(ConfigError, match="already watched"):
        folders.check_nesting(["c:/data"], ["C:/Data"])
    with pytest.raises(ConfigError, match="inside the watched folder"):
        folders.check_nesting(["C:/DATA/night1"], ["c:/data"])
    with pytest.raises(ConfigError, match="contains the watched folder"):
        folders.check_nesting(["c:/"], ["C:/Data"])
    folders.check_nesting(["C:/Data2"], ["C:/Data"])  # a sibling is fine
    settings = cfg.Settings(folders=(cfg.Folder(path="/Obs/Data"),))
    assert [f.path for f in cfg.select_folders(settings.folders, ["/obs/data"])] == ["/Obs/Data"]
    new, removed = folders.remove(settings, ["/OBS/DATA"])
    assert removed == ["/Obs/Data"] and new.folders == ()


def test_case_is_probed_on_posix(monkeypatch, tmp_path):
    monkeypatch.setattr(sys, "platform", "linux")
    (tmp_path / "Data").mkdir()
    sensitive = not (tmp_path / "data").exists()
    assert host.path_key(str(tmp_path / "Data")) == (
        str(tmp_path / "Data") if sensitive else str(tmp_path / "Data").casefold())
    if sensitive:  # two folders differing by case are two folders here
        (tmp_path / "data").mkdir()
        folders.check_nesting([str(tmp_path / "data")], [str(tmp_path / "Data")])
    # A folder that is gone is compared the way its parent folder's filesystem compares.
    assert host.path_key(str(tmp_path / "Gone" / "X")) == (
        str(tmp_path / "Gone" / "X") if sensitive else str(tmp_path / "Gone" / "X").casefold())


def test_windows_credentials_without_fchmod_and_no_false_warning(on_windows, monkeypatch,
                                                                 tmp_path):
    monkeypatch.setenv("USERPROFILE", str(tmp_path / "profile"))
    monkeypatch.setenv("PATH", "")  # no icacls here: the profile's ACL is the protection
    inside = tmp_path / "profile" / "AppData" / "Roaming" / "oort-sync" / "credentials.json"
    credentials.save(inside, credentials.Credentials(key="k-1234567890", username="astro"))
    assert credentials.load(inside, {}).key == "k-1234567890"
    inside.chmod(0o644)  # what any Windows file looks like through st_mode
    assert credentials.permission_warning(inside) is None
    outside = tmp_path / "D" / "oort" / "credentials.json"
    credentials.save(outside, credentials.Credentials(key="k-1234567890"))
    warning = credentials.permission_warning(outside)
    assert warning and "outside your user profile" in warning and "icacls" in warning


def test_windows_credentials_get_an_owner_only_acl(on_windows, monkeypatch, tmp_path):
    """With icacls on PATH, the file's ACL is set before the key is written."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    calls = tmp_path / "calls"
    fake = bindir / "icacls.EXE"  # what shutil.which looks for on Windows (PATHEXT)
    # Shell builtins only: PATH holds nothing else.
    fake.write_text(f'#!/bin/sh\nif [ -s "$1" ]; then echo full; else echo empty; fi >> {calls}\n'
                    f'echo "$@" >> {calls}\n')
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", str(bindir))
    monkeypatch.setenv("PATHEXT", ".EXE")
    monkeypatch.setenv("USERNAME", "astro")
    path = tmp_path / "creds.json"
    credentials.save(path, credentials.Credentials(key="k-1234567890"))
    size, args = calls.read_text().split("\n")[:2]
    assert size == "empty"  # empty when restricted: the key never sat in an open file
    assert args.endswith("/inheritance:r /grant:r astro:F")


def test_posix_credentials_are_0600_whatever_the_umask(monkeypatch, tmp_path):
    monkeypatch.setattr(sys, "platform", "linux")
    old = os.umask(0)
    try:
        credentials.save(tmp_path / "c.json", credentials.Credentials(key="k"))
    finally:
        os.umask(old)
    assert (tmp_path / "c.json").stat().st_mode & 0o777 == 0o600
    (tmp_path / "c.json").chmod(0o640)
    assert "chmod 600" in credentials.permission_warning(tmp_path / "c.json")


def test_windows_walk_reads_files_without_posix_ids(on_windows, tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "x.fits").write_bytes(b"x")
    (tmp_path / "a" / "y.fits").write_bytes(b"y")
    (tmp_path / "a" / "y.fits").chmod(0)  # mode bits mean nothing on Windows: not checked
    entries = list(scan.walk(str(tmp_path)))
    assert sorted(e.relpath for e in entries if isinstance(e, scan.Entry)) == [
        "a/x.fits", "a/y.fits"]


class _ZeroInode:
    """os.scandir as on Windows: DirEntry.stat() has st_ino = st_dev = 0."""

    def __init__(self, real):
        self.real = real

    def __call__(self, path="."):
        outer = self

        class Listing:
            def __init__(self):
                self.it = outer.real(path)

            def __enter__(self):
                return self

            def __exit__(self, *exc):
                self.it.close()

            def close(self):
                self.it.close()

            def __iter__(self):
                return (Entry(e) for e in self.it)

        class Entry:
            def __init__(self, e):
                self.e = e

            def __getattr__(self, name):
                return getattr(self.e, name)

            def stat(self, *, follow_symlinks=True):
                st = self.e.stat(follow_symlinks=follow_symlinks)
                return os.stat_result((st.st_mode, 0, 0, *tuple(st)[3:]),
                                      {"st_mtime_ns": st.st_mtime_ns})

        return Listing()


def test_walk_with_windows_zero_inodes_finds_every_folder(monkeypatch, tmp_path):
    for name in ("n1", "n2", "n3"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "f.fits").write_bytes(b"x")
    os.symlink(tmp_path / "n1", tmp_path / "link")  # a link to a walked folder: a loop
    monkeypatch.setattr(scan.os, "scandir", _ZeroInode(os.scandir))
    found = list(scan.walk(str(tmp_path)))
    assert sorted(e.relpath for e in found if isinstance(e, scan.Entry)) == [
        "n1/f.fits", "n2/f.fits", "n3/f.fits"]
    assert [(e.relpath, e.reason) for e in found if isinstance(e, scan.Skipped)] == [
        ("link", scan.SYMLINK_LOOP)]


def test_macos_explains_full_disk_access(monkeypatch):
    monkeypatch.setattr(sys, "platform", "darwin")
    hint = host.unreadable_folder_hint(PermissionError(1, "Operation not permitted"))
    assert "Full Disk Access" in hint and os.path.realpath(sys.executable) in hint
    monkeypatch.setattr(sys, "platform", "linux")
    assert host.unreadable_folder_hint(PermissionError(1, "no")) == ""


def test_lock_without_fcntl_uses_filelock(monkeypatch, tmp_path):
    import filelock  # noqa: F401 - loaded first, with its own (POSIX) backend, as on Windows
    monkeypatch.setitem(sys.modules, "fcntl", None)  # `import fcntl` raises ImportError
    assert not host.has_flock()
    first = lock.RunLock(tmp_path / "run.lock")
    assert isinstance(first._lock, lock._PortableLock)
    with first:
        with pytest.raises(LockHeld, match=f"pid {os.getpid()}"):
            lock.RunLock(tmp_path / "run.lock").acquire()
        assert lock.current_holder(tmp_path / "run.lock").pid == os.getpid()
    assert lock.current_holder(tmp_path / "run.lock") is None


def test_ctrl_break_stops_a_run_like_ctrl_c(monkeypatch):
    # Linux has no SIGBREAK: SIGUSR1 plays it, delivered for real.
    monkeypatch.setattr(signal, "SIGBREAK", signal.SIGUSR1, raising=False)
    assert signal.SIGUSR1 in host.interrupt_signals()
    stopper = GracefulStop()
    with stopper:
        os.kill(os.getpid(), signal.SIGUSR1)
        assert stopper.stop.wait(5)
    assert stopper.exit_code == 130
    assert signal.getsignal(signal.SIGUSR1) == signal.SIG_DFL


def test_log_rotation_survives_a_reader_holding_the_file(monkeypatch, tmp_path, capsys):
    """Windows refuses to rename an open file: the run goes on writing, nothing is lost,
    no traceback reaches stderr, and a later run rotates."""
    log_file = tmp_path / "oort-sync.log"
    held = str(log_file)
    real_rename = os.rename

    def windows_rename(src, dst):
        if str(src) == held:
            raise PermissionError(13, "The process cannot access the file because it is "
                                      "being used by another process", str(src))
        return real_rename(src, dst)

    monkeypatch.setattr(os, "rename", windows_rename)
    logger = logging.getLogger(logfile.LOGGER)
    logfile.setup(log_file, max_bytes=10_000, backups=2)
    try:
        for number in range(400):
            logger.info("line %04d %s", number, "x" * 40)
    finally:
        logfile.close()
    assert "Logging error" not in capsys.readouterr().err
    lines = log_file.read_text().splitlines()
    assert len(lines) == 400 and lines[-1].endswith("line 0399 " + "x" * 40)
    monkeypatch.setattr(os, "rename", real_rename)  # the reader is gone: the next run rotates
    logfile.setup(log_file, max_bytes=10_000, backups=2)
    try:
        logger.info("next run")
    finally:
        logfile.close()
    assert log_file.with_name("oort-sync.log.1").exists()
    assert log_file.read_text().strip().endswith("next run")


def test_windows_redirected_output_escapes_what_the_code_page_cannot_hold(on_windows,
                                                                          monkeypatch):
    import io

    raw = io.BytesIO()
    redirected = io.TextIOWrapper(raw, encoding="cp1252")  # `oort-sync ... > file` there
    monkeypatch.setattr(sys, "stdout", redirected)
    host.tolerant_console()
    print("M31 \u00e9toile \u2605.fits")
    redirected.flush()
    assert raw.getvalue() == "M31 \u00e9toile \\u2605.fits\n".encode("cp1252")


def test_oort_lib_uses_only_open_flags_windows_has():
    windows_flags = {"O_RDONLY", "O_WRONLY", "O_RDWR", "O_APPEND", "O_CREAT", "O_EXCL",
                     "O_TRUNC", "O_BINARY", "O_NOINHERIT", "O_TEMPORARY", "O_TEXT"}
    used = set()
    for path in (ROOT / "oort_lib").rglob("*.py"):
        used |= set(re.findall(r"os\.(O_[A-Z]+)", path.read_text(encoding="utf-8")))
    assert used and used <= windows_flags


def test_pythonw_run_without_console_writes_console_log(tmp_path):
    """pythonw.exe gives no stdout/stderr: `python -m oort_lib` writes to console.log."""
    home = tmp_path / "home"
    code = ("import sys, runpy; sys.stdout = sys.stderr = None; "
            "sys.argv = ['oort_lib', 'run', '-q', '--home=" + str(home) + "']; "
            "runpy.run_module('oort_lib', run_name='__main__')")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OORT_", "ARCSECOND_"))}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 3, done.stderr  # not logged in: exit code 3, said in the file
    assert "Not logged in" in (home / "state" / "console.log").read_text()


def test_schedule_entry_point_on_windows_is_the_scripts_exe(on_windows, monkeypatch, tmp_path):
    from oort_lib.views import schedule

    (tmp_path / "Scripts").mkdir()
    exe = tmp_path / "Scripts" / "oort-sync.exe"
    exe.write_text("")
    exe.chmod(0o755)
    monkeypatch.setattr(sys, "prefix", str(tmp_path))
    assert schedule.command()[0] == str(exe)

