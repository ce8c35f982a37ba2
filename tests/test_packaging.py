"""`python -m build` makes an sdist and a wheel; the sdist holds everything the tests need
(and its tests pass when run from it, against its own code), the wheel the whole
package; the metadata says the licence, the platforms, the URLs and the dependencies."""

from __future__ import annotations

import configparser
import email
import importlib.util
import json
import os
import re
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest
from helpers import needs, unavailable

ROOT = Path(__file__).resolve().parent.parent
pytestmark = needs((ROOT / "setup.cfg").exists(), "not a source tree")


@pytest.fixture(scope="module")
def dist(tmp_path_factory) -> Path:
    """Both distributions, built the way `python -m build` does (the wheel from the
    sdist), with this environment's setuptools: no download."""
    if importlib.util.find_spec("build") is None:
        unavailable("the build package is not installed (make venv installs it)")
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


# --- the wheel, installed as a user installs it --------------------------------------------


def _venv_with_the_wheel(dist: Path, where: Path) -> Path:
    """A fresh virtualenv outside the checkout with the wheel installed in it (what `pipx
    install dist/oort_sync-*.whl` makes). The dependencies are this environment's, put on
    its path by a .pth file: nothing is downloaded, and oort_lib comes from the wheel."""
    import sysconfig

    venv = where / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True,
                   timeout=120)
    python = venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    [wheel] = dist.glob("*.whl")
    done = subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install",
                           "--no-deps", "--no-index", "--quiet", str(wheel)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    site = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_path("
                           "'purelib'))"], capture_output=True, text=True, check=True)
    Path(site.stdout.strip(), "dependencies.pth").write_text(
        sysconfig.get_path("purelib") + "\n")
    return venv


def test_the_wheel_installed_outside_the_checkout_syncs_with_its_sandbox(dist, tmp_path):
    venv = _venv_with_the_wheel(dist, tmp_path)
    command = venv / "bin" / "oort-sync"
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PYTEST_", "OORT_", "ARCSECOND_", "PYTHON"))
           or k == "OORT_SYNC_LOCK_DIR"}
    env["OORT_SYNC_HOME"] = str(tmp_path / "home")

    def oort(*args: str, stdin: str = "") -> subprocess.CompletedProcess:
        return subprocess.run([str(command), *args], input=stdin, env=env, cwd=tmp_path,
                              capture_output=True, text=True, timeout=120)

    where = subprocess.run([str(venv / "bin" / "python"), "-c",
                            "import oort_lib; print(oort_lib.__file__)"], env=env,
                           cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert where.stdout.startswith(str(venv)), where.stdout + where.stderr
    version = oort("--version")
    assert version.returncode == 0 and version.stdout.startswith("oort-sync 0."), version
    sandbox = subprocess.Popen([str(command), "sandbox", "--port=0", "--dialect=2026",
                                f"--data={tmp_path / 'sandbox'}"], env=env, cwd=tmp_path,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        banner = {}
        for line in sandbox.stdout:
            label, _, value = line.strip().partition(": ")
            banner[label] = value
            if label.startswith("personal telescope"):
                break
        url, key = banner["API URL"], banner["upload key"]
        [telescope] = re.findall(r"[0-9a-f-]{36}", banner["personal telescope"])
        login = oort("login", f"--api={url}", f"--username={banner['username']}",
                     "--key-stdin", stdin=key + "\n")
        assert login.returncode == 0, login.stderr
        data = tmp_path / "data"
        made = subprocess.run([str(venv / "bin" / "python"), "-c",
                               "import sys; from oort_lib.samples import make_sample_tree; "
                               "make_sample_tree(sys.argv[1])", str(data)], env=env,
                              cwd=tmp_path, capture_output=True, text=True, timeout=60)
        assert made.returncode == 0, made.stderr
        assert oort("watch", str(data), "-t", telescope, "-y").returncode == 0
        run = oort("run", "--min-age=0", "--json")
        assert run.returncode == 0, run.stderr
        assert json.loads(run.stdout)["uploaded"] == 13
        again = oort("run", "--min-age=0", "--json")
        assert json.loads(again.stdout)["uploaded"] == 0
    finally:
        sandbox.terminate()
        sandbox.wait(30)


def test_make_dist_builds_the_sdist_and_the_wheel_into_dist():
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    recipe = makefile.split("\ndist:", 1)[1].split("\n\n", 1)[0]
    assert "-m build --no-isolation --outdir dist ." in recipe  # both, from this venv
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    install = readme.split("## Install", 1)[1].split("\n## ", 1)[0].lower()
    assert install.index("pipx install .") < install.index("once released")
    assert "make dist" in install and "pipx install dist/oort_sync-" in install
