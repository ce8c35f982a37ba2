"""Shared fixtures: a real sandbox server on loopback, an isolated oort-sync home, and a
way to run the CLI (in-process for speed, or as a real process when signals matter)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

import pytest

from oort_lib.cli import main
from oort_lib.state import config as cfg
from oort_lib.state import credentials

ROOT = Path(__file__).resolve().parent.parent
# The real sample files (read in place, never copied): ../shared/realdata beside the
# clone, as on CI.
REALDATA = ROOT.parent / "shared" / "realdata"
# Under CI (`CI=true`, set by .ci/run) every test runs: what a test needs is installed
# by .ci/run, and a test that cannot run fails instead of skipping (but the macOS-only
# one, marked ci_may_skip).
CI = os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")
# Variables of an installation in use that the tests must neither read nor write into.
USER_VARIABLES = ("OORT_", "ARCSECOND_", "XDG_")


@dataclass
class Result:
    code: int
    out: str
    err: str


def _user_variables() -> list[str]:
    """The OORT_*, ARCSECOND_* and XDG_* variables set (an observatory machine where the
    tool is in use has OORT_SYNC_HOME, ARCSECOND_API, XDG_CONFIG_HOME...)."""
    return [name for name in os.environ if name.upper().startswith(USER_VARIABLES)]


def pytest_configure(config):
    """Before collection: the user's variables are gone from this process (and from the
    xdist workers it starts) and HOME is an empty temporary folder, so that no code run
    at import or collection reads or writes the user's state either."""
    config.addinivalue_line("markers", "needs(available, reason): the test needs what "
                            "this machine may lack; skipped here, failed under CI")
    config.addinivalue_line("markers", "ci_may_skip: the one test that may skip under CI "
                            "(what it checks exists on macOS only)")
    for name in _user_variables():
        del os.environ[name]
    config._oort_home = tempfile.mkdtemp(prefix="oort-tests-home-")
    os.environ["HOME"] = config._oort_home


def pytest_unconfigure(config):
    home = getattr(config, "_oort_home", None)
    if home is not None:
        shutil.rmtree(home, ignore_errors=True)


@pytest.fixture(autouse=True)
def _isolated(tmp_path_factory, monkeypatch):
    """Each test sees none of the user's variables, and HOME is an empty folder of its
    own, for this process and every process it starts: nothing a test does can reach the
    user's configuration, credentials or manifest. The host-wide folder locks
    (folderlock.folder_lock_dir) are the tests' own."""
    for name in _user_variables():
        monkeypatch.delenv(name)
    monkeypatch.setenv("HOME", str(tmp_path_factory.mktemp("user-home")))
    monkeypatch.setenv("OORT_SYNC_LOCK_DIR", str(tmp_path_factory.getbasetemp() / "locks"))


# --- what a test needs: skipped on a developer's machine, never under CI -----------------


def unavailable(reason: str) -> NoReturn:
    """A test that cannot run here: skipped, but failed under CI, where .ci/run installs
    every tool the tests use and ../shared is beside the clone."""
    if CI:
        pytest.fail(f"{reason}; under CI every test must run (.ci/run installs what the "
                    "tests need)", pytrace=False)
    pytest.skip(reason)


def need_tool(name: str, package: str | None = None) -> str:
    """The path of the program `name`, or unavailable() naming its Debian package."""
    found = shutil.which(name)
    if found is None:
        unavailable(f"{name} is not installed (apt-get install -y {package or name})")
    return found


def needs(available, reason: str) -> pytest.MarkDecorator:
    """Mark a test that needs what this machine may lack (root, a device, a package):
    when `available` is false it is skipped, or failed under CI."""
    return pytest.mark.needs(available=bool(available), reason=reason)


def pytest_runtest_setup(item):
    for mark in item.iter_markers("needs"):
        if not mark.kwargs["available"]:
            unavailable(mark.kwargs["reason"])


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Under CI a skip is a failure, whatever skipped (a skipif, an importorskip, an
    empty parameter set), but for a test marked ci_may_skip."""
    report = (yield).get_result()
    if (CI and report.skipped and not hasattr(report, "wasxfail")
            and item.get_closest_marker("ci_may_skip") is None):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else report.longrepr
        report.outcome = "failed"
        report.longrepr = f"skipped under CI, where every test must run: {reason}"


@pytest.fixture(scope="session")
def realdata() -> Path:
    """../shared/realdata (the real sample files), or unavailable()."""
    if not REALDATA.is_dir():
        unavailable(f"the real sample files are missing ({REALDATA})")
    return REALDATA


@pytest.fixture
def home(tmp_path, monkeypatch) -> cfg.Paths:
    """An empty oort-sync home; the environment cannot leak a real key into tests."""
    for name in ("ARCSECOND_UPLOAD_KEY", "OORT_SYNC_KEY", "XDG_CONFIG_HOME", "XDG_STATE_HOME"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("OORT_SYNC_HOME", str(tmp_path / "home"))
    return cfg.resolve_paths()


@pytest.fixture
def cli(home, capsys):
    """Run oort-sync in this process; returns exit code and captured output."""

    def run(*args: str) -> Result:
        capsys.readouterr()
        code = main([str(a) for a in args])
        captured = capsys.readouterr()
        return Result(code, captured.out, captured.err)

    return run


@pytest.fixture
def sandbox(tmp_path):
    from oort_lib.sandbox import Sandbox

    with Sandbox(tmp_path / "sandbox", page_size=2) as server:
        server.start()
        yield server


@pytest.fixture
def sb(tmp_path):
    """A running sandbox for the sandbox's own tests (they drive it with raw requests)."""
    from oort_lib.sandbox import Sandbox

    with Sandbox(tmp_path / "sandbox", page_size=2) as server:
        yield server


FAST_RETRIES = {"retries": 3, "backoff_base": 0.01, "backoff_max": 0.2, "retry_delay": 0,
                "connect_timeout": 10.0, "read_timeout": 30.0}


def configure(paths: cfg.Paths, api: str, key: str, *, folders=(), generation="2021",
              username=None, **settings) -> cfg.Settings:
    """Log in with a key and watch folders, the way `login` and `watch` would save them.

    `generation` is what login would have detected; None leaves it to the run to detect.
    """
    values = dict(FAST_RETRIES, **settings)
    new = cfg.Settings(api=api, folders=tuple(folders), **values)
    cfg.save_settings(paths, new)
    credentials.save(paths.credentials_file, credentials.Credentials(
        key=key, api=api, username=username, generation=generation))
    return new


@pytest.fixture
def logged_in(home, sandbox):
    """A home logged in to the sandbox, with fast retries; call it with folders to watch."""

    def setup(*folders: cfg.Folder | str, key: str | None = None, **settings) -> cfg.Settings:
        items = [f if isinstance(f, cfg.Folder) else cfg.Folder(path=str(f)) for f in folders]
        return configure(home, sandbox.url, key or sandbox.seed.upload_key, folders=items,
                         **settings)

    return setup


def run_process(*args: str, env: dict | None = None, **kwargs) -> subprocess.Popen:
    """oort-sync as a real process (for signals and kills)."""
    return subprocess.Popen(
        [sys.executable, str(ROOT / "oort_sync.py"), *map(str, args)],
        env={**os.environ, **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **kwargs,
    )
