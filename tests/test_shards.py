"""Scaling out (issue 24, part 4): an archive split by folder into shards, each its own
oort-sync home, run at once against one server, uploads every file exactly once; and the
Slurm recipe that runs them (contrib/slurm/oort-sync-shards.sh) picks each shard's folders
and home, refuses a folder in two shards, and submits only the shards not queued.

The recipe is run by bash for real; Slurm's commands (sbatch, squeue) and, where the
point is the recipe alone, oort-sync itself are small stand-in scripts that record how
they were called."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from fitsfiles import write_tree
from helpers import ROOT, need_tool, sha

from oort_lib.state import config as cfg
from oort_lib.state import manifest as mf

RECIPE = ROOT / "contrib" / "slurm" / "oort-sync-shards.sh"
OORT_SYNC = f"{shlex.quote(sys.executable)} {shlex.quote(str(ROOT / 'oort_sync.py'))}"


def recipe(*args: str, env: dict[str, str], stdin: str | None = None,
           timeout: float = 300) -> subprocess.CompletedProcess:
    """The recipe run by bash with `env` added to this process's environment."""
    bash = need_tool("bash")
    return subprocess.run([bash, str(RECIPE), *args], env={**os.environ, **env},
                          input=stdin, capture_output=True, text=True, timeout=timeout)


def shards_file(path: Path, lines: list[str]) -> Path:
    path.write_text("# shard  folder\n" + "\n".join(lines) + "\n", encoding="utf-8")
    return path


def stand_in(folder: Path, name: str, body: str) -> Path:
    """An executable script `name` in `folder` (a stand-in for sbatch, squeue, oort-sync)."""
    folder.mkdir(parents=True, exist_ok=True)
    script = folder / name
    script.write_text(f"#!/bin/sh\n{body}\n", encoding="utf-8")
    script.chmod(0o755)
    return script


# --- the recipe alone ----------------------------------------------------------------------


@pytest.fixture
def shards(tmp_path) -> dict[str, str]:
    """A shards file of three shards (shard 1 with a space in its folder's name) and the
    recipe's environment for it."""
    for name in ("2019", "2020", "night 2021", "2022"):
        (tmp_path / "archive" / name).mkdir(parents=True)
    archive = tmp_path / "archive"
    conf = shards_file(tmp_path / "shards.conf", [
        f"0 {archive / '2019'}", f"2   {archive / '2022'}/", "", f"0 {archive / '2020'}",
        f"1 {archive / 'night 2021'}"])
    return {"OORT_SHARDS_FILE": str(conf), "OORT_SHARDS_HOME": str(tmp_path / "homes")}


def test_show_gives_each_shard_its_folders_and_its_own_home(shards, tmp_path):
    shown = recipe("show", env=shards)
    assert shown.returncode == 0, shown.stderr
    archive, homes = tmp_path / "archive", tmp_path / "homes"
    assert shown.stdout.splitlines() == [
        f"shard 0: OORT_SYNC_HOME={homes}/shard-0 oort-sync run -q {archive}/2019 "
        f"{archive}/2020",
        f"shard 1: OORT_SYNC_HOME={homes}/shard-1 oort-sync run -q {archive}/night\\ 2021",
        f"shard 2: OORT_SYNC_HOME={homes}/shard-2 oort-sync run -q {archive}/2022",
    ]
    one = recipe("show", "1", env=shards)
    assert one.returncode == 0 and one.stdout.startswith("shard 1: ") and \
        len(one.stdout.splitlines()) == 1
    assert "shards 0 1 2" in recipe("check", env=shards).stdout


@pytest.mark.parametrize("line, said", [
    ("3 {archive}/2019", "is the same folder as"),
    ("3 {archive}/2019/", "is the same folder as"),
    ("0 {archive}/2019", "is the same folder as"),  # twice in one shard: a typo
    ("3 {archive}", "is inside"),
    ("3 {archive}/2020/M31", "is inside"),
    ("3 {link}", "is the same folder as"),  # a symlink to shard 2's folder
    ("3 archive/2023", "is not an absolute folder"),
    ("x {archive}/2023", "is not a shard number"),
])
def test_a_folder_in_two_shards_is_refused_with_its_lines(shards, tmp_path, line, said):
    (tmp_path / "link").symlink_to(tmp_path / "archive" / "2022")
    conf = Path(shards["OORT_SHARDS_FILE"])
    with conf.open("a", encoding="utf-8") as out:
        out.write(line.format(archive=tmp_path / "archive", link=tmp_path / "link") + "\n")
    for args in (("check",), ("show",), ("run", "0")):
        refused = recipe(*args, env=shards)
        assert refused.returncode == 2, (args, refused.stdout)
        assert said in refused.stderr and str(conf) in refused.stderr, refused.stderr
        if "same" in said or "inside" in said:
            assert "line 7" in refused.stderr, refused.stderr  # the added line is named


def test_the_array_task_runs_its_shard_in_its_home_and_75_is_no_failure(shards, tmp_path):
    calls = tmp_path / "calls"
    fake = stand_in(tmp_path / "bin", "oort-sync",
                    f'printf "%s|%s\\n" "$OORT_SYNC_HOME" "$*" >> {calls}\nexit "$FAKE_EXIT"')
    for code, expected in ((0, 0), (1, 1), (3, 3), (75, 0)):
        done = recipe(env={**shards, "OORT_SYNC": str(fake), "SLURM_ARRAY_TASK_ID": "2",
                           "FAKE_EXIT": str(code)})
        assert done.returncode == expected, (code, done.stderr)
    archive = tmp_path / "archive"
    assert calls.read_text().splitlines() == \
        [f"{tmp_path}/homes/shard-2|run -q {archive}/2022"] * 4
    mine = recipe(env={**shards, "OORT_SYNC": str(fake), "SLURM_ARRAY_TASK_ID": "0",
                       "FAKE_EXIT": "0", "OORT_SYNC_RUN_OPTIONS": "-q --jobs=8"})
    assert mine.returncode == 0
    assert calls.read_text().splitlines()[-1] == \
        f"{tmp_path}/homes/shard-0|run -q --jobs=8 {archive}/2019 {archive}/2020"
    empty = recipe(env={**shards, "OORT_SYNC": str(fake), "SLURM_ARRAY_TASK_ID": "7"})
    assert empty.returncode == 2 and "shard 7 has no folder" in empty.stderr
    outside = recipe(env={**shards, "OORT_SYNC": str(fake)})
    assert outside.returncode == 2 and "not a Slurm array task" in outside.stderr


def test_submit_sends_only_the_shards_not_queued(shards, tmp_path):
    bin_dir, calls = tmp_path / "bin", tmp_path / "sbatch-calls"
    stand_in(bin_dir, "sbatch", f'echo "$*" >> {calls}\necho "Submitted batch job 42"')
    stand_in(bin_dir, "squeue", 'printf "%s" "$QUEUED"')
    env = {**shards, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}
    done = recipe("submit", env={**env, "QUEUED": "0\n0\n2\n"})  # shard 0 running, 2 pending
    assert done.returncode == 0, done.stderr
    assert calls.read_text().splitlines() == \
        [f"--job-name=oort-sync-shards --array=1 {RECIPE}"]
    calls.unlink()
    done = recipe("submit", env={**env, "QUEUED": ""})
    assert calls.read_text().splitlines() == \
        [f"--job-name=oort-sync-shards --array=0,1,2 {RECIPE}"]
    calls.unlink()
    busy = recipe("submit", env={**env, "QUEUED": "2\n1\n0\n"})
    assert busy.returncode == 0 and "nothing submitted" in busy.stdout
    assert not calls.exists()


# --- two shards at once against one server ------------------------------------------------

# One archive, a folder per year, each year's nights inside (so a dataset is named
# "2021-03-10/M31": no two shards ever fill one dataset). Shard 0 has 2021 and 2023,
# shard 1 has 2022 and 2024; every night has frames named as the others' (a capture
# program numbers each night's frames from 1).
YEARS = {"2021": 0, "2022": 1, "2023": 0, "2024": 1}


def archive(root: Path) -> list[Path]:
    files = {}
    for year in YEARS:
        for night, hour in (("03-10", 21), ("09-20", 22)):
            for target in ("M31", "Flats"):
                for frame in (1, 2):
                    files[f"{year}/{year}-{night}/{target}/frame_{frame:03d}.fits"] = {
                        "DATE-OBS": f"{year}-{night}T{hour}:{frame:02d}:00", "OBJECT": target}
    return write_tree(root, files, shape=(8, 8))


def test_two_shards_at_once_upload_every_file_exactly_once(server, tmp_path, monkeypatch):
    generation = server.dialect
    root = tmp_path / "archive"
    files = archive(root)
    conf = shards_file(tmp_path / "shards.conf",
                       [f"{shard} {root / year}" for year, shard in YEARS.items()])
    env = {"OORT_SHARDS_FILE": str(conf), "OORT_SHARDS_HOME": str(tmp_path / "homes"),
           "OORT_SYNC": OORT_SYNC}
    # The recipe's own lock folder (shared by the shards), not the tests' one.
    monkeypatch.delenv("OORT_SYNC_LOCK_DIR", raising=False)

    telescope = f"-t {server.seed.personal_telescope_uuid}" if generation == "2026" else ""
    setup = recipe("setup", stdin=server.seed.upload_key + "\n", env={
        **env, "OORT_SYNC_USERNAME": server.seed.username,
        "OORT_SYNC_LOGIN_OPTIONS": f"--api={server.url}", "OORT_SYNC_WATCH_OPTIONS": telescope})
    assert setup.returncode == 0, setup.stderr
    assert server.seed.upload_key not in setup.stdout + setup.stderr

    # Each shard uploads with one worker; the sandbox holds the first two uploads until
    # both have arrived, so the second is the other shard's: the runs overlap for sure.
    held = server.trap("hold", "POST", "/datafiles/$", times=2)
    runs = [subprocess.Popen(["bash", str(RECIPE), "run", str(shard)],
                             env={**os.environ, **env,
                                  "OORT_SYNC_RUN_OPTIONS": "-q --jobs=1 --min-age=0"},
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for shard in (0, 1)]
    try:
        deadline = time.monotonic() + 120
        while held.hits < 2 and time.monotonic() < deadline and \
                all(run.poll() is None for run in runs):
            time.sleep(0.05)
        assert held.hits == 2, [run.communicate() for run in runs if run.poll() is not None]
    finally:
        held.release()
    outputs = [run.communicate(timeout=300) for run in runs]
    assert [run.returncode for run in runs] == [0, 0], outputs

    # The folder locks were taken in the recipe's lock folder, seen by every node.
    assert len(list((tmp_path / "homes" / "locks").iterdir())) == len(YEARS)
    # Every file on the server once, as it is here; nothing else there.
    stored = Counter(f["sha256"] for f in server.datafiles())
    assert stored == Counter(sha(path) for path in files)
    # Each shard's manifest holds its own folders' files, all uploaded, and no other.
    for shard in (0, 1):
        paths = cfg.resolve_paths(str(tmp_path / "homes" / f"shard-{shard}"))
        assert [f.path for f in cfg.load_settings(paths).folders] == \
            [str(root / year) for year, owner in YEARS.items() if owner == shard]
        with mf.Manifest(paths.manifest_file) as manifest:
            rows = manifest.rows("SELECT root, relpath, status FROM files")
        mine = {str(p.relative_to(root)) for p in files if YEARS[p.relative_to(root).parts[0]]
                == shard}
        assert {f"{Path(r['root']).name}/{r['relpath']}" for r in rows} == mine
        assert {r["status"] for r in rows} == {mf.UPLOADED}
