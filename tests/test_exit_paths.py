"""Tracebacks and exit codes (issue 19): a log that cannot be closed, malformed objects
from the server. One line on stderr, the documented exit code, never a traceback."""

from __future__ import annotations

import os
import sqlite3

import pytest
from helpers import configure, needs, run_process
from hostile import KEY, Hostile

from oort_lib.arcsecond.client import Client
from oort_lib.arcsecond.listing import MAX_PAGES
from oort_lib.errors import EXIT_UNREACHABLE, MalformedAnswer
from oort_lib.samples import write_fits
from oort_lib.state import config as cfg

QUICK = {"connect_timeout": 2, "read_timeout": 2, "retries": 0, "backoff_base": 0.01}
SCOPE = "00000000-0000-4000-8000-00000000abcd"


def one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


# --- a log that cannot be written or closed --------------------------------------------


@needs(os.path.exists("/dev/full"), "needs /dev/full")
def test_a_log_on_a_full_disk_costs_no_traceback(home, tmp_path):
    """The log file is /dev/full: every write fails with ENOSPC, the close too. The
    command's own line and exit code, nothing else (it used to add 25 lines of traceback
    from closing the log, and exit 1)."""
    home.state_dir.mkdir(parents=True)
    os.symlink("/dev/full", home.log_file)
    proc = run_process("watch", str(tmp_path / "nowhere"), "-y")
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 2, err
    assert "no such folder" in one_line(err)


def test_a_full_state_disk_before_the_first_log_line(home, tmp_path, tiny_disk,
                                                    monkeypatch):
    """The state folder on a full filesystem, nothing logged yet: one line, exit 2."""
    monkeypatch.setenv("OORT_SYNC_HOME", str(tiny_disk / "home"))
    paths = cfg.resolve_paths()
    write_fits(tmp_path / "data" / "a.fits", {"DATE-OBS": "2021-06-01T22:00:00"})
    configure(paths, "http://127.0.0.1:9", KEY, folders=[cfg.Folder(str(tmp_path / "data"))])
    try:
        with open(tiny_disk / "filler", "wb") as handle:
            while True:
                handle.write(b"\0" * 65536)
                handle.flush()
    except OSError:
        pass  # full
    proc = run_process("run", "--min-age=0")
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 2, err
    assert "disk is full" in one_line(err)


# --- malformed objects from the server ---------------------------------------------------


@pytest.mark.parametrize("mode, phrase", [
    ("no-uuid", "the server's telescope list has an entry without uuid"),
    ("not-object", "the server's telescope list has an entry that is not an object"),
])
def test_telescopes_with_a_malformed_entry(cli, home, mode, phrase):
    with Hostile(mode) as server:
        configure(home, server.url, KEY, **QUICK)
        result = cli("telescopes")
    assert result.code == EXIT_UNREACHABLE == 4, result.err
    assert phrase in one_line(result.err)


@pytest.mark.parametrize("mode", ["no-uuid", "not-object"])
def test_watch_with_a_malformed_telescope(cli, home, tmp_path, mode):
    """`watch -t main`: not a detail route, so the list, whose entry has no uuid (it used
    to be a KeyError: internal error, exit 70)."""
    with Hostile(mode) as server:
        configure(home, server.url, KEY, **QUICK)
        result = cli("watch", tmp_path, "-t", "main", "-y")
    assert result.code == 4, result.err
    assert "the server's telescope list has an entry" in one_line(result.err)
    assert cfg.load_settings(home).folders == ()


def test_a_telescope_detail_that_is_not_one():
    with Hostile("ok-empty") as server:  # `[]` for the detail route of a telescope
        client = Client(server.url, KEY, retries=0)
        with pytest.raises(MalformedAnswer, match="the server's telescope is not an object"):
            client.telescope(None, SCOPE)


@pytest.mark.parametrize("generation, phrase", [
    ("2026", "the server's dataset list has an entry without uuid"),
    ("2021", "the server's night log list has an entry without uuid"),
])
def test_a_run_whose_lookup_answers_an_entry_without_uuid(cli, home, tmp_path, generation,
                                                          phrase):
    """The files wait (failed, transient), the reason names the server's list; the
    lookup is asked once for all the files that need it, not once per file."""
    root = tmp_path / "data"
    for index in range(5):
        write_fits(root / f"m{index}.fits", {"DATE-OBS": "2021-06-01T22:00:00"})
    with Hostile("no-uuid") as server:
        configure(home, server.url, KEY, generation=generation, username="astro",
                  folders=[cfg.Folder(str(root), telescope=SCOPE)], **QUICK)
        result = cli("run", "--min-age=0")
        gets = [path for method, path, _ in server.seen if method == "GET"]
    assert result.code == 1, result.err
    assert phrase in result.err and "Traceback" not in result.err
    assert len(gets) == 1, gets
    with sqlite3.connect(home.manifest_file) as db:
        rows = db.execute("SELECT status, transient, reason FROM files").fetchall()
    assert len(rows) == 5
    assert all(s == "failed" and t == 1 and phrase in r for s, t, r in rows), rows


# --- pages without end ----------------------------------------------------------------


def test_a_lookup_walks_a_bounded_number_of_pages():
    """Every page links to a new one: 100 pages, then a server problem saying so (it
    used to follow 10,000 pages one by one)."""
    with Hostile("pages") as server:
        client = Client(server.url, KEY, retries=0)
        with pytest.raises(MalformedAnswer) as info:
            client.find(None, "datasets", {"name": "M31"})
        assert len(server.seen) == MAX_PAGES == 100
    assert "the server's dataset list goes on past 100 pages" in info.value.message
    assert "at most 100 pages" in info.value.message


def test_telescopes_without_end_of_pages(cli, home):
    with Hostile("pages") as server:
        configure(home, server.url, KEY, **QUICK)
        result = cli("telescopes")
        assert len(server.seen) == MAX_PAGES
    assert result.code == 4, result.err
    assert "past 100 pages" in one_line(result.err)
