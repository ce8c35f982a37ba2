"""Two different files never become one on the server, and "already there" is earned.

Files of two watched folders (or of one tree) that map to the same server name are
compared: the same content is on the server once; different contents are a *conflict*,
reported with both paths (stderr, `status`, the report) and exit code 1 at every run
until one is renamed. A 2021 server's `size` is compared before "already there" is
believed; a rebuilt manifest re-learns the server side honestly.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from fitsfiles import NIGHT, settle, write_frame
from helpers import configure, configure_for, sha

from oort_lib.samples import write_fits
from oort_lib.state import config as cfg
from oort_lib.state import manifest as mf


def fits(path: Path, size: int = 16, **header) -> Path:
    """A settled FITS file of `size` x `size` pixels: 16 and 20 give two contents of one
    length (2880-byte blocks), 48 another length."""
    return write_frame(path, dict(NIGHT, **header), shape=(size, size))


def held(sandbox) -> list[tuple[str, str, str]]:
    """(dataset name, filename, sha256) of every file on the server."""
    names = {d["uuid"]: d["name"] for d in sandbox.objects("datasets")}
    return sorted((names[f["dataset"]], f["filename"], f["sha256"])
                  for f in sandbox.objects("datafiles"))


def statuses(home) -> dict[str, str]:
    with mf.Manifest(home.manifest_file) as manifest:
        return {f"{r['root']}/{r['relpath']}": r["status"]
                for r in manifest.rows("SELECT root, relpath, status FROM files")}


@pytest.fixture(params=["2021", "2026"])
def generation(request):
    return request.param


def test_same_path_in_two_folders_is_a_conflict_never_already(cli, home, sandbox, tmp_path,
                                                              generation):
    a, b = tmp_path / "camera-a", tmp_path / "camera-b"
    first = fits(a / "M31" / "light_001.fits", 16)
    second = fits(b / "M31" / "light_001.fits", 20)  # same night, same name, other frame
    mine = fits(b / "M31" / "light_002.fits", 16)
    configure_for(home, sandbox, generation, a, b)
    for _ in range(2):  # at every run while it lasts
        result = cli("run")
        assert result.code == 1, result.err
        assert "1 conflict" in result.err and "already on the server" not in result.err
        assert f"{second}: conflict: {first} is another file with the same name" in result.err
    assert held(sandbox) == sorted([("M31", "light_001.fits", sha(first)),
                                    ("M31", "light_002.fits", sha(mine))])
    status = json.loads(cli("status", "--json").out)
    assert status["folders"][1]["counts"]["conflict"] == 1
    (conflict,) = status["folders"][1]["conflicts"]
    assert conflict["path"] == "M31/light_001.fits" and str(first) in conflict["reason"]
    text = cli("status").out
    assert f"conflict: {b}/M31/light_001.fits: conflict: {first}" in text
    report = tmp_path / "report.html"
    assert cli("report", f"--output={report}").code == 0
    page = report.read_text()
    assert "Conflicts" in page and str(second) in page and str(first) in page
    # Renamed: sent at the next run, and the conflict is over.
    renamed = second.with_name("light_001b.fits")
    second.rename(renamed)
    assert cli("run").code == 0
    assert held(sandbox) == sorted([("M31", "light_001.fits", sha(first)),
                                    ("M31", "light_001b.fits", sha(renamed)),
                                    ("M31", "light_002.fits", sha(mine))])
    assert "conflict" not in statuses(home).values()


def test_same_content_in_two_folders_is_on_the_server_once(cli, home, sandbox, tmp_path,
                                                           generation):
    a, b = tmp_path / "disk", tmp_path / "backup"
    original = fits(a / "M31" / "light_001.fits")
    (b / "M31").mkdir(parents=True)
    copy = Path(shutil.copy2(original, b / "M31" / "light_001.fits"))
    configure_for(home, sandbox, generation, a, b)
    assert cli("run").code == 0
    assert cli("run").code == 0  # the copy: "already there", its twin having been sent
    assert held(sandbox) == [("M31", "light_001.fits", sha(original))]
    assert set(statuses(home).values()) == {"uploaded"}
    with mf.Manifest(home.manifest_file) as manifest:
        reason = manifest.file(str(b), "M31/light_001.fits")["reason"]
    assert reason == f"already on the server (same content as {original})"
    assert sha(copy) == sha(original)


def test_folder_added_later_with_a_taken_name(cli, home, sandbox, tmp_path, generation):
    a, b = tmp_path / "a", tmp_path / "b"
    first = fits(a / "M31" / "light_001.fits", 16)
    configure_for(home, sandbox, generation, a)
    assert cli("run").code == 0
    later = fits(b / "M31" / "light_001.fits", 20)
    configure_for(home, sandbox, generation, a, b)
    result = cli("run")
    assert result.code == 1 and f"{later}: conflict: {first}" in result.err
    assert held(sandbox) == [("M31", "light_001.fits", sha(first))]


def test_names_that_meet_on_the_server_within_one_tree(cli, home, sandbox, tmp_path):
    """A Latin-1 `café` travels as `caf%E9`; a root file's dataset is `(folder NAME)`."""
    root = tmp_path / "data"
    latin1 = fits(Path(os.fsdecode(bytes(root / "M31") + b"/caf\xe9.fits")), 16)
    literal = fits(root / "M31" / "caf%E9.fits", 20)
    top = fits(root / "x.fits", 16)
    lookalike = fits(root / "(folder data)" / "x.fits", 20)
    configure_for(home, sandbox, "2021", root)
    result = cli("run")
    assert result.code == 1
    # The first in walk order is sent (a folder's own files before its subfolders'); the
    # other is the conflict, named with its key (odd bytes escaped, valid text).
    shown = f"{root}/M31/caf\\xe9.fits"
    assert f"{shown}: conflict: {literal} is another file" in result.err
    assert f"{lookalike}: conflict: {top} is another file" in result.err
    assert held(sandbox) == sorted([("(folder data)", "x.fits", sha(top)),
                                    ("M31", "caf%E9.fits", sha(literal))])
    assert {r for r, s in statuses(home).items() if s == "conflict"} == {
        shown, f"{root}/(folder data)/x.fits"}
    assert latin1.exists()


def test_server_holds_another_file_of_that_name(cli, home, sandbox, tmp_path):
    """2021: the server's `size` says whether a file this destination never sent is this
    one (same size: already there, not verified) or another (a conflict)."""
    other_home = cfg.resolve_paths(str(tmp_path / "other-installation"))
    theirs = tmp_path / "theirs"
    fits(theirs / "M31" / "light_001.fits", 48)
    twin = fits(theirs / "M31" / "light_002.fits", 16)
    configure(other_home, sandbox.url, sandbox.seed.upload_key,
              folders=[cfg.Folder(str(theirs))])
    assert cli("run", "--home", str(tmp_path / "other-installation")).code == 0
    ours = tmp_path / "ours"
    mine = fits(ours / "M31" / "light_001.fits", 16)
    (ours / "M31" / "light_002.fits").write_bytes(twin.read_bytes())
    settle(ours / "M31" / "light_002.fits")
    configure_for(home, sandbox, "2021", ours)
    result = cli("run")
    assert result.code == 1, result.err
    assert (f"{mine}: conflict: the server already holds another file named light_001.fits"
            in result.err)
    with mf.Manifest(home.manifest_file) as manifest:
        same = manifest.file(str(ours), "M31/light_002.fits")
    assert same["status"] == "uploaded"
    assert same["reason"] == "already on the server (same name and size; content not verified)"
    assert "not verified" in cli("status").out
    assert len(sandbox.objects("datafiles")) == 2  # nothing overwritten, nothing doubled


@pytest.mark.parametrize("generation", ["2021", "2026"])
def test_rebuilt_manifest_relearns_the_server_honestly(cli, home, sandbox, tmp_path,
                                                       generation, monkeypatch):
    from datetime import datetime, timedelta, timezone

    from oort_lib.sandbox import store

    root = tmp_path / "data"
    grown = fits(root / "M31" / "light_001.fits", 16)
    same = fits(root / "M31" / "light_002.fits", 16)  # settled: an hour ago
    edited = fits(root / "M31" / "light_003.fits", 16)
    configure_for(home, sandbox, generation, root)
    with monkeypatch.context() as patch:
        if generation == "2021":
            # The server's copies are written half an hour ago by its clock: after the
            # files' mtimes, before the edit below (by more than the clock slack).
            earlier = datetime.now(timezone.utc) - timedelta(minutes=30)
            patch.setattr(store, "now", lambda: earlier.isoformat().replace("+00:00", "Z"))
        assert cli("run").code == 0
    home.manifest_file.write_bytes(b"this is not a database" * 100)  # damaged
    fits(grown, 48)  # changed meanwhile: another size
    write_fits(edited, dict(NIGHT), shape=(20, 20))  # changed meanwhile: the same size
    assert cli("run").code == 2
    rebuilt = cli("run", "--rebuild-manifest", "--min-age=0")
    assert rebuilt.code == 0, rebuilt.err
    with mf.Manifest(home.manifest_file) as manifest:
        rows = {r["relpath"]: r for r in manifest.rows("SELECT * FROM files")}
    if generation == "2021":
        # Re-checked: another size, or a file modified after the server's copy was
        # written, is that copy's newer version: replaced. The rest is already there.
        assert held(sandbox) == sorted([("M31", p.name, sha(p)) for p in (grown, same,
                                                                          edited)])
        assert rows["M31/light_001.fits"]["reason"] == "replaced"
        assert rows["M31/light_003.fits"]["reason"] == "replaced"
        assert "not verified" in rows["M31/light_002.fits"]["reason"]
    else:
        # Cannot be compared (no checksum, no replacement): reported, never silent.
        for name in ("light_001.fits", "light_002.fits", "light_003.fits"):
            assert rows[f"M31/{name}"]["reason"] == "already on the server (not verified)"
        status = cli("status").out
        assert "already on the server (not verified) (3 files)" in status
    assert len(sandbox.objects("datafiles")) == 3


def test_plan_keys_of_odd_names_never_collide(home, tmp_path):
    """The byte 0xE9 and the four characters `\\xe9` are two files, two manifest rows."""
    from helpers import planned

    root = tmp_path / "data"
    byte = fits(Path(os.fsdecode(bytes(root) + b"/M31/caf\xe9.fits")))
    text = fits(root / "M31" / "caf\\xe9.fits")
    with mf.Manifest(home.manifest_file) as manifest:
        plan = planned([cfg.Folder(str(root))], manifest, min_age=0)
    keys = sorted(i.relpath for i in plan.items)
    assert keys == ["M31/caf\\\\xe9.fits", "M31/caf\\xe9.fits"]
    assert {i.path for i in plan.items} == {str(byte), str(text)}
    assert {i.filename for i in plan.items} == {"caf%E9.fits", "caf\\xe9.fits"}


def test_slots_whose_hashes_meet_are_told_apart(cli, home, sandbox, tmp_path, monkeypatch):
    """SQLite groups the files by a hash of their slot, then the files of the hashes met
    twice are grouped by their real slots: here every slot hashes alike, and still only
    the two files of one name and night are a conflict, the third file goes up."""
    monkeypatch.setattr("oort_lib.run.conflicts.slot_hash", lambda slot: 7)
    a, b = tmp_path / "camera-a", tmp_path / "camera-b"
    first = fits(a / "M31" / "light_001.fits", 16)
    fits(b / "M31" / "light_001.fits", 20)
    other = fits(b / "M31" / "light_002.fits", 20)
    configure_for(home, sandbox, "2026", a, b)
    result = cli("run")
    assert result.code == 1 and "1 conflict" in result.err, result.err
    assert held(sandbox) == sorted([("M31", "light_001.fits", sha(first)),
                                    ("M31", "light_002.fits", sha(other))])
