"""oort-sync benchmarks, each measured side by side with the tool a user would otherwise use.

Run by hand (`make bench`, or `python bench/bench.py [NAME...] [--quick]`). Every figure is a
median of several runs in this same process, on this machine, and is printed with the
ratio against its peer. No test asserts on time: these numbers are for people.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
OORT = str(BIN / "oort-sync")
sys.path.insert(0, str(ROOT))

from oort_lib.samples import make_bulk_tree, write_fits  # noqa: E402
from oort_lib.state import config as cfg  # noqa: E402
from oort_lib.state import credentials  # noqa: E402

WORK = Path(os.environ.get("OORT_BENCH_DIR", ROOT / ".bench"))
RESULTS: list[dict] = []


def timed(cmd: list[str] | str, *, env=None, shell=False) -> tuple[float, int]:
    """(wall seconds, peak RSS in kB) of one command, from wait4's rusage."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, shell=shell, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - start
    code = os.waitstatus_to_exitcode(status)
    if code not in (0,):
        err = proc.stderr.read().decode(errors="replace")[-2000:]
        raise SystemExit(f"command failed ({code}): {cmd}\n{err}")
    return elapsed, usage.ru_maxrss


# Linux keeps a process's peak RSS across exec: a child forked from this (large) process
# would report this process's size. A small launcher forks the command instead.
_LAUNCHER = ("import os, subprocess, sys\n"
             "child = subprocess.Popen(sys.argv[2:], stdout=subprocess.DEVNULL)\n"
             "_, status, usage = os.wait4(child.pid, 0)\n"
             "open(sys.argv[1], 'w').write(str(usage.ru_maxrss))\n"
             "sys.exit(os.waitstatus_to_exitcode(status))\n")


def peak_rss(cmd: list[str], *, env=None) -> int:
    """Peak RSS in kB of one command, measured by a small launcher process."""
    out = WORK / "peak-rss.txt"
    WORK.mkdir(exist_ok=True)
    done = subprocess.run([sys.executable, "-c", _LAUNCHER, str(out), *cmd], env=env,
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    if done.returncode != 0:
        raise SystemExit(f"command failed ({done.returncode}): {cmd}\n"
                         + done.stderr.decode(errors="replace")[-2000:])
    return int(out.read_text())


def median_time(cmd, runs: int, *, env=None, shell=False, before=None) -> float:
    times = []
    for _ in range(runs):
        if before:
            before()
        times.append(timed(cmd, env=env, shell=shell)[0])
    return statistics.median(times)


def version(cmd: list[str]) -> str:
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, check=False).stdout
    except FileNotFoundError:
        return "missing"
    return out.strip().splitlines()[0] if out.strip() else "?"


def report(name: str, ours: float, peer_name: str, peer: float, unit="s", target=""):
    ratio = ours / peer if peer else float("inf")
    RESULTS.append({"bench": name, "oort-sync": ours, "peer": peer_name, "peer_value": peer,
                    "ratio": round(ratio, 3), "unit": unit, "target": target})
    print(f"  {name}: oort-sync {ours:.3f} {unit}, {peer_name} {peer:.3f} {unit}, "
          f"ratio {ratio:.2f}x  {target}", flush=True)


class Sandbox:
    """The sandbox as a separate process, as a user would run it."""

    def __init__(self, data: Path, dialect: str = "both"):
        self.data = data
        shutil.rmtree(data, ignore_errors=True)  # a fresh server, whatever a crash left
        self.proc = subprocess.Popen([OORT, "sandbox", "--port=0", f"--data={data}",
                                      f"--dialect={dialect}"],
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        lines = []
        while True:
            line = self.proc.stdout.readline()
            if not line:
                raise SystemExit("sandbox did not start:\n" + "".join(lines))
            lines.append(line)
            match = re.match(r"Sandbox serving (\S+)/ ", line)
            if match:
                self.url = match.group(1)
            key = re.match(r"(?i)upload key: *(\S+)", line)
            if key:
                self.key = key.group(1)
                break

    def stop(self):
        self.proc.terminate()
        self.proc.wait(10)

    def admin(self, method: str, path: str, body: dict | None = None):
        import requests

        headers = {"X-Arcsecond-API-Authorization": f"Key {self.key}"}
        answer = requests.request(method, f"{self.url}/_sandbox/{path}/", json=body,
                                  headers=headers, timeout=30)
        answer.raise_for_status()
        return answer.json()


PERSONAL_TELESCOPE = "7e1e5c0e-5a4d-4b0c-8000-000000000002"  # the sandbox's seeded one


def home_for(name: str, api: str, key: str, folder: Path, generation: str = "2021",
             **settings) -> dict:
    """An installation logged in to `api` in `generation` (as login would leave it),
    watching `folder` (with the sandbox's personal telescope in 2026)."""
    home = WORK / "homes" / name
    shutil.rmtree(home, ignore_errors=True)
    paths = cfg.resolve_paths(str(home))
    telescope = PERSONAL_TELESCOPE if generation == "2026" else None
    cfg.save_settings(paths, cfg.Settings(
        api=api, folders=(cfg.Folder(str(folder), telescope=telescope),), **settings))
    credentials.save(paths.credentials_file, credentials.Credentials(
        key=key, api=api, username="astro", generation=generation))
    return dict(os.environ, OORT_SYNC_HOME=str(home))


def make_dataset(url: str, key: str, name: str) -> str:
    """A fresh dataset for the curl side (same chain oort-sync builds)."""
    import requests

    headers = {"X-Arcsecond-API-Authorization": f"Key {key}"}
    post = lambda path, body: requests.post(url + path, json=body, headers=headers,  # noqa: E731
                                            timeout=30).json()["uuid"]
    night = post("/nightlogs/", {"date": "2021-01-01"})
    obs = post("/observations/", {"night_log": night, "name": name, "target_name": name})
    return post("/datasets/", {"name": name, "observation": obs})


def bench_nothing_to_do(counts=(20_000, 100_000), runs=5):
    print("1. Nothing to do (a cron tick over an already uploaded tree)", flush=True)
    figures = {}
    for count in counts:
        tree = WORK / f"tree{count}"
        if not (tree / ".complete").exists():
            shutil.rmtree(tree, ignore_errors=True)
            make_bulk_tree(tree / "data", count)
            (tree / ".complete").touch()
        data = tree / "data"
        mirror = tree / "mirror"
        if not mirror.exists():
            shutil.copytree(data, mirror, copy_function=os.link)
        sandbox = Sandbox(WORK / f"sandbox-nothing-{count}")
        env = home_for(f"nothing{count}", sandbox.url, sandbox.key, data, min_age=0)
        started = time.perf_counter()  # minutes: the launcher's 50 ms do not count
        first_rss = peak_rss([OORT, "run", "--min-age=0", "--jobs=8"], env=env)
        upload = time.perf_counter() - started
        sandbox.stop()  # the no-change run must not need the server at all
        print(f"  first upload of {count} files: {upload:.1f} s, peak RSS "
              f"{first_rss / 1024:.1f} MB (target < 150 MB)", flush=True)
        RESULTS.append({"bench": f"peak RSS first upload {count}",
                        "MB": round(first_rss / 1024, 1)})
        ours = median_time([OORT, "run"], runs, env=env)
        rss = peak_rss([OORT, "run"], env=env)
        rclone = median_time(["rclone", "copy", "--dry-run", "-q", str(data), str(mirror)], runs)
        rsync = median_time(["rsync", "-a", "--dry-run", f"{data}/", f"{mirror}/"], runs)
        report(f"nothing to do, {count} files", ours, "rclone copy --dry-run", rclone,
               target="(target <= 1.0x)" if count == 20_000 else "")
        report(f"nothing to do, {count} files", ours, "rsync -a --dry-run", rsync,
               target="(target <= 2.0x)" if count == 20_000 else "")
        print(f"  peak RSS, no-change run over {count} files: {rss / 1024:.1f} MB", flush=True)
        RESULTS.append({"bench": f"peak RSS nothing to do {count}", "MB": round(rss / 1024, 1)})
        figures[count] = ours
    if len(figures) == 2:
        small, big = sorted(figures)
        growth = figures[big] / figures[small]
        print(f"  growth {big}/{small}: {growth:.2f}x (target <= 5.5x)", flush=True)
        RESULTS.append({"bench": "growth", "ratio": round(growth, 2), "target": "<= 5.5x"})


def bench_planning(count=2000, runs=5):
    """Planning a tree against b2sum, the floor of reading every file once.

    Two cases: a fresh tree (new files: headers only, their hash comes with the upload)
    and the same tree after an upload with every file touched (each must be hashed to
    tell a change from a touch).
    """
    print(f"2. Planning {count} files of mixed sizes (.fits, .fits.gz, .fz)", flush=True)
    tree = WORK / f"plan{count}"
    if not (tree / ".complete").exists():
        shutil.rmtree(tree, ignore_errors=True)
        make_bulk_tree(tree / "data", count, size_bytes=256_000, mix=True)
        (tree / ".complete").touch()
    data = tree / "data"
    files = [str(p) for p in data.rglob("*") if p.is_file()]
    listing = WORK / "plan-files.txt"
    listing.write_text("\0".join(files))
    total = sum(os.path.getsize(f) for f in files)
    print(f"  ({len(files)} files, {total / 1e6:.0f} MB)", flush=True)
    b2 = median_time(f"xargs -0 b2sum < {listing} > /dev/null", runs, shell=True)
    env = home_for("planning", "http://127.0.0.1:9", "0" * 32, data, min_age=0)
    ours = median_time([OORT, "run", "--dry-run", "--min-age=0"], runs, env=env)
    report(f"plan {count} new files", ours, "b2sum", b2, target="(target <= 1.5x)")
    sandbox = Sandbox(WORK / "sandbox-planning")
    env = home_for("planning-changed", sandbox.url, sandbox.key, data, min_age=0)
    timed([OORT, "run", "--min-age=0", "--jobs=8"], env=env)
    sandbox.stop()
    shutil.rmtree(WORK / "sandbox-planning", ignore_errors=True)
    later = time.time()
    for path in files:
        os.utime(path, (later, later))  # touched, not changed: each must be hashed
    ours = median_time([OORT, "run", "--dry-run", "--min-age=0"], runs, env=env)
    report(f"plan {count} touched files", ours, "b2sum", b2, target="(target <= 1.5x)")


def bench_whole(counts=(20_000, 100_000), runs=5):
    """A first plan over new files with the whole-frame check (wholeness.check) against
    the same plan without it, side by side: each run a fresh process, the two
    alternated, the page cache warm for both (issue 18: at most 1.10x)."""
    print("8. Whole-frame check: a first plan over new files, with and without it",
          flush=True)
    for count in counts:
        tree = WORK / f"tree{count}"
        if not (tree / ".complete").exists():
            shutil.rmtree(tree, ignore_errors=True)
            make_bulk_tree(tree / "data", count)
            (tree / ".complete").touch()
        state = WORK / f"whole-manifest-{count}.sqlite"
        timings: dict[str, list[float]] = {"with": [], "without": []}
        for _ in range(runs):
            for variant in timings:
                out = subprocess.run([sys.executable, __file__, "--plan-once",
                                      str(tree / "data"), str(state), variant],
                                     check=True, capture_output=True, text=True).stdout
                timings[variant].append(float(out.split()[0]))
        with_check = statistics.median(timings["with"])
        without = statistics.median(timings["without"])
        report(f"first plan of {count} new files", with_check, "the same without the "
               "whole-frame check", without, target="(target <= 1.10x)")


def _plan_once(data: str, state: str, variant: str) -> None:
    """One first plan of `data` (a fresh manifest), timed in this process; prints seconds
    and the number of files planned. `without` replaces the check by a no-op."""
    from oort_lib.local import wholeness
    from oort_lib.run.plan import make_plan
    from oort_lib.state import manifest as mf

    if variant == "without":
        wholeness.check = lambda path, size=None, **_: None  # read_whole calls it by name
    Path(state).unlink(missing_ok=True)
    with mf.Manifest(Path(state)) as manifest:
        started = time.perf_counter()
        plan = make_plan([cfg.Folder(data)], manifest, min_age=0, keep_items=False)
        elapsed = time.perf_counter() - started
    print(f"{elapsed:.4f} {plan.files}")


def bench_upload(name: str, count: int, size: int, runs: int, curl_loop: bool):
    tree = WORK / f"upload-{name}"
    if not (tree / ".complete").exists():
        shutil.rmtree(tree, ignore_errors=True)
        folder = tree / "data" / "target"
        folder.mkdir(parents=True)
        for index in range(count):
            path = write_fits(folder / f"f{index:05d}.fits",
                              {"DATE-OBS": "2021-01-01T22:00:00", "OBJECT": "T"})
            with open(path, "r+b") as handle:
                handle.truncate(size)  # a bigger data part; the header stays valid
                handle.seek(size - 1)
                handle.write(b"\x01")
        (tree / ".complete").touch()
    files = sorted(str(p) for p in (tree / "data" / "target").iterdir())
    total = count * size
    ours, theirs = [], []
    for run in range(runs):
        sandbox = Sandbox(WORK / f"sandbox-{name}-{run}")
        env = home_for(f"up-{name}", sandbox.url, sandbox.key, tree / "data", min_age=0)
        ours.append(timed([OORT, "run", "--min-age=0"], env=env)[0])
        dataset = make_dataset(sandbox.url, sandbox.key, f"curl{run}")
        target = f"{sandbox.url}/datasets/{dataset}/datafiles/"
        header = f"X-Arcsecond-API-Authorization: Key {sandbox.key}"
        script = WORK / f"curl-{name}.sh"
        script.write_text("".join(
            f"curl -sS -o /dev/null -H '{header}' -F 'file=@{f}' {target}\n" for f in files
        ))
        theirs.append(timed(["sh", str(script)])[0])
        sandbox.stop()
        shutil.rmtree(WORK / f"sandbox-{name}-{run}", ignore_errors=True)
    ours_rate = total / statistics.median(ours) / 1e6
    curl_rate = total / statistics.median(theirs) / 1e6
    label = "curl loop" if curl_loop else "curl, one file after another"
    print(f"  oort-sync {ours_rate:.1f} MB/s, {label} {curl_rate:.1f} MB/s; "
          f"throughput ratio {ours_rate / curl_rate:.2f}x", flush=True)
    RESULTS.append({"bench": name, "oort-sync MB/s": round(ours_rate, 2),
                    "curl MB/s": round(curl_rate, 2), "ratio": round(ours_rate / curl_rate, 3)})


def bench_big_file_memory(size=4 * 1024**3):
    print(f"5. Memory: one {size / 1024**3:.0f} GiB file (sparse)", flush=True)
    folder = WORK / "bigfile" / "data" / "big"
    shutil.rmtree(WORK / "bigfile", ignore_errors=True)
    folder.mkdir(parents=True)
    path = write_fits(folder / "huge.fits", {"DATE-OBS": "2021-01-01T22:00:00"})
    with open(path, "r+b") as handle:
        handle.truncate(size)
    sandbox = Sandbox(WORK / "sandbox-big")
    env = home_for("big", sandbox.url, sandbox.key, folder.parent, min_age=0)
    started = time.perf_counter()
    rss = peak_rss([OORT, "run", "--min-age=0"], env=env)
    seconds = time.perf_counter() - started
    sandbox.stop()
    shutil.rmtree(WORK / "sandbox-big", ignore_errors=True)
    shutil.rmtree(WORK / "bigfile", ignore_errors=True)
    print(f"  peak RSS {rss / 1024:.1f} MB uploading {size / 1e9:.1f} GB in {seconds:.1f} s "
          "(target < 150 MB)", flush=True)
    RESULTS.append({"bench": "peak RSS 4 GiB upload", "MB": round(rss / 1024, 1)})


def bench_requests(count=2000):
    """Requests per new file on a first run, counted from the sandbox's request log."""
    print(f"6. Requests per new file, first run over {count} files", flush=True)
    tree = WORK / f"requests{count}"
    if not (tree / ".complete").exists():
        shutil.rmtree(tree, ignore_errors=True)
        make_bulk_tree(tree / "data", count)
        (tree / ".complete").touch()
    for generation in ("2026", "2021"):
        sandbox = Sandbox(WORK / f"sandbox-requests-{generation}", dialect=generation)
        env = home_for(f"requests{generation}", sandbox.url, sandbox.key, tree / "data",
                       generation=generation, min_age=0)
        timed([OORT, "run", "--min-age=0", "--jobs=8"], env=env)
        log = sandbox.admin("GET", "requests")
        files = len(sandbox.admin("GET", "objects/datafiles"))
        sandbox.stop()
        shutil.rmtree(WORK / f"sandbox-requests-{generation}", ignore_errors=True)
        kinds: dict[str, int] = {}
        for method, path, _status in log:
            kind = method + " " + ("datafiles" if "datafiles" in path else
                                   path.strip("/").split("/")[-1] if method == "POST"
                                   else path.strip("/").split("/")[0])
            kinds[kind] = kinds.get(kind, 0) + 1
        per_file = len(log) / files
        target = "(target <= 1.02)" if generation == "2026" else "(no target: stated)"
        print(f"  {generation}: {len(log)} requests for {files} files: {per_file:.3f} per file "
              f"{target}; {dict(sorted(kinds.items()))}", flush=True)
        RESULTS.append({"bench": f"requests per new file {generation}", "files": files,
                        "requests": len(log), "per_file": round(per_file, 3),
                        "by_kind": kinds})


def bench_slow_server(count=2000, latency=0.1):
    """Small files behind 100 ms answers: the workers keep the link busy."""
    print(f"7. A slow server: {count} small files, {latency * 1000:.0f} ms added to every "
          "answer", flush=True)
    tree = WORK / f"slow{count}"
    if not (tree / ".complete").exists():
        shutil.rmtree(tree, ignore_errors=True)
        make_bulk_tree(tree / "data", count)
        (tree / ".complete").touch()
    files = sorted(str(p) for p in (tree / "data").rglob("*.fits"))
    figures = {}
    for label, jobs in (("default workers (4)", None), ("one request at a time", 1)):
        sandbox = Sandbox(WORK / "sandbox-slow", dialect="2026")
        sandbox.admin("POST", "faults", {"latency": latency})
        env = home_for(f"slow{jobs}", sandbox.url, sandbox.key, tree / "data",
                       generation="2026", min_age=0)
        command = [OORT, "run", "--min-age=0"] + ([f"--jobs={jobs}"] if jobs else [])
        figures[label] = timed(command, env=env)[0]
        if jobs is None:
            dataset = next(d["uuid"] for d in sandbox.admin("GET", "objects/datasets"))
            header = f"X-Arcsecond-API-Authorization: Key {sandbox.key}"
            script = WORK / "curl-slow.sh"
            script.write_text("".join(
                f"curl -sS -o /dev/null -H '{header}' -F dataset={dataset} -F is_raw=True "
                f"-F 'file=@{f};filename=curl-{i}.fits' {sandbox.url}/datafiles/\n"
                for i, f in enumerate(files)))
            figures["curl loop"] = timed(["sh", str(script)])[0]
        sandbox.stop()
        shutil.rmtree(WORK / "sandbox-slow", ignore_errors=True)
    ours = figures["default workers (4)"]
    for label in ("one request at a time", "curl loop"):
        speedup = figures[label] / ours
        print(f"  oort-sync {ours:.1f} s, {label} {figures[label]:.1f} s: "
              f"{speedup:.2f}x faster (target >= 3.5x)", flush=True)
        RESULTS.append({"bench": f"slow server, {count} files vs {label}",
                        "oort-sync s": round(ours, 2), "peer s": round(figures[label], 2),
                        "speedup": round(speedup, 2)})


def bench_million(count=1_000_000, runs=3):
    """Nothing to do over a million files, and a first plan over them (memory bounded).

    The tree is built once and kept (OORT_BENCH_DIR). Its manifest is filled the way a
    completed run records files (every row uploaded, same size, mtime and destination),
    without sending a million files through the sandbox first.
    """
    print(f"8. A decade of data: {count} files", flush=True)
    tree = WORK / f"million{count}"
    data, mirror = tree / "data", tree / "mirror"
    if not (tree / ".complete").exists():
        shutil.rmtree(tree, ignore_errors=True)
        started = time.perf_counter()
        make_bulk_tree(data, count)
        (tree / ".complete").touch()
        print(f"  tree built in {time.perf_counter() - started:.0f} s", flush=True)
    if not mirror.exists():
        shutil.copytree(data, mirror, copy_function=os.link)
    api = "http://127.0.0.1:9"  # no server: a no-change run must not need one
    env = home_for("million-plan", api, "0" * 32, data, min_age=0)
    seconds, _ = timed([OORT, "run", "--dry-run", "--min-age=0"], env=env)
    rss = peak_rss([OORT, "run", "--dry-run", "--min-age=0"], env=env)
    print(f"  first plan (run --dry-run) over {count} new files: {seconds:.1f} s, peak RSS "
          f"{rss / 1024:.1f} MB (target < 200 MB)", flush=True)
    RESULTS.append({"bench": f"first plan {count}", "s": round(seconds, 1),
                    "MB": round(rss / 1024, 1)})
    # The floors: what a person would write to read the same headers (astropy, one loop),
    # and the bare I/O (the first 2880-byte block of each file, no parsing).
    listing = WORK / "million-files.txt"
    listing.write_text("".join(f"{p}\n" for p in data.rglob("*.fits")))
    astropy_loop = timed([sys.executable, "-c", "import sys\nfrom astropy.io import fits\n"
                          "for p in open(sys.argv[1]): fits.getheader(p[:-1])",
                          str(listing)])[0]
    raw_reads = timed([sys.executable, "-c", "import sys\nfor p in open(sys.argv[1]):\n"
                       "    with open(p[:-1], 'rb') as f: f.read(2880)", str(listing)])[0]
    report(f"first plan {count} new files", seconds, "astropy getheader loop", astropy_loop,
           target="(target <= 1.5x)")
    report(f"first plan {count} new files", seconds, "first-block reads (I/O floor)",
           raw_reads, target="(for the record: header parsing, not I/O, is the cost)")
    env = home_for("million", api, "0" * 32, data, min_age=0)
    # In a process of its own: wait4's peak RSS of a child counts the image it was forked
    # from, so this process must stay small for the figures below to be the run's own.
    subprocess.run([sys.executable, __file__, "--fill-manifest", env["OORT_SYNC_HOME"],
                    str(data), api], check=True)
    ours = median_time([OORT, "run"], runs, env=env)
    rss = peak_rss([OORT, "run"], env=env)
    rclone = median_time(["rclone", "copy", "--dry-run", "-q", str(data), str(mirror)], runs)
    report(f"nothing to do, {count} files", ours, "rclone copy --dry-run", rclone,
           target="(target <= 1.0x)")
    print(f"  peak RSS, no-change run over {count} files: {rss / 1024:.1f} MB "
          "(target < 150 MB)", flush=True)
    RESULTS.append({"bench": f"peak RSS nothing to do {count}", "MB": round(rss / 1024, 1)})


def _record_all_uploaded(home: str, data: Path, api: str) -> None:
    from oort_lib.local.scan import Entry, walk
    from oort_lib.state import manifest as mf
    from oort_lib.state.destination import destination

    paths = cfg.resolve_paths(home)
    where = destination(api, "astro", None)
    with mf.Manifest(paths.manifest_file, origin=(api, "astro")) as manifest:
        batch = []
        for entry in walk(str(data)):
            if type(entry) is Entry:
                batch.append({"relpath": entry.relpath, "size": entry.size,
                              "mtime_ns": entry.mtime_ns, "status": mf.UPLOADED,
                              "destination": where, "uploaded_size": entry.size})
            if len(batch) >= 50_000:
                manifest.upsert_files(str(data), batch)
                batch = []
        manifest.upsert_files(str(data), batch)
def bench_bwlimit(rates=("1M", "4M"), total=24 * 1024**2, count=12):
    """--bwlimit holds: the measured upload rate of 4 workers within 10% of the cap."""
    print(f"6. Bandwidth limit: {count} files, {total / 1024**2:.0f} MiB, 4 workers", flush=True)
    tree = WORK / "bwlimit" / "data"
    shutil.rmtree(WORK / "bwlimit", ignore_errors=True)
    for index in range(count):
        path = write_fits(tree / f"f{index:03d}.fits", {"DATE-OBS": "2021-01-01T22:00:00"})
        with open(path, "r+b") as handle:
            handle.truncate(total // count)
    from oort_lib.run.bandwidth import parse_rate

    held = True
    for rate in rates:
        sandbox = Sandbox(WORK / f"sandbox-bw-{rate}")
        env = home_for(f"bw-{rate}", sandbox.url, sandbox.key, tree, min_age=0,
                       api_dialect="2021")
        out = subprocess.run([OORT, "run", "--min-age=0", "--jobs=4", f"--bwlimit={rate}",
                              "--json"], env=env, capture_output=True, text=True, check=False)
        if out.returncode:
            raise SystemExit(f"run failed ({out.returncode}): {out.stderr[-2000:]}")
        sandbox.stop()
        shutil.rmtree(WORK / f"sandbox-bw-{rate}", ignore_errors=True)
        summary = json.loads(out.stdout)
        cap = parse_rate(rate)
        measured = summary["bytes"] / summary["seconds"]
        error = (measured - cap) / cap
        held &= abs(error) <= 0.10
        print(f"  --bwlimit={rate}: {measured / 1024**2:.3f} MiB/s measured against "
              f"{cap / 1024**2:.3f} MiB/s ({error:+.1%}; {summary['seconds']:.1f} s)", flush=True)
        RESULTS.append({"bench": f"bwlimit {rate}", "MiB/s": round(measured / 1024**2, 3),
                        "cap MiB/s": round(cap / 1024**2, 3), "error": round(error, 4)})
    shutil.rmtree(WORK / "bwlimit", ignore_errors=True)
    print("  held within 10%" if held else "  NOT held within 10%", flush=True)


def main() -> None:
    if sys.argv[1:2] == ["--fill-manifest"]:
        _record_all_uploaded(sys.argv[2], Path(sys.argv[3]), sys.argv[4])
        return
    if sys.argv[1:2] == ["--plan-once"]:
        _plan_once(*sys.argv[2:5])
        return
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("names", nargs="*",
                        help="nothing planning whole big small memory requests slow bwlimit "
                             "million "
                             "(million is not in the default set: it builds 1,000,000 files)")
    parser.add_argument("--quick", action="store_true", help="smaller sizes, fewer runs")
    args = parser.parse_args()
    names = args.names or ["nothing", "planning", "whole", "big", "small", "memory", "requests",
                           "slow", "bwlimit"]
    WORK.mkdir(exist_ok=True)
    # A pip-installed package runs from compiled bytecode; a checkout under
    # PYTHONDONTWRITEBYTECODE would recompile every module on every run instead.
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(ROOT / "oort_lib")],
                   check=True, stdout=subprocess.DEVNULL)
    print(f"Machine: {platform.node()} {platform.machine()}, {os.cpu_count()} cores, "
          f"Python {platform.python_version()}, {time.strftime('%Y-%m-%d')}")
    for tool in (["rclone", "version"], ["rsync", "--version"], ["curl", "--version"],
                 ["b2sum", "--version"]):
        print(f"  {tool[0]}: {version(tool)}")
    quick = args.quick
    if "nothing" in names:
        bench_nothing_to_do((2000, 10_000) if quick else (20_000, 100_000), runs=5 if quick else 15)
    if "planning" in names:
        bench_planning(500 if quick else 2000, runs=3 if quick else 5)
    if "whole" in names:
        bench_whole((2000, 10_000) if quick else (20_000, 100_000), runs=3 if quick else 5)
    if "big" in names:
        print("3. Big files: 20 x 50 MB to the sandbox", flush=True)
        bench_upload("big", 4 if quick else 20, 50_000_000, 1 if quick else 3, curl_loop=False)
    if "small" in names:
        print("4. Many small files: 2000 x 50 kB to the sandbox", flush=True)
        bench_upload("small", 200 if quick else 2000, 50_000, 1 if quick else 3, curl_loop=True)
    if "memory" in names:
        bench_big_file_memory(256 * 1024**2 if quick else 4 * 1024**3)
    if "requests" in names:
        bench_requests(200 if quick else 2000)
    if "slow" in names:
        bench_slow_server(200 if quick else 2000)
    if "million" in names:
        bench_million(100_000 if quick else 1_000_000)
    if "bwlimit" in names:
        bench_bwlimit(("1M",) if quick else ("512k", "1M", "4M"),
                      total=(8 if quick else 24) * 1024**2)
    out = WORK / "results.json"
    out.write_text(json.dumps(RESULTS, indent=2))
    print(f"Results in {out}")


if __name__ == "__main__":
    main()
