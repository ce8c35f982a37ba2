"""The log file's own rotation: bounded disk use, the newest lines in the current file,
older ones in .1, .2... in order; nothing lost or printed when a rename is refused
(test_host.py), and none of logging.handlers' imports on the way."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from oort_lib.state import logfile

ROOT = Path(__file__).resolve().parent.parent


def write_lines(log_file: Path, count: int, *, max_bytes: int, backups: int) -> None:
    logger = logging.getLogger(logfile.LOGGER)
    logfile.setup(log_file, max_bytes=max_bytes, backups=backups)
    try:
        for number in range(count):
            logger.info("line %05d %s", number, "x" * 60)
    finally:
        logfile.close()


def numbers(path: Path) -> list[int]:
    return [int(line.split("line ")[1][:5]) for line in path.read_text().splitlines()]


@pytest.mark.parametrize("backups", [1, 2, 3])
def test_rotation_keeps_the_newest_lines_in_order_within_the_bound(tmp_path, backups):
    log_file = tmp_path / "state" / "oort-sync.log"
    write_lines(log_file, 1000, max_bytes=10_000, backups=backups)
    kept = sorted(p.name for p in log_file.parent.iterdir())
    assert kept == ["oort-sync.log"] + [f"oort-sync.log.{n}" for n in range(1, backups + 1)]
    files = [log_file.with_name(f"oort-sync.log.{n}") for n in range(backups, 0, -1)]
    files.append(log_file)
    seen = [number for path in files for number in numbers(path)]
    # Oldest file first, each line once, none missing from the first kept to the last.
    assert seen == list(range(seen[0], 1000))
    for path in files:
        assert path.stat().st_size <= 10_000
    assert sum(path.stat().st_size for path in files) <= 10_000 * (backups + 1)
    assert logfile.tail(log_file, 3)[-1].endswith("line 00999 " + "x" * 60)


def test_no_backups_means_the_file_starts_again(tmp_path):
    """`log_backups = 0`: the file is emptied when full, never grows past the bound (the
    standard handler, given no backups, never rotated at all)."""
    log_file = tmp_path / "oort-sync.log"
    write_lines(log_file, 1000, max_bytes=10_000, backups=0)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["oort-sync.log"]
    assert log_file.stat().st_size <= 10_000
    assert numbers(log_file)[-1] == 999


def test_rotation_goes_on_from_an_earlier_run(tmp_path):
    log_file = tmp_path / "oort-sync.log"
    write_lines(log_file, 100, max_bytes=10_000, backups=2)  # ~7.5 kB: not rotated yet
    assert not log_file.with_name("oort-sync.log.1").exists()
    write_lines(log_file, 100, max_bytes=10_000, backups=2)
    assert numbers(log_file.with_name("oort-sync.log.1"))[0] == 0
    assert numbers(log_file)[-1] == 99


@pytest.mark.skipif(not os.path.exists("/dev/null") or os.name == "nt", reason="POSIX")
def test_a_log_that_is_not_a_regular_file_is_never_renamed(tmp_path):
    log_file = tmp_path / "oort-sync.log"
    log_file.symlink_to("/dev/null")
    write_lines(log_file, 300, max_bytes=10_000, backups=2)
    assert log_file.is_symlink() and sorted(p.name for p in tmp_path.iterdir()) == [
        "oort-sync.log"]
    assert logfile.write_failure() is None


def test_the_log_file_needs_no_logging_handlers():
    code = ("import sys, logging, tempfile, pathlib\n"
            "from oort_lib.state import logfile\n"
            "folder = pathlib.Path(tempfile.mkdtemp())\n"
            "logfile.setup(folder / 'oort-sync.log', max_bytes=10_000, backups=1)\n"
            "for n in range(400):\n"
            "    logging.getLogger(logfile.LOGGER).info('line %d', n)\n"
            "logfile.close()\n"
            "assert (folder / 'oort-sync.log.1').exists()\n"
            "print('logging.handlers' in sys.modules)\n")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                          text=True, check=True)
    assert done.stdout.strip() == "False"
