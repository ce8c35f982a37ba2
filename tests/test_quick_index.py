"""The quick check's view of the manifest, one directory at a time: the same answers as
loading a folder whole, with only one directory's rows in memory."""

from __future__ import annotations

import json

import pytest

from oort_lib.state import manifest as mf
from oort_lib.state.quickindex import quick_sql


def _fill(manifest: mf.Manifest) -> dict[str, int]:
    rows = []
    for night in ("n1", "n2"):
        for field in ("M31", "M42"):
            for index in range(5):
                rows.append({"relpath": f"{night}/{field}/f{index}.fits", "size": index,
                             "status": mf.UPLOADED if index < 3 else mf.PENDING})
    rows += [{"relpath": "top.fits", "size": 1, "status": mf.FAILED},
             {"relpath": "gone/old.fits", "size": 1, "status": mf.PENDING},
             {"relpath": "gone/kept.fits", "size": 1, "status": mf.UPLOADED}]
    manifest.upsert_files("/r", rows)
    return {r["relpath"]: r["id"] for r in manifest.rows("SELECT id, relpath FROM files")}


@pytest.mark.parametrize("whole_below", [0, 10**9])
@pytest.mark.parametrize("dest", [None, "elsewhere"])  # uploaded rows settled, or not
def test_same_answers_whole_or_by_folder(tmp_path, whole_below, dest):
    with mf.Manifest(tmp_path / "m.sqlite") as manifest:
        ids = _fill(manifest)
        quick = manifest.quick_index("/r", dest, whole_below=whole_below)
        # The walk's order: a folder's files together, folders in name order.
        walked = ["n1/M31/f0.fits", "n1/M31/f1.fits", "n1/M31/f3.fits", "n1/M31/new.fits",
                  "n1/M42/f0.fits", "n2/M31/f4.fits", "top.fits"]
        seen = {}
        for path in walked:
            seen[path] = quick.pop(path)
            assert quick.pop(path) is None  # each row once (within a folder's visit)
        assert seen["n1/M31/new.fits"] is None
        assert seen["n1/M31/f0.fits"][:4] == (ids["n1/M31/f0.fits"], 0, None, mf.UPLOADED)
        assert seen["top.fits"][3] == mf.FAILED
        gone = {path for path, i in ids.items() if i in set(quick.gone())}
    # Not met by the walk and not uploaded: n1/M31/f4, n1/M42/f3-4, n2/M31/f3,
    # n2/M42/f3-4 and the deleted folder's pending file; uploaded rows stay as history.
    assert gone == {"n1/M31/f4.fits", "n1/M42/f3.fits", "n1/M42/f4.fits", "n2/M31/f3.fits",
                    "n2/M42/f3.fits", "n2/M42/f4.fits", "gone/old.fits"}


def test_a_folder_is_read_from_the_covering_index_alone(tmp_path):
    """The quick check's queries read no table page per row (migration 0011), on a new
    manifest and on one migrated from before the index."""
    old = tmp_path / "old.sqlite"
    with mf.Manifest(old) as manifest:
        _fill(manifest)
        manifest.conn.execute("DROP INDEX files_quick")
        manifest.conn.execute("DELETE FROM migrations WHERE name = '0011_quick_covering'")
    for path in (tmp_path / "new.sqlite", old):
        with mf.Manifest(path) as manifest:
            if path != old:
                _fill(manifest)
            for dest in (None, "somewhere"):
                for sql in quick_sql(dest):
                    plan = manifest.conn.execute(f"EXPLAIN QUERY PLAN {sql}",
                                                 ("/r",) + (dest,) * (dest is not None))
                    assert "COVERING INDEX files_quick" in " ".join(r[-1] for r in plan.fetchall())
                # A folder read a directory at a time seeks each one (a scan of the whole
                # folder per directory would make a million files quadratic).
                for sql in quick_sql(dest, folder=True):
                    plan = manifest.conn.execute(f"EXPLAIN QUERY PLAN {sql}", ("/r", "n1/M31/")
                                                 + (dest,) * (dest is not None)).fetchall()
                    assert "files_by_folder (root=? AND <expr>=?)" in " ".join(
                        r[-1] for r in plan)
            quick = manifest.quick_index("/r")
            assert sum(quick.pop(r) is not None for r in manifest.known("/r")) == 23


def test_settled_rows_are_those_uploaded_to_the_destination(tmp_path):
    """The planner's fast lookup holds the rows uploaded to the destination at hand (any,
    without one); the others, and a settled row asked whole, come as QUICK_COLUMNS."""
    with mf.Manifest(tmp_path / "m.sqlite") as manifest:
        manifest.upsert_files("/r", [
            {"relpath": "a.fits", "size": 1, "mtime_ns": 5, "status": mf.UPLOADED,
             "destination": "here"},
            {"relpath": "b.fits", "size": 2, "mtime_ns": 6, "status": mf.UPLOADED,
             "destination": "there"},
            {"relpath": "c.fits", "size": 3, "mtime_ns": 7, "status": mf.PENDING,
             "destination": "here"}])
        for whole_below in (0, 10**9):
            for dest, settled in (("here", ["a.fits"]), (None, ["a.fits", "b.fits"])):
                pop_settled, pop_other = manifest.quick_index(
                    "/r", dest, whole_below=whole_below).poppers()
                found = {name: (pop_settled(name, None), pop_other(name, None))
                         for name in ("a.fits", "b.fits", "c.fits", "new.fits")}
                assert [n for n, (s, _) in found.items() if s is not None] == settled
                assert found["a.fits"][0] == ("a.fits", 1, 5)
                for name, (row_settled, row_other) in found.items():
                    assert row_settled is None or row_other is None  # one or the other
                    if name not in settled and name != "new.fits":
                        assert (row_other[3], row_other[6]) == (manifest.known("/r")[name].status,
                                                                name)
        quick = manifest.quick_index("/r", "here")
        assert quick.full("a.fits")[1:] == (1, 5, mf.UPLOADED, None, "here", "a.fits")


def test_only_one_folder_is_held_at_a_time(tmp_path):
    with mf.Manifest(tmp_path / "m.sqlite") as manifest:
        manifest.upsert_files("/r", [{"relpath": f"d{d:03d}/f{i}.fits", "size": i,
                                      "status": mf.UPLOADED}
                                     for d in range(200) for i in range(10)])
        quick = manifest.quick_index("/r", whole_below=1000)  # 2,000 rows: by folder
        most = 0
        for d in range(200):
            for i in range(10):
                assert quick.pop(f"d{d:03d}/f{i}.fits")[1] == i
                most = max(most, len(quick._settled) + len(quick._others))
        assert most <= 10 and quick.gone() == []


def test_a_folder_walked_twice_loses_nothing(tmp_path):
    with mf.Manifest(tmp_path / "m.sqlite") as manifest:
        ids = _fill(manifest)
        quick = manifest.quick_index("/r", whole_below=0)
        quick.pop("n1/M31/f3.fits")
        quick.pop("n2/M31/f0.fits")
        assert quick.pop("n1/M31/f0.fits")[3] == mf.UPLOADED  # back in n1/M31
        assert quick.pop("n1/M31/f4.fits") is not None
        gone = set(quick.gone())
    assert ids["n1/M31/f3.fits"] not in gone and ids["n1/M31/f4.fits"] not in gone
    assert ids["n2/M31/f3.fits"] in gone


def test_a_summarising_plan_prints_what_the_full_plan_prints(tmp_path):
    """`run --dry-run` without -v/--json keeps totals per dataset, not a million items;
    with them, the same plan and every file listed (from its scratch queue)."""
    from oort_lib.run.planner import make_plan
    from oort_lib.run.queue import Queue, Scratch
    from oort_lib.samples import make_bulk_tree, make_sample_tree
    from oort_lib.state import config as cfg
    from oort_lib.views.render import plan_json, plan_lines

    make_sample_tree(tmp_path / "data")
    make_bulk_tree(tmp_path / "data" / "bulk", 300)
    folder = cfg.Folder(str(tmp_path / "data"), timezone="Europe/Paris")
    with mf.Manifest(tmp_path / "m.sqlite") as manifest, Scratch(str(tmp_path)) as scratch:
        full = make_plan([folder], manifest, min_age=0, queue=Queue(scratch.manifest))
        summary = make_plan([folder], manifest, min_age=0)
        assert summary.queue is None and full.queue.count() == full.files == summary.files > 300
        assert list(plan_lines(summary)) == list(plan_lines(full))
        listed = list(plan_lines(full, verbose=True))
        assert len(listed) == len(list(plan_lines(summary))) + full.files
        full_dict = full.to_dict()
        # The streamed JSON is the text json.dumps writes of the whole plan.
        assert "".join(plan_json(full)) == json.dumps(full_dict, indent=2)
    paths = []
    for log in full_dict["night_logs"]:
        for entry in log["observations"] + log["calibrations"]:
            paths += entry.pop("paths")
            assert len(entry.pop("dated_by")) == len(entry.pop("local_time_from")) \
                == entry["files"]
    assert len(paths) == len(set(paths)) == full.files
    assert summary.to_dict() == full_dict
    assert not manifest_rows(tmp_path / "m.sqlite")  # a dry run records nothing
    assert not list(tmp_path.glob("oort-sync-plan-*"))  # the scratch is gone


def manifest_rows(path) -> list:
    with mf.Manifest(path) as manifest:
        return manifest.rows("SELECT relpath FROM files")


def test_planning_knows_its_total_before_reading_a_header(tmp_path):
    """The progress total of a first plan comes from the walk and the quick check alone,
    before any header is read; then it counts up to it."""
    from helpers import planned

    from oort_lib.run.estimate import count_to_read
    from oort_lib.samples import make_bulk_tree
    from oort_lib.state import config as cfg

    make_bulk_tree(tmp_path / "data", 600)
    folder = cfg.Folder(str(tmp_path / "data"))
    calls = []
    with mf.Manifest(tmp_path / "m.sqlite") as manifest:
        assert count_to_read([folder], manifest) == 600
        plan = planned([folder], manifest, min_age=0, reading=lambda *c: calls.append(c))
        assert calls[0] == (0, 600)  # the total, before the first header was read
        assert calls[-1] == (600, 600) and len(calls) > 2  # then batch by batch
        assert [done for done, _ in calls] == sorted(done for done, _ in calls)
        # Once recorded as uploaded, nothing is left to read.
        manifest.upsert_files(folder.path, [dict(i.row(), status=mf.UPLOADED)
                                            for i in plan.items])
        assert count_to_read([folder], manifest) == 0
