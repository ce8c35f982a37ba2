from __future__ import annotations

import sqlite3

import pytest

from oort_lib.errors import ManifestError
from oort_lib.state import manifest as mf


def test_migrations_are_named_and_applied_once(tmp_path):
    path = tmp_path / "m.sqlite"
    with mf.Manifest(path) as manifest:
        assert manifest.applied_migrations() == [name for name, _ in mf.MIGRATIONS]
    with mf.Manifest(path) as manifest:  # reopening applies nothing twice
        assert manifest.applied_migrations() == [name for name, _ in mf.MIGRATIONS]
        columns = {row["name"] for row in manifest.rows("PRAGMA table_info(files)")}
    for needed in ("root", "relpath", "size", "mtime_ns", "hash", "header_date", "night",
                   "kind", "dataset", "target", "status", "reason", "attempts",
                   "nightlog_uuid", "parent_uuid", "dataset_uuid", "first_seen", "updated_at"):
        assert needed in columns


def test_upsert_keeps_first_seen_and_updates(tmp_path):
    with mf.Manifest(tmp_path / "m.sqlite") as manifest:
        manifest.upsert_files("/r", [{"relpath": "a.fits", "size": 1, "status": "pending"}])
        first = manifest.file("/r", "a.fits")
        manifest.upsert_files("/r", [{"relpath": "a.fits", "size": 2, "status": "uploaded"}])
        second = manifest.file("/r", "a.fits")
        assert second["id"] == first["id"] and second["size"] == 2
        assert second["first_seen"] == first["first_seen"]
        assert manifest.known("/r")["a.fits"].status == "uploaded"
        assert manifest.known("/other") == {}


def test_remote_cache_and_runs(tmp_path):
    with mf.Manifest(tmp_path / "m.sqlite") as manifest:
        assert manifest.remote("k") is None
        manifest.set_remote("k", "nightlogs", "u1")
        assert manifest.remote("k") == "u1"
        manifest.forget_remote("k")
        assert manifest.remote("k") is None
        run = manifest.start_run()
        manifest.finish_run(run, exit_code=0, uploaded=3)
        last = manifest.last_runs(1)[0]
        assert last["exit_code"] == 0 and last["uploaded"] == 3 and last["ended_at"]


def test_failed_transaction_rolls_back(tmp_path):
    with mf.Manifest(tmp_path / "m.sqlite") as manifest:
        with pytest.raises(sqlite3.IntegrityError):
            manifest.upsert_files("/r", [{"relpath": "a", "status": "pending"},
                                         {"relpath": "b", "status": None}])
        assert manifest.known("/r") == {}


@pytest.mark.parametrize("damage", ["garbage", "truncate"])
def test_damaged_manifest_gives_clear_error_and_rebuild_keeps_it(tmp_path, damage):
    path = tmp_path / "m.sqlite"
    with mf.Manifest(path) as manifest:
        manifest.upsert_files("/r", [{"relpath": f"{i}.fits", "status": "uploaded"}
                                     for i in range(500)])
        manifest.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    data = path.read_bytes()
    path.write_bytes(b"this is not sqlite" * 100 if damage == "garbage" else data[: len(data) // 3])
    with pytest.raises(ManifestError) as info:
        with mf.Manifest(path) as manifest:
            manifest.known("/r")
    assert "--rebuild-manifest" in info.value.message and str(path) in info.value.message
    aside = mf.rebuild(path)
    assert aside.exists() and not path.exists()
    with mf.Manifest(path) as manifest:
        assert manifest.known("/r") == {}


def test_destination_migration_gives_old_uploads_to_the_configured_server(tmp_path):
    """A manifest of the first version (0001 only): its uploads went to the server of the
    config, in each row's own organisation; skipped rows belong to no destination."""
    path = tmp_path / "old.sqlite"
    only_first = [m for m in mf.MIGRATIONS if m[0] == "0001_initial"]
    original = mf.MIGRATIONS[:]
    mf.MIGRATIONS[:] = only_first
    try:
        with mf.Manifest(path) as old:
            old.upsert_files("/r", [
                {"relpath": "a.fits", "status": "uploaded", "organisation": None},
                {"relpath": "b.fits", "status": "uploaded", "organisation": "robotland"},
                {"relpath": "c.txt", "status": "skipped"},
            ])
            assert "destination" not in {r["name"] for r in old.rows("PRAGMA table_info(files)")}
    finally:
        mf.MIGRATIONS[:] = original
    with mf.Manifest(path, origin=("https://api.arcsecond.io/", "astro")) as manifest:
        assert "0002_destination" in manifest.applied_migrations()
        found = {r["relpath"]: r["destination"] for r in manifest.rows("SELECT * FROM files")}
    assert found == {"a.fits": "https://api.arcsecond.io|astro|",
                     "b.fits": "https://api.arcsecond.io|astro|robotland", "c.txt": None}


def test_a_run_after_the_migration_uploads_nothing_twice(cli, home, logged_in, sandbox,
                                                         tmp_path):
    """The migrated rows match the destination the next run computes: nothing is sent."""
    from oort_lib.samples import make_sample_tree

    logged_in(make_sample_tree(tmp_path / "data"))
    assert cli("run", "--min-age=0").code == 0
    with mf.Manifest(home.manifest_file) as manifest, manifest.transaction() as conn:
        conn.execute("UPDATE files SET destination = NULL")
        conn.execute("DELETE FROM migrations WHERE name = '0002_destination'")
        # A manifest from before 0002 has no later index over the column either.
        conn.execute("DROP INDEX files_quick")
        conn.execute("DELETE FROM migrations WHERE name = '0011_quick_covering'")
        conn.execute("ALTER TABLE files DROP COLUMN destination")
    sandbox.clear_requests()
    assert cli("run", "--min-age=0").code == 0
    assert sandbox.requests == []
