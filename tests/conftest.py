"""The fixtures (and the hooks that keep the suite honest): real sandbox servers on
loopback, an isolated oort-sync home, a way to run the CLI in this process, a tiny disk.
What tests import (helpers, factories) is in the plain modules beside this one
(helpers.py, fitsfiles.py, partial.py...), never here."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import CI, REALDATA, Result, configure, unavailable

from oort_lib.cli import main
from oort_lib.sandbox import Sandbox
from oort_lib.state import config as cfg

# Variables of an installation in use that the tests must neither read nor write into.
USER_VARIABLES = ("OORT_", "ARCSECOND_", "XDG_")


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
    config.addinivalue_line("markers", "sandbox(**options): the Sandbox options of the "
                            "test's sandbox fixtures (page_size=1...)")
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


# --- what a test needs (helpers.needs): skipped on a developer's machine, never under CI


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
def tiny_disk(tmp_path) -> Iterator[Path]:
    """A 4 MiB tmpfs (root only; unavailable() where mounting is not allowed)."""
    mount = tmp_path / "tiny"
    mount.mkdir()
    made = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mount)],
                          capture_output=True)
    if made.returncode != 0:
        unavailable(f"cannot mount a tmpfs here: {made.stderr.decode().strip()}")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


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


# --- sandboxes: one per generation served, options by marker or indirect parameter -------
#
# Each fixture is a running sandbox with pages of 2 items, under its own folder of
# tmp_path (a test may use two). A test (or a module, with `pytestmark`) changes the
# options with the `sandbox` marker, e.g. `pytest.mark.sandbox(page_size=1)`, and runs
# against other generations with an indirect parameter, the dialect:
# `pytest.mark.parametrize("sb26", ["2026", "both"], indirect=True)`.


def _running(request, data_dir: Path, dialect: str) -> Iterator[Sandbox]:
    """A sandbox at `data_dir` speaking `dialect` (or the test's indirect parameter), with
    the options of the test's `sandbox` marker, stopped after the test."""
    options = {"page_size": 2}
    marker = request.node.get_closest_marker("sandbox")
    if marker is not None:
        options.update(marker.kwargs)
    with Sandbox(data_dir, dialect=getattr(request, "param", dialect), **options) as server:
        yield server


@pytest.fixture
def sandbox(request, tmp_path) -> Iterator[Sandbox]:
    """A running sandbox of both generations."""
    yield from _running(request, tmp_path / "sandbox", "both")


@pytest.fixture
def sb(sandbox) -> Sandbox:
    """`sandbox`, by the short name of the sandbox's own tests (they send raw requests)."""
    return sandbox


@pytest.fixture
def sb21(request, tmp_path) -> Iterator[Sandbox]:
    """A running sandbox of the 2021 generation alone."""
    yield from _running(request, tmp_path / "sb21", "2021")


@pytest.fixture
def sb26(request, tmp_path) -> Iterator[Sandbox]:
    """A running sandbox of the 2026 generation alone."""
    yield from _running(request, tmp_path / "sb26", "2026")


@pytest.fixture(params=["2021", "2026"])
def server(request, tmp_path) -> Iterator[Sandbox]:
    """A running sandbox of one generation alone: the test runs once for each."""
    yield from _running(request, tmp_path / "sb", request.param)


@pytest.fixture
def logged_in(home, sandbox):
    """A home logged in to the sandbox, with fast retries; call it with folders to watch."""

    def setup(*folders: cfg.Folder | str, key: str | None = None, **settings) -> cfg.Settings:
        items = [f if isinstance(f, cfg.Folder) else cfg.Folder(path=str(f)) for f in folders]
        return configure(home, sandbox.url, key or sandbox.seed.upload_key, folders=items,
                         **settings)

    return setup
