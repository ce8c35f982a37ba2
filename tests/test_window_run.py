"""The window of uploads in flight in a real run against the sandbox: it grows without
tuning, halves on the server's 429s, and --jobs fixes it (`run -v` says which)."""

from __future__ import annotations

import re

import pytest
from fitsfiles import NIGHT, settle, write_tree
from helpers import configure_for

from oort_lib.run.window import HIGH


def _frames(root, count):
    files = write_tree(root, {f"M31/f{n:03d}.fits": NIGHT for n in range(count)})
    settle(*files)
    return files


def _reached(err: str) -> int:
    found = re.search(r"Uploads in flight: up to (\d+) \(adaptive", err)
    assert found, err
    return int(found.group(1))


def test_the_window_grows_while_the_server_keeps_up(cli, home, server, tmp_path):
    _frames(tmp_path / "data", 40)
    configure_for(home, server, server.dialect, tmp_path / "data")
    server.faults.latency = 0.02
    result = cli("run", "--min-age=0", "-v")
    assert result.code == 0, result.err
    assert 2 < _reached(result.err) <= HIGH
    assert len(server.datafiles()) == 40


def test_the_servers_429s_halve_it(cli, home, sb26, tmp_path):
    _frames(tmp_path / "data", 40)
    configure_for(home, sb26, "2026", tmp_path / "data")
    sb26.faults.throttle_rate = 0.3
    sb26.faults.retry_after = 0
    result = cli("run", "--min-age=0", "-v")
    assert result.code == 0, result.err
    assert re.search(r"halved \d+ times? by the server's 429/503", result.err), result.err
    assert len(sb26.datafiles()) == 40


@pytest.mark.parametrize("how", ["flag", "config"])
def test_jobs_fixes_it(cli, home, sb26, tmp_path, how):
    _frames(tmp_path / "data", 6)
    configure_for(home, sb26, "2026", tmp_path / "data", **({"jobs": 3} if how == "config"
                                                            else {}))
    result = cli("run", "--min-age=0", "-v", *(["--jobs=3"] if how == "flag" else []))
    assert result.code == 0, result.err
    assert "Uploads in flight: 3 (fixed by --jobs or `jobs`)." in result.err
