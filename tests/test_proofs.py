"""The proofs themselves: the suite leaves a user's state alone, skips nothing under CI, and
the README cites tests that exist and figures that bench/ measured.

An observatory machine where oort-sync is in use has OORT_SYNC_HOME, ARCSECOND_API,
XDG_CONFIG_HOME... set; `make test` run there must pass and leave that state as it was.
"""

from __future__ import annotations

import ast
import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import ROOT

README = ROOT / "README.md"
TESTS = ROOT / "tests"


def _snapshot(root: Path) -> dict[str, tuple]:
    """Every file and folder under `root`: its bytes, mode and mtime (ns)."""
    found = {}
    for path in sorted(root.rglob("*")):
        info = path.lstat()
        content = path.read_bytes() if path.is_file() else None
        found[str(path.relative_to(root))] = (content, info.st_mode, info.st_mtime_ns)
    return found


def _inner_env(**variables: str) -> dict[str, str]:
    """This environment without pytest's own variables (an inner session of its own)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "COV_"))}
    env.update(variables)
    return env


# Real tests that write a home, run oort-sync in this process and as its own process, and
# one that failed when the user's variables reached it.
INNER = [
    "tests/test_host.py::test_linux_dirs_are_what_platformdirs_says",
    "tests/test_config.py::test_credentials_are_0600_and_env_overrides",
    "tests/test_sync.py::test_key_never_leaks",
    "tests/test_schedule.py::test_cron_line_runs_and_forgives_only_exit_75",
]


def test_the_suite_leaves_the_users_state_untouched(tmp_path):
    """A pytest session of real tests, run with the variables of an installation in use
    (its home holding a config, credentials and a manifest): every test passes, and
    every byte, mode and mtime of that installation's folders is as it was."""
    user = tmp_path / "user"
    oort_home = user / "oort-home"
    (oort_home / "config").mkdir(parents=True)
    (oort_home / "state").mkdir()
    (oort_home / "config" / "config.ini").write_text(
        "# the observatory's own settings\n[oort-sync]\napi = http://127.0.0.1:9\n"
        "jobs = 1\n\n[folder /nowhere/at/all]\n")
    (oort_home / "config" / "credentials.json").write_text('{"key": "' + "u" * 32 + '"}\n')
    (oort_home / "state" / "manifest.sqlite").write_bytes(b"the user's manifest")
    for xdg in ("config", "state", "cache", "data"):
        (user / f"xdg-{xdg}" / "oort-sync").mkdir(parents=True)
        (user / f"xdg-{xdg}" / "oort-sync" / "sentinel").write_text(xdg)
    (user / "home" / ".config" / "oort-sync").mkdir(parents=True)
    (user / "home" / ".config" / "oort-sync" / "config.ini").write_text("[oort-sync]\n")
    before = _snapshot(user)
    env = _inner_env(
        OORT_SYNC_HOME=str(oort_home), OORT_SYNC_KEY="o" * 32, OORT_SYNC_LOCK_DIR=str(user),
        ARCSECOND_API="http://127.0.0.1:9", ARCSECOND_UPLOAD_KEY="a" * 32,
        XDG_CONFIG_HOME=str(user / "xdg-config"), XDG_STATE_HOME=str(user / "xdg-state"),
        XDG_CACHE_HOME=str(user / "xdg-cache"), XDG_DATA_HOME=str(user / "xdg-data"),
        HOME=str(user / "home"))
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:xdist",
         f"--basetemp={tmp_path / 'inner'}", *INNER],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert f"{len(INNER)} passed" in done.stdout, done.stdout[-2000:]
    assert _snapshot(user) == before


def test_a_test_sees_none_of_the_users_variables():
    assert [n for n in os.environ if n.startswith(("ARCSECOND_", "XDG_"))] == []
    assert [n for n in os.environ if n.startswith("OORT_")] == ["OORT_SYNC_LOCK_DIR"]
    home = Path(os.environ["HOME"])
    assert home.is_dir() and list(home.iterdir()) == []  # its own, empty
    child = subprocess.run([sys.executable, "-c", "import os; print(os.environ['HOME'])"],
                           capture_output=True, text=True, check=True)
    assert child.stdout.strip() == str(home)  # and the processes it starts see the same


# --- nothing skips under CI -------------------------------------------------------------


def _tools_tests_need() -> set[str]:
    return {name for path in TESTS.glob("*.py")
            for name in re.findall(r"need_tool\(\"([^\"]+)\"", path.read_text())}


def test_ci_installs_every_tool_the_tests_need_then_runs_make_test():
    script = (ROOT / ".ci" / "run").read_text()
    tools = _tools_tests_need()
    assert {"strace", "chromium", "systemd-analyze"} <= tools
    for tool in tools:
        assert re.search(rf"\b{re.escape(tool)}:", script), f".ci/run does not install {tool}"
    commands = [line for line in script.splitlines() if line and line[0] not in " #"]
    assert commands[-1] == "make test"  # the README's test command, exactly
    assert "CI=" in script and "apt-get install" in script


SKIPPING = '''
import pytest

def test_needs_something_missing():
    pytest.skip("some tool is not installed")

@pytest.mark.ci_may_skip
def test_macos_only():
    pytest.skip("exists on macOS only")

@pytest.mark.parametrize("path", [])
def test_of_no_real_files(path):
    pass

def test_unavailable():
    from helpers import unavailable
    unavailable("no such tool")
'''


@pytest.mark.parametrize("ci, outcome", [("true", "2 failed, 1 skipped, 1 error"),
                                         ("", "4 skipped")])
def test_under_ci_a_skip_fails_but_the_macos_only_test(tmp_path, ci, outcome):
    """The conftest of this suite, in a session of tests that skip: a skip (a tool
    missing, unavailable(), no parameters: an error of its setup) is a failure under CI,
    but ci_may_skip's."""
    (tmp_path / "test_skipping.py").write_text(SKIPPING)
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:xdist",
         "-p", "conftest", f"--rootdir={tmp_path}", "test_skipping.py"],
        cwd=tmp_path, env=_inner_env(CI=ci, PYTHONPATH=str(TESTS)), capture_output=True,
        text=True, timeout=120)
    assert outcome in done.stdout, done.stdout[-3000:] + done.stderr[-2000:]


# --- the README cites tests that exist ------------------------------------------------------


def _test_names(path: Path) -> set[str]:
    """The test functions of a file (a parametrized one by its base name)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return {node.name for node in ast.walk(tree)
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
            and node.name.startswith("test")}


def readme_citations(text: str) -> list[tuple[str, str | None]]:
    """(file, test name or None) of every test the README names: `tests/test_x.py::name`,
    `test_x.py::name`, a bare `test_x.py`, and `::name`, which continues the file named
    last on the same line (a table row)."""
    cited = []
    for line in text.splitlines():
        current = None
        for match in re.finditer(r"(?:tests/)?(test_\w+\.py)(?:::(\w+))?|`::(\w+)`", line):
            file, name, continued = match.groups()
            if file:
                current = file
                cited.append((file, name))
            else:
                assert current is not None, f"`::{continued}` with no file before it: {line}"
                cited.append((current, continued))
    return cited


def test_readme_citation_forms_are_read():
    row = ("| x | y | z | `tests/test_a.py::test_one`, `::test_two`; `test_b.py::test_three` "
           "and `::test_four`, see test_c.py |")
    assert readme_citations(row) == [("test_a.py", "test_one"), ("test_a.py", "test_two"),
                                     ("test_b.py", "test_three"), ("test_b.py", "test_four"),
                                     ("test_c.py", None)]


def test_every_test_the_readme_cites_exists():
    cited = readme_citations(README.read_text(encoding="utf-8"))
    assert len([c for c in cited if c[1]]) >= 100  # the reliability and security tables
    missing = []
    for file, name in cited:
        path = TESTS / file
        if not path.is_file():
            missing.append(file)
        elif name is not None and name not in _test_names(path):
            missing.append(f"{file}::{name}")
    assert missing == [], f"the README cites tests that do not exist: {missing}"


# --- the README's Performance table is bench/results.json -----------------------------------


def _readme_table():
    spec = importlib.util.spec_from_file_location("readme_table",
                                                  ROOT / "bench" / "readme_table.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_readme_performance_table_is_bench_results():
    """The figures between the markers are rendered from bench/results.json (copied from
    a real run's .bench/results.json): `python bench/readme_table.py` rewrites them."""
    table = _readme_table()
    readme = README.read_text(encoding="utf-8")
    results = table.load(ROOT / "bench" / "results.json")
    assert table.section(readme) == table.render(results), (
        "README.md and bench/results.json disagree: run `python bench/readme_table.py`")


def test_every_median_in_the_results_is_of_at_least_five_runs():
    """A timing is a median of 5 runs or more, or a single run rendered as "(one run)"."""
    table = _readme_table()
    results = table.load(ROOT / "bench" / "results.json")
    assert results["results"]
    for entry in results["results"]:
        for figure in (entry["ours"], entry["peer"]):
            if figure is None:
                continue
            assert figure["kind"] in ("median", "single run", "count"), entry["case"]
            if figure["kind"] == "median":
                assert figure["runs"] >= 5, entry["case"]
                assert f"(median of {figure['runs']})" in table.measured(figure)
            elif figure["kind"] == "single run":
                assert figure["runs"] == 1 and "(one run)" in table.measured(figure)
