"""Ingest lag and retries in `status` (issue 23): the age of the oldest file waiting to go
up, and when the postponed files are retried, overall and per folder, during outages of
the sandbox in both generations."""

from __future__ import annotations

import json
from datetime import datetime

from fitsfiles import NIGHT, write_tree
from helpers import configure, configure_for, manifest_row

from oort_lib.run.outage import duration
from oort_lib.state import config as cfg
from oort_lib.state import manifest as mf
from oort_lib.views.render import status_lines
from oort_lib.views.report import report_page


def _seconds(stamp: str) -> float:
    return datetime.fromisoformat(stamp).timestamp()


def test_lag_and_next_retry_during_an_outage(cli, home, server, tmp_path):
    raw, other = tmp_path / "raw", tmp_path / "other"
    write_tree(raw, {"a.fits": NIGHT})
    write_tree(other, {"z.fits": NIGHT})
    # A long retry delay: the postponed files wait well past this test.
    configure_for(home, server, server.dialect, raw, other, retry_delay=600)
    assert cli("run", "--min-age=0").code == 0
    data = json.loads(cli("status", "--json").out)
    assert (data["lag_seconds"], data["waiting_since"], data["next_retry"]) == (None,) * 3
    assert all(f["lag_seconds"] is None and f["next_retry"] is None for f in data["folders"])
    assert "Oldest file waiting" not in cli("status").out

    write_tree(raw, {"b.fits": NIGHT, "c.fits": NIGHT})
    server.faults.error_rate, server.faults.paths = 1.0, r"/datafiles/$"
    assert cli("run", "--min-age=0").code == 1
    first_seen = min(manifest_row(home, name)["first_seen"] for name in ("b.fits", "c.fits"))
    retry_at = min(manifest_row(home, name)["retry_at"] for name in ("b.fits", "c.fits"))
    data = json.loads(cli("status", "--json").out)
    now = _seconds(data["generated_at"])
    folder, idle = data["folders"]
    assert folder["counts"]["failed"] == 2
    # The files were written an hour ago, but seen (and so waiting) only since the run.
    assert abs(_seconds(folder["waiting_since"]) - first_seen) < 1
    assert folder["lag_seconds"] == now - _seconds(folder["waiting_since"])
    assert 0 <= folder["lag_seconds"] < 600
    assert abs(_seconds(folder["next_retry"]) - retry_at) < 1 and retry_at > now + 300
    assert (idle["lag_seconds"], idle["waiting_since"], idle["next_retry"]) == (None,) * 3
    assert {k: data[k] for k in ("lag_seconds", "waiting_since", "next_retry")} == {
        k: folder[k] for k in ("lag_seconds", "waiting_since", "next_retry")}

    text = status_lines(data)
    lag = (f"Oldest file waiting: {duration(folder['lag_seconds'])} "
           f"(since {folder['waiting_since']}).")
    retry = (f"Next retry: {folder['next_retry']} "
             f"(in {duration(_seconds(folder['next_retry']) - now)}).")
    assert lag in text and retry in text  # overall
    assert f"  {lag}" in text and f"  {retry}" in text  # and per folder (two are watched)
    assert "Oldest file waiting: " in report_page(home, cfg.load_settings(home))

    # The server gone: new files wait (pending), with no retry time of their own.
    write_tree(other, {"y.fits": NIGHT})
    server.stop()
    assert cli("run", "--min-age=0").code == 4
    data = json.loads(cli("status", "--json").out)
    folder, idle = data["folders"]
    assert idle["counts"]["pending"] == 1 and idle["lag_seconds"] is not None
    assert idle["next_retry"] is None and folder["next_retry"] is not None
    # Overall: the oldest waiting file of any folder, the first retry of any.
    assert data["waiting_since"] == min(folder["waiting_since"], idle["waiting_since"],
                                        key=_seconds)
    assert data["next_retry"] == folder["next_retry"]


def test_a_deferred_file_waits_since_it_changed(cli, home, sandbox, tmp_path):
    """A file changed after its upload waits since that change, not since the manifest
    first saw it; one written just now is deferred (min_age) and waits too."""
    root = tmp_path / "data"
    (path,) = write_tree(root, {"a.fits": NIGHT})
    configure(home, sandbox.url, sandbox.seed.upload_key, folders=[cfg.Folder(str(root))])
    assert cli("run", "--min-age=0").code == 0
    with mf.Manifest(home.manifest_file) as manifest:  # as if uploaded two hours ago
        manifest.conn.execute("UPDATE files SET first_seen = first_seen - 7200")
    write_tree(root, {"a.fits": dict(NIGHT, OBJECT="M 33")}, settled=False)  # changed now
    assert cli("run", "--min-age=3600").code == 0  # too fresh: deferred
    row = manifest_row(home, "a.fits")
    assert row["status"] == "deferred"
    data = json.loads(cli("status", "--json").out)
    since = _seconds(data["waiting_since"])
    assert abs(since - path.stat().st_mtime) < 1 and since > row["first_seen"] + 7000
    assert data["next_retry"] is None and 0 <= data["lag_seconds"] < 600
