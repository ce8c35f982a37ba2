"""Bounded time (issue 19): a glob, a throttling or silent server and a list without end
each cost a bounded time, whatever the number of names, files or pages."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from collections import Counter
from pathlib import Path

import pytest
from fitsfiles import write_tree
from helpers import configure, lock_is_free
from hostile import KEY, Hostile
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from oort_lib.arcsecond.budget import STRIKES
from oort_lib.errors import ConfigError
from oort_lib.local.exclude import MAX_STARS, check, matcher
from oort_lib.state import config as cfg
from oort_lib.state import manifest as mf

# --- exclude globs --------------------------------------------------------------------


def reference(pattern: str, relpath: str, is_folder: bool) -> bool:
    """The meaning of an exclude pattern, written the slow and obvious way."""
    if pattern.endswith("/") and not is_folder:
        return False
    body = pattern.strip("/")
    anchored = "/" in body or pattern.startswith("/")
    return _matches(body if anchored else "**/" + body, relpath)


def _matches(glob: str, text: str) -> bool:
    if not glob:
        return not text
    if glob.startswith("**/"):  # no folder, or any folders
        return _matches(glob[3:], text) or any(
            text[i] == "/" and _matches(glob[3:], text[i + 1:]) for i in range(len(text)))
    if glob.startswith("**"):
        return any(_matches(glob[2:], text[i:]) for i in range(len(text) + 1))
    if glob[0] == "*":
        return any(_matches(glob[1:], text[i:]) for i in range(len(text) + 1)
                   if "/" not in text[:i])
    if not text:
        return False
    if glob[0] == "?":
        return text[0] != "/" and _matches(glob[1:], text[1:])
    if glob[0] == "[" and glob.find("]", 2) != -1:
        end = glob.find("]", 2)
        body, negated = glob[1:end], glob[1] in "!^"
        body = body[1:] if negated else body
        chars, i = set(), 0
        while i < len(body):
            if i + 2 < len(body) and body[i + 1] == "-":
                chars |= {chr(c) for c in range(ord(body[i]), ord(body[i + 2]) + 1)}
                i += 3
            else:
                chars.add(body[i])
                i += 1
        return (text[0] != "/" and (text[0] in chars) != negated
                and _matches(glob[end + 1:], text[1:]))
    return glob[0] == text[0] and _matches(glob[1:], text[1:])


PATTERN = st.text(alphabet="ab*?/[]!-", min_size=1, max_size=8)
PATH = st.text(alphabet="ab/-]", max_size=8)


@settings(max_examples=1500, deadline=None)
@given(PATTERN, PATH, st.booleans())
def test_exclude_matches_like_the_obvious_definition(pattern, relpath, is_folder):
    assume(relpath == relpath.strip("/") and "//" not in relpath and relpath)
    try:
        (cleaned,) = check([pattern])
    except (ConfigError, ValueError):
        return  # refused (or emptied): nothing to compare
    expected = reference(cleaned, relpath, is_folder)
    assert (matcher([cleaned])(relpath, is_folder) == cleaned) is expected


def test_several_patterns_give_the_first_that_matches():
    match = matcher(["logs/", "*.tmp", "**/logs/*", "a/**/b.tmp"])
    assert match("x/logs", True) == "logs/"
    assert match("x/logs", False) is None  # logs/ is for folders only
    assert match("x/logs/a.tmp", False) == "*.tmp"
    assert match("x/logs/a.fits", False) == "**/logs/*"
    assert match("a/c/d/b.tmp", False) == "*.tmp"
    assert match("a/c/d/b.fits", False) is None
    # The folders of a path are run once and kept: siblings and other depths agree.
    for name in ("f.tmp", "f.fits", "logs"):
        for folder in ("", "x/", "x/logs/", "x/y/"):
            expected = next((p for p in ("logs/", "*.tmp", "**/logs/*", "a/**/b.tmp")
                             if reference(p, folder + name, False)), None)
            assert match(folder + name, False) == expected


PATHOLOGICAL = textwrap.dedent("""
    import time
    from oort_lib.local.exclude import matcher
    match = matcher(["*_*_*_*_*_*_*_*.tmp"])
    names = [f"night/{'ab_' * 80}{index}.fits" for index in range(1000)]
    start = time.monotonic()
    found = [match(name, False) for name in names]
    took = time.monotonic() - start
    assert found == [None] * 1000, found[:3]
    assert match("night/a_b_c_d_e_f_g_h.tmp", False) == "*_*_*_*_*_*_*_*.tmp"
    assert match("night/a_b_c_d_e_f_g.tmp", False) is None  # one `_` short
    print(took)
""")


def test_a_pathological_glob_takes_linear_time():
    """8 stars against 1,000 names of 250 characters: about 0.1 s, bounded at 10 s for a
    busy host (a backtracking regex took 17 s for one name). In a child process, so the
    old code fails, not hangs."""
    try:
        done = subprocess.run([sys.executable, "-c", PATHOLOGICAL], capture_output=True,
                              text=True, timeout=30)
    except subprocess.TimeoutExpired:
        pytest.fail("1,000 names took more than 30 s")
    assert done.returncode == 0, done.stderr
    assert float(done.stdout) < 10.0


def test_a_pattern_with_too_many_stars_is_refused_by_name():
    check(["*" + "_*" * (MAX_STARS - 1) + ".tmp"])
    bad = "*" + "_*" * MAX_STARS + ".tmp"
    with pytest.raises(ConfigError, match=r"exclude pattern '\*_\*.*: 17 stars, at most 16"):
        check([bad])


# --- a run-level budget ---------------------------------------------------------------


def night_files(root: Path, count: int) -> Path:
    write_tree(root, {f"{['M31', 'M42'][index % 2]}/frame_{index:03d}.fits":
                      {"DATE-OBS": f"2021-03-{10 + index % 3:02d}T23:00:00", "OBJECT": "M31"}
                      for index in range(count)}, settled=False)
    return root


def statuses(paths: cfg.Paths) -> Counter:
    with mf.Manifest(paths.manifest_file) as manifest:
        return Counter(r["status"] for r in manifest.rows("SELECT status FROM files"))


def test_a_server_throttling_every_request_ends_the_run_soon(cli, home, logged_in, sandbox,
                                                           tmp_path):
    """429 with `Retry-After: 3600` on every request, 16 files, 2 workers: 3 strikes and
    the run stops sending (it used to send 3 requests per file, about 8 s here and hours
    with the default settings). Exit 4, every file pending, said once; once the server
    answers again, everything is uploaded once."""
    root = night_files(tmp_path / "data", 16)
    logged_in(root, jobs=2, retries=2, backoff_max=0.5)
    sandbox.faults.throttle_rate = 1.0
    sandbox.faults.retry_after = 3600
    start = time.monotonic()
    busy = cli("run", "--min-age=0")
    took = time.monotonic() - start
    assert busy.code == 4, busy.err
    assert "busy or unresponsive" in busy.err and "wait for the next" in busy.err
    assert "Traceback" not in busy.err
    assert len(sandbox.requests) <= STRIKES + 2, sandbox.requests  # 2 workers in flight
    assert took < 60, took  # a deadline: Retry-After (an hour) is not waited out
    assert statuses(home) == {"pending": 16}
    again = cli("run", "--min-age=0")  # still busy: logged, not printed again
    assert again.code == 4 and "busy" not in again.err
    sandbox.faults.throttle_rate = 0
    done = cli("run", "--min-age=0")
    assert done.code == 0, done.err
    assert "recovered after" in done.err
    assert statuses(home) == {"uploaded": 16}
    names = Counter(f["filename"] for f in sandbox.objects("datafiles"))
    assert len(names) == 16 and set(names.values()) == {1}


def test_brief_throttles_are_waited_out_not_counted(cli, home, logged_in, sandbox, tmp_path):
    """A server pacing the client (half the requests 429 with a short Retry-After) is not
    busy: the run goes on to the end."""
    root = night_files(tmp_path / "data", 8)
    logged_in(root, jobs=2, retries=8)
    sandbox.faults.seed = 3
    sandbox.faults.throttle_rate = 0.5
    sandbox.faults.retry_after = 0.01
    result = cli("run", "--min-age=0")
    assert result.code == 0, result.err
    assert statuses(home) == {"uploaded": 8}


def test_a_silent_server_is_unreachable_not_a_file_failure(cli, home, tmp_path):
    """A server that accepts connections and never answers: exit 4 after 3 timeouts in a
    row (it used to time out every request of every file: exit 1, 30 s here)."""
    root = night_files(tmp_path / "data", 10)
    with Hostile("silent") as server:
        configure(home, server.url, KEY, folders=[cfg.Folder(str(root))], jobs=2,
                  retries=2, connect_timeout=0.5, read_timeout=0.5, backoff_base=0.01,
                  backoff_max=0.05)
        start = time.monotonic()
        result = cli("run", "--min-age=0")
        took = time.monotonic() - start
        assert result.code == 4, result.err
        assert "busy or unresponsive" in result.err and "no answer within 0.5 s" in result.err
        assert "Traceback" not in result.err
        assert len(server.seen) <= STRIKES + 2
        # A deadline, with a wide margin for a busy host: a few 0.5 s timeouts (about 2 s
        # here), not a timeout for every request of every file (30 s).
        assert took < 25, took
    assert statuses(home) == {"pending": 10}
    assert lock_is_free(home)


def test_a_silent_server_in_the_middle_of_uploads(cli, home, tmp_path):
    """Silent for the uploads only (2026: one dataset, then the files): the same."""
    from oort_lib.sandbox import Sandbox

    root = night_files(tmp_path / "data", 12)
    with Sandbox(tmp_path / "sb26", page_size=2, dialect="2026") as sb:
        sb.start()
        telescope = sb.seed.personal_telescope_uuid
        configure(home, sb.url, sb.seed.upload_key, folders=[cfg.Folder(str(root),
                  telescope=telescope)], generation="2026", username=sb.seed.username,
                  jobs=3, retries=2, read_timeout=0.3)
        sb.faults.slow_rate, sb.faults.slow_delay, sb.faults.paths = 1.0, 1.0, "/datafiles/"
        start = time.monotonic()
        result = cli("run", "--min-age=0")
        assert result.code == 4, result.err
        assert time.monotonic() - start < 25  # a deadline: a few 0.3 s timeouts (about 1 s)
        posts = [r for r in sb.requests if r[0] == "POST" and "datafiles" in r[1]]
        assert len(posts) <= STRIKES + 3
        sb.faults.slow_rate = 0
        assert cli("run", "--min-age=0").code == 0
        names = Counter(f["filename"] for f in sb.datafiles())
        assert len(names) == 12 and set(names.values()) == {1}


def test_the_budget_counts_strikes_in_a_row():
    from oort_lib.arcsecond.budget import Budget
    from oort_lib.errors import ServerBusy, TransientError

    def throttle(wait):
        error = TransientError("GET /x/: throttled", 429)
        error.retry_after = wait
        return error

    budget = Budget()
    timeout = TransientError("http://h: no answer within 60 s")
    budget.strike("http://h", timeout)
    budget.throttled("http://h", throttle(3600))
    budget.answered()  # an answer in between: the row starts again
    budget.strike("http://h", timeout)
    budget.throttled("http://h", throttle(0.01))  # brief: waited out, not counted...
    budget.throttled("http://h", throttle(None))  # ...unlike one that does not say
    budget.gave_up("http://h", TransientError("GET /x/: server error", 500))  # not a 429
    with pytest.raises(ServerBusy, match="busy or unresponsive: 3 requests in a row"):
        budget.gave_up("http://h", throttle(0.01))  # ...until its request gives up
    assert budget.spent.is_set()
    with pytest.raises(ServerBusy):
        budget.check()  # and nothing more is sent
    unlimited = Budget(None)
    for _ in range(10):
        unlimited.strike("http://h", timeout)
    unlimited.check()
