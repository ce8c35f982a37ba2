"""The manifest is the run's queue (issue 24, part 1): planned files are recorded as
pending rows a batch at a time and read back a page at a time, so a first run over a
million new files never holds them all.

What can be proved without a million files: the plan holds no item, the manifest holds
every planned file before the first is sent, the live items of a real run (planning and
uploading, against the sandbox of each generation) stay under a batch and a page
whatever the number of files, and a run cut after planning goes on from its queue
without reading a header again. (The memory itself: bench/ firstmillion.)
"""

from __future__ import annotations

import gc
import os
import time

import pytest
from fitsfiles import write_tree
from helpers import configure_for

from oort_lib.run import sync
from oort_lib.run.item import Item
from oort_lib.run.plan import Listed
from oort_lib.run.planner import make_plan
from oort_lib.run.queue import Queue
from oort_lib.state import config as cfg
from oort_lib.state import credentials
from oort_lib.state import manifest as mf

BATCH = 40  # rows written and read per step in these tests (the real one: 2,000)


def live_items() -> int:
    """Item objects alive in this process now."""
    gc.collect()
    return sum(1 for thing in gc.get_objects() if type(thing) is Item)


def archive(root, nights: int = 3, per_night: int = 60) -> int:
    """A tree of `nights` nights of `per_night` frames each (three targets); its count."""
    frames = {}
    for night in range(nights):
        for index in range(per_night):
            target = ("M31", "M42", "NGC7000")[index % 3]
            frames[f"2021-06-0{night + 1}/{target}/f{index:03d}.fits"] = {
                "DATE-OBS": f"2021-06-0{night + 1}T22:{index // 60:02d}:{index % 60:02d}",
                "OBJECT": target}
    write_tree(root, frames, shape=(4, 4))
    return len(frames)


class Watcher(sync.Events):
    """Counts the live items as the run goes, and what the manifest held when planned."""

    def __init__(self, home: cfg.Paths):
        self.home, self.most, self.ended, self.pending_when_planned = home, 0, 0, None

    def planned(self, plan) -> None:
        assert not hasattr(plan, "items")  # counts only: the files are in the manifest
        # The files skipped (the previews) are counted, their names left to the manifest.
        assert len(plan.skipped) == 30 and list(plan.skipped) == []
        assert not any(type(thing) is Listed for thing in gc.get_objects())
        with mf.Manifest(self.home.manifest_file, readonly=True) as manifest:
            self.pending_when_planned = manifest.rows(
                "SELECT count(*) AS n FROM files WHERE status = 'pending'")[0]["n"]
        self.most = max(self.most, live_items())

    def done(self, item, outcome, reason) -> None:
        self.ended += 1
        if self.ended % 25 == 0:
            self.most = max(self.most, live_items())


@pytest.mark.parametrize("server", ["2021", "2026"], indirect=True)
def test_a_run_holds_a_batch_and_a_page_not_every_file(home, server, tmp_path, monkeypatch):
    monkeypatch.setattr("oort_lib.run.queue.BATCH", BATCH)
    root = tmp_path / "archive"
    count = archive(root)
    for index in range(30):  # previews beside the frames: skipped, "not FITS or XISF"
        (root / "previews" / f"p{index}.jpg").parent.mkdir(exist_ok=True)
        (root / "previews" / f"p{index}.jpg").write_bytes(b"\xff\xd8 preview")
    settings = configure_for(home, server, server.dialect, root)
    watcher = Watcher(home)
    result = sync.run(home, settings, credentials.load(home.credentials_file),
                      events=watcher, min_age=0)
    assert result.exit_code == 0 and result.uploaded == count == 180
    assert result.summary()["skipped"] == 30
    # Every planned file was a pending row of the manifest before the first was sent.
    assert watcher.pending_when_planned == count
    # A page of the queue, the files in flight and the planner's batch at most: never
    # the 180 files (the bound does not grow with them; the real page is 2,000).
    assert watcher.most <= BATCH + 16 + 1
    assert len(server.datafiles()) == count


def test_a_run_cut_after_planning_goes_on_from_its_queue(home, tmp_path, monkeypatch):
    """Planned and recorded, nothing sent (the run was cut): the next plan takes every
    file from the manifest, reading no header again, in the same upload order."""
    root = tmp_path / "archive"
    count = archive(root, nights=2, per_night=30)
    folder = cfg.Folder(str(root))
    with mf.Manifest(home.manifest_file) as manifest:
        first = make_plan([folder], manifest, min_age=0, queue=Queue(manifest, batch=7),
                          record=manifest.upsert_files)
        order = [item.relpath for item in first.queue.items()]
        assert first.files == len(order) == count

        def no_reading(*args, **kwargs):
            raise AssertionError("a header read again")

        monkeypatch.setattr("oort_lib.local.headers.read_header", no_reading)
        again = make_plan([folder], manifest, min_age=0, queue=Queue(manifest, batch=7),
                          record=manifest.upsert_files)
        assert again.files == count and again.bytes_read == 0
        assert [item.relpath for item in again.queue.items()] == order
        # Newest night first.
        assert order[0].startswith("2021-06-02/") and order[-1].startswith("2021-06-01/")


def test_many_pending_rows_are_read_one_by_one_with_the_same_plan(home, tmp_path,
                                                                   monkeypatch):
    """A backlog of pending rows too many to load at once is read row by row: the plan
    is the same either way."""
    from oort_lib.state.quickindex import Unsettled

    root = tmp_path / "archive"
    archive(root, nights=2, per_night=30)
    folder = cfg.Folder(str(root))
    with mf.Manifest(home.manifest_file) as manifest:
        make_plan([folder], manifest, min_age=0, queue=Queue(manifest),
                  record=manifest.upsert_files)
        manifest.update_file(str(root), "2021-06-01/M31/f000.fits", status=mf.FAILED,
                             transient=1, retry_at=time.time() + 3600, attempts=2,
                             reason="timed out")
        plans = []
        for at_once in (50_000, 0):
            monkeypatch.setattr(Unsettled.__init__, "__defaults__", (at_once,))
            plan = make_plan([folder], manifest, min_age=0)
            plans.append(plan.to_dict())
            assert plan.waiting[0].relpath == "2021-06-01/M31/f000.fits"
    assert plans[0] == plans[1] and plans[0]["totals"]["files"] == 59


def test_a_listing_left_by_a_killed_dry_run_is_removed_by_the_next(tmp_path):
    """A dry run's scratch queue is removed when it ends; one left by a process that was
    killed (up to 300 MB for a million files) goes with the next listing there; that of a
    process still running stays."""
    import subprocess
    import sys

    from oort_lib.run.queue import Scratch

    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True).stdout.strip()
    left = tmp_path / f"oort-sync-plan-{gone}-x1"
    living = tmp_path / f"oort-sync-plan-{os.getppid()}-x2"
    for folder in (left, living):
        folder.mkdir()
        (folder / "plan.sqlite").write_bytes(b"rows")
    with Scratch(str(tmp_path)) as scratch:
        assert scratch.folder.parent == tmp_path and scratch.folder.is_dir()
        assert not left.exists() and living.exists()
    assert not scratch.folder.exists()
    assert [p.name for p in tmp_path.iterdir()] == [living.name]
