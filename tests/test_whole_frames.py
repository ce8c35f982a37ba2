"""Only whole frames leave (issue 18): partial files of every kind, in both generations,
against a real sandbox over HTTP. None reaches the server; each waits (still arriving?)
then is a problem, said by the run, `status`, the report and `explain`; the whole file,
copied over it later, is sent once with its exact bytes."""

from __future__ import annotations

import json
import shutil

import pytest
from fitsfiles import settle as age
from helpers import configure_for, sha
from helpers import server_copies as held
from partial import DAMAGED_KINDS, KINDS, WHEN, partial_files

from oort_lib.state import manifest as mf


def rows(home) -> dict[str, dict]:
    with mf.Manifest(home.manifest_file) as manifest:
        return {r["relpath"]: r for r in manifest.rows("SELECT * FROM files")}


@pytest.mark.parametrize("generation", ["2021", "2026"])
def test_partial_files_never_reach_the_server_and_whole_ones_do_once(
        cli, home, sandbox, tmp_path, generation):
    files = partial_files(tmp_path / "made", WHEN)
    assert set(files) == set(KINDS)
    watched = tmp_path / "night"
    for kind, (_whole, partial) in files.items():
        target = watched / kind / partial.name
        target.parent.mkdir(parents=True)
        shutil.copyfile(partial, target)
        age(target)
    configure_for(home, sandbox, generation, watched)

    first = cli("run")
    assert held(sandbox) == {}, "a partial file reached the server"
    damaged = {kind for kind in KINDS if kind in DAMAGED_KINDS}
    # A damaged file (a flipped bit under DATASUM) is found as it streams: a problem at
    # once. The others end early and wait (modified within partial_wait).
    assert first.code == (1 if damaged else 0), first.err
    known = rows(home)
    for kind, (_whole, partial) in files.items():
        row = known[f"{kind}/{partial.name}"]
        if kind in DAMAGED_KINDS:
            assert row["status"] == mf.FAILED and not row["transient"], (kind, row)
            assert "DATASUM" in row["reason"] or "CHECKSUM" in row["reason"], row
        else:
            assert row["status"] == mf.DEFERRED, (kind, row)
            assert row["reason"].startswith("not whole yet: "), (kind, row)
    assert "not whole yet: ends " in known[f"data-half/{files['data-half'][1].name}"]["reason"]

    # explain says why, from the file itself.
    half = watched / "data-half" / files["data-half"][1].name
    explained = cli("explain", half)
    assert explained.code == 0, explained.err
    assert "whole:       no, ends " in explained.out and "bytes short" in explained.out
    assert held(sandbox) == {}

    # Copied again, whole: the next run sends each once, with its exact bytes.
    for kind, (whole, partial) in files.items():
        shutil.copyfile(whole, watched / kind / partial.name)
        age(watched / kind / partial.name, seconds=600)
    done = cli("run")
    assert done.code == 0, done.err
    server = held(sandbox)
    assert sorted(server) == sorted(p.name for _w, p in files.values())
    for kind, (_whole, partial) in files.items():
        assert server[partial.name] == [sha(watched / kind / partial.name)], kind
    assert cli("run").code == 0 and held(sandbox) == server  # nothing sent twice


def test_partial_becomes_a_problem_after_partial_wait(cli, home, sandbox, tmp_path):
    """Deferred while it may be arriving; a problem once unchanged for partial_wait:
    exit 1 once (cron mails it), listed by status and the report, never sent."""
    files = partial_files(tmp_path / "made", WHEN)
    watched = tmp_path / "night"
    whole, partial = files["data-half"]
    target = watched / "M51" / partial.name
    target.parent.mkdir(parents=True)
    shutil.copyfile(partial, target)
    age(target, seconds=7200)  # two hours since its last change
    configure_for(home, sandbox, "2021", watched, partial_wait=3600)

    first = cli("run")
    assert first.code == 1
    assert "1 file not whole" in first.err and "bytes short of its header's" in first.err
    assert held(sandbox) == {}
    row = rows(home)[f"M51/{partial.name}"]
    assert row["status"] == mf.FAILED and row["transient"] == 0
    assert row["reason"].startswith("not a whole file: ends ")
    status = json.loads(cli("status", "--json").out)
    reasons = [r["reason"] for f in status["folders"] for r in f["reasons"]]
    assert row["reason"] in reasons
    report = tmp_path / "report.html"
    assert cli("report", f"--output={report}").code == 0
    assert "not a whole file" in report.read_text()

    again = cli("run")
    assert (again.code, again.err) == (0, "")  # said once, then quiet like other failures
    assert held(sandbox) == {}

    shutil.copyfile(whole, target)  # copied again, whole
    age(target, seconds=120)
    assert cli("run").code == 0
    assert held(sandbox) == {partial.name: [sha(target)]}


def test_dry_run_lists_incomplete_files_with_their_reason(cli, home, sandbox, tmp_path):
    files = partial_files(tmp_path / "made", WHEN)
    watched = tmp_path / "night"
    _whole, partial = files["header-only"]
    target = watched / "M51" / partial.name
    target.parent.mkdir(parents=True)
    shutil.copyfile(partial, target)
    age(target)
    configure_for(home, sandbox, "2021", watched)
    plan = json.loads(cli("run", "--dry-run", "--json").out)
    assert plan["totals"]["files"] == 0 and plan["totals"]["incomplete"] == 1
    (entry,) = plan["incomplete"]
    assert entry["path"] == f"M51/{partial.name}"
    assert entry["reason"].startswith("not whole yet: ")
    text = cli("run", "--dry-run").out
    assert "Not whole yet" in text and partial.name in text
