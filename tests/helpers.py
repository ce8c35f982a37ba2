"""What the tests share besides fixtures (those are in conftest.py): where things are, what
a test needs from the machine, a saved login, oort-sync as a real process, and what the
manifest and the server hold after a run.

FITS files and trees are in fitsfiles.py, whole and partial frames in partial.py.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

import pytest

from oort_lib.state import config as cfg
from oort_lib.state import credentials
from oort_lib.state import manifest as mf
from oort_lib.state.lock import RunLock

ROOT = Path(__file__).resolve().parent.parent
# The real sample files (read in place, never copied): ../shared/realdata beside the
# clone, as on CI.
REALDATA = ROOT.parent / "shared" / "realdata"
# Under CI (`CI=true`, set by .ci/run) every test runs: what a test needs is installed
# by .ci/run, and a test that cannot run fails instead of skipping (but the macOS-only
# one, marked ci_may_skip).
CI = os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


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
    when `available` is false it is skipped, or failed under CI (conftest's
    pytest_runtest_setup reads the mark)."""
    return pytest.mark.needs(available=bool(available), reason=reason)


# --- oort-sync, logged in, in this process or as a real one -------------------------------


@dataclass
class Result:
    """What the `cli` fixture's run of oort-sync in this process gives back."""

    code: int
    out: str
    err: str


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


def configure_for(paths: cfg.Paths, sandbox, generation: str, *roots: Path,
                  **settings) -> cfg.Settings:
    """`configure` logged in to `sandbox` in `generation`, watching `roots`: in 2026 with
    the seeded username, each folder on the seeded personal telescope."""
    in_2026 = generation == "2026"
    telescope = sandbox.seed.personal_telescope_uuid if in_2026 else None
    return configure(paths, sandbox.url, sandbox.seed.upload_key, generation=generation,
                     username=sandbox.seed.username if in_2026 else None,
                     folders=[cfg.Folder(str(root), telescope=telescope) for root in roots],
                     **settings)


def lock_is_free(paths: cfg.Paths) -> bool:
    """Whether the run lock can be taken (it is released again at once)."""
    lock = RunLock(paths.lock_file)
    try:
        lock.acquire()
    except Exception:  # noqa: BLE001 - LockHeld: the test fails below
        return False
    lock.release()
    return True


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


# --- what a run left: the manifest's rows, the server's copies ----------------------------


def sha(data: bytes | Path) -> str:
    """The sha256 (hex) of `data`, or of the content of the file at that path."""
    return hashlib.sha256(Path(data).read_bytes() if isinstance(data, str | Path)
                          else data).hexdigest()


def manifest_row(paths: cfg.Paths, name: str) -> dict:
    """The manifest's one row of the file whose relpath ends with `name` (asserted one)."""
    with mf.Manifest(paths.manifest_file) as manifest:
        rows = manifest.rows("SELECT * FROM files WHERE relpath LIKE ?", (f"%{name}",))
    assert len(rows) == 1, rows
    return rows[0]


def server_copies(sandbox) -> dict[str, list[str]]:
    """filename -> sha256 of each copy the sandbox holds (a list: duplicates show)."""
    found: dict[str, list[str]] = {}
    for f in sandbox.objects("datafiles"):
        found.setdefault(f["filename"], []).append(f["sha256"])
    return found


def assert_each_once(sandbox, *files: Path) -> None:
    """Every file is on the server exactly once, with its content as it is now."""
    held = server_copies(sandbox)
    for path in files:
        assert held.get(path.name) == [sha(path)], (path.name, held.get(path.name))


def planned(folders, manifest: mf.Manifest, **options):
    """make_plan with its files queued as a dry run's listing queues them (a scratch
    manifest: `manifest` is only read), read back into `plan.items` in the order they
    were planned. For tests only: a real plan never holds its items in memory."""
    from oort_lib.run.planner import make_plan
    from oort_lib.run.queue import Queue, Scratch

    with Scratch() as scratch:
        plan = make_plan(folders, manifest, queue=Queue(scratch.manifest), **options)
        plan.items = [item for _id, item in plan.queue.all_items()]
    plan.queue = None
    return plan
