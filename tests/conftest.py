"""Shared fixtures: a real sandbox server on loopback, an isolated oort-sync home, and a
way to run the CLI (in-process for speed, or as a real process when signals matter)."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from oort_lib.cli import main
from oort_lib.state import config as cfg
from oort_lib.state import credentials

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Result:
    code: int
    out: str
    err: str


@pytest.fixture(autouse=True)
def _folder_locks(tmp_path_factory, monkeypatch):
    """The host-wide folder locks (folderlock.folder_lock_dir) of the tests, not the user's."""
    monkeypatch.setenv("OORT_SYNC_LOCK_DIR", str(tmp_path_factory.getbasetemp() / "locks"))


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
