"""A no-change tick (cron every few minutes over a tree already uploaded) does the least a
run can: it asks the server nothing and loads none of what only an upload needs. Its
time is mostly a stat per file; what it imports is most of the rest (bench/ measures it
against rclone)."""

from __future__ import annotations

import json
import subprocess
import sys

from helpers import ROOT

from oort_lib.samples import write_fits
from oort_lib.state.quickindex import QUICK_COLUMNS

# Modules a tick must not load: the HTTP stack, the header readers, the progress bar,
# OpenSSL's hashes, and the standard library's heavier helpers it was found importing
# (logging.handlers: socket, pickle, queue; ~8 ms and ~5 ms for hashlib).
NOT_ON_A_TICK = ("requests", "urllib3", "http", "ssl", "astropy", "numpy", "xisf", "tqdm",
                 "hashlib", "_hashlib", "logging.handlers", "socket", "pickle",
                 "concurrent.futures", "oort_lib.arcsecond.address",
                 "oort_lib.arcsecond.client", "oort_lib.run.uploader")

TICK = ("import json, sqlite3, sys\n"
        "statements, connect = [], sqlite3.connect\n"
        "def traced(*args, **options):\n"
        "    conn = connect(*args, **options)\n"
        "    conn.set_trace_callback(statements.append)\n"
        "    return conn\n"
        "sqlite3.connect = traced\n"
        "from oort_lib.cli import main\n"
        "code = main(['run'])\n"
        "print(json.dumps([code, sorted(sys.modules), statements]))\n")


def test_a_no_change_tick_loads_nothing_an_upload_needs(cli, logged_in, sandbox, tmp_path):
    root = tmp_path / "data"
    for index in range(6):
        write_fits(root / f"night{index % 2}" / f"frame_{index}.fits",
                   {"DATE-OBS": f"2021-03-1{index % 2}T23:00:00", "OBJECT": "M31"})
    logged_in(root)
    assert cli("run", "--min-age=0").code == 0
    asked = len(sandbox.requests)
    done = subprocess.run([sys.executable, "-c", TICK], cwd=ROOT, capture_output=True,
                          text=True, check=True)
    code, modules, statements = json.loads(done.stdout.splitlines()[-1])
    assert code == 0
    assert len(sandbox.requests) == asked  # nothing asked of the server
    loaded = [name for name in NOT_ON_A_TICK if name in modules]
    assert loaded == [], f"a no-change tick imported {loaded}"
    # Of the file rows, SQLite is asked how many, then the quick check's (the settled
    # rows' three columns, the others' seven) once: not the rows still to be dealt with
    # (there are none to ask for), nothing written.
    reads = [" ".join(s.split()) for s in statements if " files" in s]
    assert [s.split(" WHERE")[0] for s in reads] == [
        "SELECT count(*) FROM files", "SELECT relpath, size, mtime_ns FROM files",
        f"SELECT {QUICK_COLUMNS} FROM files"], reads
