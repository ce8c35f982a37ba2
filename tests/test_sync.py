"""The upload path end to end: the CLI, the library and the sandbox server over real HTTP."""

from __future__ import annotations

import json
import os
import time

import pytest

from oort_lib.samples import make_sample_tree, write_fits
from oort_lib.state import config as cfg
from oort_lib.state import manifest as mf


def _posts(sandbox, what="datafiles"):
    return [r for r in sandbox.requests if r[0] in ("POST", "PATCH") and what in r[1]]


def _plan(cli):
    result = cli("run", "--dry-run", "--json", "--min-age=0")
    assert result.code == 0, result.err
    return json.loads(result.out)


@pytest.fixture
def tree(tmp_path):
    return make_sample_tree(tmp_path / "data")


def test_first_run_creates_exactly_the_planned_objects(cli, logged_in, sandbox, tree):
    logged_in(tree)
    plan = _plan(cli)
    result = cli("run", "--min-age=0")
    assert result.code == 0, result.err
    assert result.out == "" and result.err == ""  # no terminal: success prints nothing
    nights = {log["night"] for log in plan["night_logs"]}
    assert {n["date"] for n in sandbox.objects("nightlogs")} == nights
    assert len(sandbox.objects("nightlogs")) == len(nights)
    expected_obs = {(log["night"], o["name"], o["target_name"])
                    for log in plan["night_logs"] for o in log["observations"]}
    by_uuid = {n["uuid"]: n["date"] for n in sandbox.objects("nightlogs")}
    assert {(by_uuid[o["night_log"]], o["name"], o["target_name"])
            for o in sandbox.objects("observations")} == expected_obs
    expected_cal = {(log["night"], c["name"]) for log in plan["night_logs"]
                    for c in log["calibrations"]}
    assert {(by_uuid[c["night_log"]], c["name"])
            for c in sandbox.objects("calibrations")} == expected_cal
    assert len(sandbox.objects("datasets")) == len(expected_obs) + len(expected_cal)
    files = sandbox.objects("datafiles")
    assert len(files) == plan["totals"]["files"] == 13
    assert all(f["organisation"] is None for f in files)
    sizes = {f["filename"]: f["size"] for f in files}
    assert sizes["Mosaic1.fits"] == (tree / "NGC3603/Halpha/Mosaic1.fits").stat().st_size

    sandbox.clear_requests()
    again = cli("run", "--min-age=0")
    assert again.code == 0 and again.out == "" and again.err == ""
    assert sandbox.requests == []  # nothing to do: not a single request


def test_organisation_with_telescope(cli, home, logged_in, sandbox, tree):
    seed = sandbox.seed
    logged_in(cfg.Folder(str(tree), organisation=seed.organisation,
                         telescope=seed.telescope_uuid))
    assert cli("run", "--min-age=0").code == 0
    logs = sandbox.objects("nightlogs")
    assert logs and all(n["organisation"] == seed.organisation for n in logs)
    assert all(n["telescope"] == seed.telescope_uuid for n in logs)
    assert len(sandbox.objects("datafiles")) == 13
    resource = [r for r in sandbox.requests if not r[1].startswith("/_sandbox")]
    assert resource and all(r[1].startswith(f"/{seed.organisation}/") for r in resource)


def test_changed_file_is_patched_and_new_file_reuses_objects(cli, logged_in, sandbox, tree):
    logged_in(tree)
    assert cli("run", "--min-age=0").code == 0
    counts = {k: len(sandbox.objects(k)) for k in ("nightlogs", "observations", "datasets")}
    target = tree / "NGC3603/Halpha/Mosaic2.fits"
    with open(target, "r+b") as handle:  # same header, different pixels
        handle.seek(-100, os.SEEK_END)
        handle.write(b"\x01" * 100)
    os.utime(target, (time.time() - 120, time.time() - 120))
    write_fits(tree / "NGC3603/Halpha/Mosaic4.fits",
               {"DATE-OBS": "2020-09-09T22:00:00", "OBJECT": "NGC 3603"})
    old = time.time() - 120
    os.utime(tree / "NGC3603/Halpha/Mosaic4.fits", (old, old))
    sandbox.clear_requests()
    result = cli("run", "--min-age=0", "-v")
    assert result.code == 0, result.err
    methods = sorted((m, p.rsplit("/", 2)[-2]) for m, p, _ in _posts(sandbox))
    assert methods == [("PATCH", "Mosaic2.fits"), ("POST", "datafiles")]
    assert {k: len(sandbox.objects(k)) for k in counts} == counts
    stored = {f["filename"]: f["size"] for f in sandbox.objects("datafiles")}
    assert stored["Mosaic4.fits"] == (tree / "NGC3603/Halpha/Mosaic4.fits").stat().st_size


def test_page_size_one_and_lost_manifest_create_nothing_twice(cli, home, tmp_path, tree):
    from helpers import configure

    from oort_lib.sandbox import Sandbox

    sandbox = Sandbox(tmp_path / "paged", page_size=1).start()
    configure(home, sandbox.url, sandbox.seed.upload_key, folders=[cfg.Folder(str(tree))])
    assert cli("run", "--min-age=0").code == 0
    before = {k: len(sandbox.objects(k)) for k in
              ("nightlogs", "observations", "calibrations", "datasets", "datafiles")}
    for path in home.state_dir.glob("manifest.sqlite*"):
        path.unlink()
    sandbox.clear_requests()
    result = cli("run", "--min-age=0")
    assert result.code == 0, result.err
    assert _posts(sandbox, "/") == []  # no create, no upload: all found by looking
    after = {k: len(sandbox.objects(k)) for k in before}
    assert after == before
    with mf.Manifest(home.manifest_file) as manifest:
        statuses = {r["status"] for r in manifest.rows(
            "SELECT status FROM files WHERE relpath LIKE '%.fits%' OR relpath LIKE '%.fit'")}
    assert statuses == {"uploaded", "skipped"}
    sandbox.stop()


def test_wrong_key_stops_before_any_upload(cli, home, logged_in, sandbox, tree):
    logged_in(tree, key="0" * 32)
    result = cli("run", "--min-age=0")
    assert result.code == 3
    assert "refused the key" in result.err and "login" in result.err
    assert _posts(sandbox) == [] and sandbox.objects("nightlogs") == []
    with mf.Manifest(home.manifest_file) as manifest:
        failed = manifest.rows("SELECT * FROM files WHERE status = 'failed'")
    assert failed == []  # the key is the problem, not the files


def test_guest_is_refused(cli, home, logged_in, sandbox, tree):
    seed = sandbox.seed
    logged_in(cfg.Folder(str(tree), organisation=seed.organisation,
                         telescope=seed.telescope_uuid), key=seed.guest_key)
    result = cli("run", "--min-age=0")
    assert result.code == 3 and "Permission refused" in result.err
    assert sandbox.objects("nightlogs") == [] and _posts(sandbox) == []


def test_watch_remote_checks(cli, home, logged_in, sandbox, tmp_path):
    from oort_lib import account
    from oort_lib.arcsecond.client import Client
    from oort_lib.state import credentials

    seed = sandbox.seed
    folder = tmp_path / "d"
    folder.mkdir()
    logged_in()
    client = Client(sandbox.url)
    creds = account.login_with_password(client, seed.username, seed.password)
    assert creds.key == seed.upload_key and creds.memberships[seed.organisation] == "admin"
    credentials.save(home.credentials_file, creds)

    unknown = cli("watch", folder, "-o", "nowhere", "-t", "x", "-y")
    assert unknown.code == 2 and "does not exist" in unknown.err
    no_telescope = cli("watch", folder, "-o", seed.organisation, "-y")
    assert no_telescope.code == 2 and seed.telescope_uuid in no_telescope.err
    assert seed.telescope_alias in no_telescope.err
    bad_telescope = cli("watch", folder, "-o", seed.organisation, "-t", "nope", "-y")
    assert bad_telescope.code == 2 and "not found" in bad_telescope.err
    not_member = cli("watch", folder, "-o", seed.other_organisation, "-t", "x", "-y")
    assert not_member.code == 3 and "not a member" in not_member.err
    good = cli("watch", folder, "-o", seed.organisation, "-t", seed.telescope_alias, "-y")
    assert good.code == 0, good.err
    assert "role: admin" in good.out
    saved = cfg.load_settings(home).folders[0]
    assert saved.telescope == seed.telescope_uuid  # the alias is resolved to the UUID

    guest = account.login_with_password(client, seed.guest_username, seed.password)
    credentials.save(home.credentials_file, guest)
    (tmp_path / "g").mkdir()
    refused = cli("watch", tmp_path / "g", "-o", seed.organisation, "-t", seed.telescope_alias,
                  "-y")
    assert refused.code == 3 and "guest" in refused.err


def test_key_never_leaks(cli, home, logged_in, sandbox, tree):
    key = sandbox.seed.upload_key
    logged_in(tree)
    outputs = [cli("run", "--min-age=0", "-v"), cli("status", "--json"), cli("status"),
               cli("logs"), cli("run", "--dry-run", "--json")]
    for result in outputs:
        assert key not in result.out and key not in result.err
    for path in home.state_dir.rglob("*"):
        if path.is_file():
            assert key.encode() not in path.read_bytes(), path
    (tree / "NGC3603/Halpha/Mosaic1.fits").unlink()
    logged_in(tree, key="f" * 32)
    bad = cli("run", "--min-age=0", "-v")
    assert "f" * 32 not in bad.err + bad.out


def test_login_with_key_on_stdin_2021(cli, home, tmp_path, monkeypatch):
    """A 2021 server accepts a key alone (checked by an authenticated read)."""
    import io

    from oort_lib.sandbox import Sandbox

    with Sandbox(tmp_path / "sb2021", dialect="2021") as sandbox:
        sandbox.start()
        _login_with_key_on_stdin(cli, home, sandbox, monkeypatch, io)


def _login_with_key_on_stdin(cli, home, sandbox, monkeypatch, io):
    monkeypatch.setattr("sys.stdin", io.StringIO(sandbox.seed.upload_key + "\n"))
    result = cli("login", f"--api={sandbox.url}", "--key-stdin")
    assert result.code == 0, result.err
    assert "API generation 2021" in result.out
    assert sandbox.seed.upload_key not in result.out
    assert cfg.load_settings(home).api == sandbox.url
    monkeypatch.setattr("sys.stdin", io.StringIO("0" * 32 + "\n"))
    refused = cli("login", f"--api={sandbox.url}", "--key-stdin")
    assert refused.code == 3
    assert cli("logout").out.strip() == "Logged out."


def test_plain_http_refused_off_loopback(cli, monkeypatch):
    import io

    monkeypatch.setattr("sys.stdin", io.StringIO("k\n"))
    result = cli("login", "--api=http://example.org", "--key-stdin")
    assert result.code == 2 and "plain http://" in result.err


def test_quick_check_opens_nothing_unchanged(cli, home, logged_in, sandbox, tree):
    from oort_lib.local.digest import file_hash
    from oort_lib.run import sync

    settings = logged_in(tree)
    first = sync.dry_run(home, settings, min_age=0)
    # New files: headers only; their hash is computed by the upload that streams them.
    assert first.bytes_read == 0 and first.files == 13
    assert cli("run", "--min-age=0").code == 0
    with mf.Manifest(home.manifest_file) as manifest:
        rows = manifest.rows("SELECT relpath, hash, uploaded_hash FROM files "
                             "WHERE status = 'uploaded'")
    assert len(rows) == 13
    for row in rows:
        assert row["hash"] == row["uploaded_hash"] == file_hash(str(tree / row["relpath"]))[0]
    again = sync.dry_run(home, settings, min_age=0)
    assert again.bytes_read == 0 and again.files == 0 and again.unchanged == 13
    # Same size and mtime: by design the quick check does not even open the file.
    target = tree / "NGC3603/Halpha/Mosaic1.fits"
    st = target.stat()
    data = bytearray(target.read_bytes())
    data[-1] ^= 0xFF
    target.write_bytes(bytes(data))
    os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert sync.dry_run(home, settings, min_age=0).bytes_read == 0
    os.utime(target, (time.time() - 100, time.time() - 100))  # now it looks changed
    from oort_lib.run.queue import Queue, Scratch

    with Scratch() as scratch:
        changed = sync.dry_run(home, settings, min_age=0, queue=Queue(scratch.manifest))
        (item,) = [item for _id, item in changed.queue.all_items()]
    assert item.relpath == "NGC3603/Halpha/Mosaic1.fits"
    assert item.replace and changed.bytes_read == st.st_size


def test_stale_cached_dataset_is_found_again(cli, home, logged_in, sandbox, tree):
    logged_in(tree)
    assert cli("run", "--min-age=0").code == 0
    before = {k: len(sandbox.objects(k)) for k in ("nightlogs", "observations", "datasets")}
    with mf.Manifest(home.manifest_file) as manifest:  # as if deleted on the server
        with manifest.transaction():
            manifest.conn.execute(
                "UPDATE remote SET uuid = 'gone-' || uuid WHERE kind = 'datasets'")
    write_fits(tree / "M42" / "m42_003.fits", {"DATE-OBS": "2020-10-02T23:00:00"})
    os.utime(tree / "M42" / "m42_003.fits", (time.time() - 100, time.time() - 100))
    result = cli("run", "--min-age=0")
    assert result.code == 0, result.err
    after = {k: len(sandbox.objects(k)) for k in before}
    assert after == before  # found again by listing, not created twice
    new = [f for f in sandbox.objects("datafiles") if f["filename"] == "m42_003.fits"]
    m42 = [d["uuid"] for d in sandbox.objects("datasets") if d["name"] == "M42"]
    assert [f["dataset"] for f in new] == m42
