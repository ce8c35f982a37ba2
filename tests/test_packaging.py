"""`python -m build` makes an sdist and a wheel; the sdist holds everything the tests need
(and its tests pass when run from it, against its own code), the wheel the whole
package; the metadata says the licence, the platforms, the URLs and the dependencies."""

from __future__ import annotations

import configparser
import email
import os
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.skipif(not (ROOT / "setup.cfg").exists(), reason="not a source tree")


@pytest.fixture(scope="module")
def dist(tmp_path_factory) -> Path:
    """Both distributions, built the way `python -m build` does (the wheel from the
    sdist), with this environment's setuptools: no download."""
    pytest.importorskip("build")
    out = tmp_path_factory.mktemp("dist")
    done = subprocess.run(
        [sys.executable, "-m", "build", "--no-isolation", "--skip-dependency-check",
         "--outdir", str(out), str(ROOT)],
        capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return out


def _sdist(dist: Path) -> tarfile.TarFile:
    [path] = dist.glob("*.tar.gz")
    return tarfile.open(path)


def _wheel(dist: Path) -> zipfile.ZipFile:
    [path] = dist.glob("*.whl")
    return zipfile.ZipFile(path)


def test_sdist_holds_what_the_tests_need(dist):
    with _sdist(dist) as sdist:
        names = {name.split("/", 1)[1] for name in sdist.getnames() if "/" in name}
    tracked = {str(p.relative_to(ROOT)) for folder in ("tests", "contrib", "docs")
               for p in (ROOT / folder).rglob("*")
               if p.is_file() and "__pycache__" not in p.parts}
    assert tracked and tracked <= names, sorted(tracked - names)
    for name in ("LICENSE", "README.md", "Makefile", "oort_sync.py", "setup.cfg",
                 "pyproject.toml", "tests/conftest.py", "docs/report-screenshot.png",
                 "contrib/launchd/README.md", "contrib/windows-task/oort-sync-task.xml",
                 "oort_lib/host.py", "oort_lib/sandbox/__init__.py"):
        assert name in names, name
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")]


def test_wheel_holds_the_package_and_the_licence(dist):
    with _wheel(dist) as wheel:
        names = set(wheel.namelist())
        [meta_name] = [n for n in names if n.endswith(".dist-info/METADATA")]
        meta = email.message_from_bytes(wheel.read(meta_name))
    modules = {str(p.relative_to(ROOT)) for p in (ROOT / "oort_lib").rglob("*.py")}
    assert modules <= names and "oort_sync.py" in names
    assert any(n.endswith(".dist-info/LICENSE") for n in names)
    assert not [n for n in names if n.startswith("tests/")]
    assert meta["License"] == "GPL-3.0-or-later"
    classifiers = meta.get_all("Classifier")
    for system in ("Operating System :: Microsoft :: Windows", "Operating System :: MacOS",
                   "Operating System :: POSIX :: Linux"):
        assert system in classifiers
    urls = dict(u.split(", ", 1) for u in meta.get_all("Project-URL"))
    assert {"Source", "Issues"} <= set(urls)
    requires = {r.split(">")[0].split(";")[0].strip() for r in meta.get_all("Requires-Dist")
                if "extra ==" not in r}
    assert {"platformdirs", "tzdata", "filelock"} <= requires


def test_licence_is_the_gpl3_the_metadata_declares():
    text = (ROOT / "LICENSE").read_text(encoding="utf-8")
    assert text.lstrip().startswith("GNU GENERAL PUBLIC LICENSE")
    assert "Version 3, 29 June 2007" in text and "END OF TERMS AND CONDITIONS" in text
    setup = configparser.ConfigParser()
    setup.read(ROOT / "setup.cfg")
    assert setup["metadata"]["license"] == "GPL-3.0-or-later"


def test_sdist_tests_pass_from_the_unpacked_sdist(dist, tmp_path):
    """A part of the suite (the platform, recipe, config and docs tests), run inside the
    unpacked sdist against the sdist's own oort_lib, not this checkout's."""
    # The "data" filter where this Python has it (3.12; backported to 3.10.12, 3.11.4).
    safe = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
    with _sdist(dist) as sdist:
        sdist.extractall(tmp_path, **safe)
    [unpacked] = tmp_path.iterdir()
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PYTEST_", "OORT_", "ARCSECOND_"))}
    env["PYTHONPATH"] = str(unpacked)
    where = subprocess.run([sys.executable, "-c", "import oort_lib; print(oort_lib.__file__)"],
                           env=env, cwd=unpacked, capture_output=True, text=True, timeout=60)
    assert where.stdout.strip().startswith(str(unpacked)), where.stdout + where.stderr
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", "-p", "no:xdist",
         "tests/test_docs.py", "tests/test_config.py", "tests/test_host.py",
         "tests/test_launchd_and_windows_task.py", "tests/test_platforms.py"],
        env=env, cwd=unpacked, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert " passed" in done.stdout and " failed" not in done.stdout
