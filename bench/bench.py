"""oort-sync benchmarks, each measured beside the tool (or the floor) doing the same work.

Run by hand (`make bench`, or `python bench/bench.py [NAME...] [--quick]`). Each timing is
either the median of at least 5 runs, oort-sync and its peer alternated run by run in this
same process on this machine, or a single run, labelled as such; counts are counts. The
figures go to .bench/results.json (merged with what earlier invocations measured there);
`python bench/readme_table.py` renders the README's Performance table from a copy of it
committed as bench/results.json. No test asserts on these figures: they are for people.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import signal
import statistics
import subprocess
import sys
import threading
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
MIN_MEDIAN_RUNS = 5  # a figure called a median is the median of at least this many runs
QUICK = False  # set by main(): the smaller sizes of --quick
GROUP = ""  # the benchmark being run (results are merged by it)


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


def side_by_side(commands: dict[str, dict], runs: int) -> dict[str, list[float]]:
    """Wall seconds of each command, `runs` times, the commands alternated run by run (so
    that what else the machine does weighs on each alike). Each command is a dict of
    timed()'s arguments: {"cmd": [...], "env": ..., "shell": ...}."""
    times: dict[str, list[float]] = {label: [] for label in commands}
    for _ in range(runs):
        for label, command in commands.items():
            times[label].append(timed(**command)[0])
    return times


def figure(samples: list[float] | float, unit: str = "s") -> dict:
    """A measured value: the median of at least 5 runs, or a single run (said so)."""
    samples = samples if isinstance(samples, list) else [samples]
    if len(samples) == 1:
        return {"value": samples[0], "unit": unit, "kind": "single run", "runs": 1}
    if len(samples) < MIN_MEDIAN_RUNS:
        raise ValueError(f"a median of {len(samples)} runs: use 1 or at least "
                         f"{MIN_MEDIAN_RUNS}")
    return {"value": statistics.median(samples), "unit": unit, "kind": "median",
            "runs": len(samples), "min": min(samples), "max": max(samples)}


def count(value: float, unit: str) -> dict:
    return {"value": value, "unit": unit, "kind": "count", "runs": 1}


def record(case: str, ours: dict | None, peer: dict | None = None, peer_label: str = "",
           ratio: dict | None = None, target: str = "", note: str = "", **extra) -> None:
    """One row of the Performance table. `ratio`: {"value", "form"} with form "x" (ours
    over the peer's), "faster" (the peer's over ours) or "error" (a fraction)."""
    entry = {"group": GROUP, "case": case, "date": time.strftime("%Y-%m-%d"),
             "quick": QUICK, "ours": ours, "peer": peer, "peer_label": peer_label,
             "ratio": ratio, "target": target, "note": note, **extra}
    RESULTS.append(entry)
    shown = [f"  {case}:"]
    for name, value in (("oort-sync", ours), (peer_label, peer)):
        if value:
            shown.append(f"{name} {value['value']:.4g} {value['unit']} ({value['kind']}"
                         + (f" of {value['runs']}" if value["kind"] == "median" else "")
                         + ")")
    if ratio:
        shown.append(f"{ratio['form']} {ratio['value']:.3f}")
    print(", ".join(shown) + (f"  target {target}" if target else ""), flush=True)


def versus(case: str, ours: list[float] | float, peer_label: str, peer: list[float] | float,
           target: str = "", unit: str = "s", form: str = "x") -> None:
    """A row comparing oort-sync with a peer doing the same work (timings)."""
    mine, theirs = figure(ours, unit), figure(peer, unit)
    value = (mine["value"] / theirs["value"] if form == "x"
             else theirs["value"] / mine["value"])
    record(case, mine, theirs, peer_label, {"value": round(value, 3), "form": form}, target)


def version(cmd: list[str]) -> str:
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, check=False).stdout
    except FileNotFoundError:
        return "missing"
    return out.strip().splitlines()[0] if out.strip() else "?"


class Sandbox:
    """The sandbox as a separate process, as a user would run it. `counting`: a file where
    the sandbox process writes, when stopped, when each block of an upload body arrived
    (the server's view of the rate: see _counting_sandbox)."""

    def __init__(self, data: Path, dialect: str = "both", counting: Path | None = None):
        self.data = data
        self.counting = counting
        shutil.rmtree(data, ignore_errors=True)  # a fresh server, whatever a crash left
        command = [OORT, "sandbox", "--port=0", f"--data={data}", f"--dialect={dialect}"]
        if counting is not None:
            command = [sys.executable, __file__, "--counting-sandbox", str(data), dialect,
                       str(counting)]
        self.proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     text=True)
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
        self.proc.wait(30)

    def admin(self, method: str, path: str, body: dict | None = None):
        import requests

        headers = {"X-Arcsecond-API-Authorization": f"Key {self.key}"}
        answer = requests.request(method, f"{self.url}/_sandbox/{path}/", json=body,
                                  headers=headers, timeout=30)
        answer.raise_for_status()
        return answer.json()


def _counting_sandbox(data: str, dialect: str, out: str) -> None:
    """The sandbox in this process, noting (monotonic seconds, bytes) for every read of a
    request body larger than 64 KiB (the uploads) as the server reads it from the socket;
    written to `out` as JSON when SIGTERM stops it."""
    from oort_lib.sandbox import Sandbox as Server
    from oort_lib.sandbox import server

    arrivals: list[tuple[float, int]] = []
    body = server.RequestBody
    original_init, original_read = body.__init__, body.read

    def init(self, raw, length):
        original_init(self, raw, length)
        self.counted = length is None or length > 65536

    def read(self, size=-1):
        data = original_read(self, size)
        if self.counted and data:
            arrivals.append((time.monotonic(), len(data)))
        return data

    body.__init__, body.read = init, read
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    sandbox = Server(data, port=0, dialect=dialect).start()
    print(f"Sandbox serving {sandbox.url}/ (stop with Ctrl-C)", flush=True)
    print("\n".join(sandbox.banner()), flush=True)
    stop.wait()
    sandbox.stop()
    Path(out).write_text(json.dumps(arrivals))


def server_rate(arrivals: list[tuple[float, int]]) -> tuple[float, float, int]:
    """(bytes per second, seconds, bytes) received by the server, from the first upload
    block it read to the last."""
    arrivals = sorted(arrivals)
    total = sum(n for _, n in arrivals)
    seconds = arrivals[-1][0] - arrivals[0][0]
    return (total - arrivals[0][1]) / seconds, seconds, total


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


def bulk_tree(name: str, count: int, **options) -> Path:
    """A tree of `count` real FITS files, built once and kept (OORT_BENCH_DIR)."""
    tree = WORK / name
    if not (tree / ".complete").exists():
        shutil.rmtree(tree, ignore_errors=True)
        make_bulk_tree(tree / "data", count, **options)
        (tree / ".complete").touch()
    return tree


def bench_nothing_to_do(counts=(20_000, 100_000), runs=15):
    print("1. Nothing to do (a cron tick over an already uploaded tree)", flush=True)
    figures = {}
    for files in counts:
        tree = bulk_tree(f"tree{files}", files)
        data = tree / "data"
        mirror = tree / "mirror"
        if not mirror.exists():
            shutil.copytree(data, mirror, copy_function=os.link)
        sandbox = Sandbox(WORK / f"sandbox-nothing-{files}")
        env = home_for(f"nothing{files}", sandbox.url, sandbox.key, data, min_age=0)
        started = time.perf_counter()  # minutes: the launcher's 50 ms do not count
        first_rss = peak_rss([OORT, "run", "--min-age=0", "--jobs=8"], env=env)
        upload = time.perf_counter() - started
        sandbox.stop()  # the no-change run must not need the server at all
        print(f"  first upload of {files} files: {upload:.1f} s", flush=True)
        record(f"peak memory, first run over {files:,} new files (all uploaded)",
               figure(first_rss / 1024, "MB"), target="< 150 MB")
        times = side_by_side({
            "ours": {"cmd": [OORT, "run"], "env": env},
            "rclone": {"cmd": ["rclone", "copy", "--dry-run", "-q", str(data), str(mirror)]},
            "rsync": {"cmd": ["rsync", "-a", "--dry-run", f"{data}/", f"{mirror}/"]},
        }, runs)
        versus(f"nothing to do, {files:,} files (a cron tick)", times["ours"],
               "`rclone copy --dry-run`", times["rclone"],
               target="<= 1.0x" if files == counts[0] else "")
        versus(f"nothing to do, {files:,} files", times["ours"], "`rsync -a --dry-run`",
               times["rsync"], target="<= 2.0x" if files == counts[0] else "")
        rss = peak_rss([OORT, "run"], env=env)
        record(f"peak memory, no-change run over {files:,} files",
               figure(rss / 1024, "MB"), target="< 150 MB")
        figures[files] = figure(times["ours"])
    if len(figures) == 2:
        small, big = sorted(figures)
        growth = figures[big]["value"] / figures[small]["value"]
        record(f"nothing to do: {big:,} files against {small:,}", figures[big],
               figures[small], f"{small:,} files",
               {"value": round(growth, 3), "form": "growth"},
               target=f"<= {5.5 if big // small == 5 else big / small * 1.1:g}x")


# The floor of planning new files: the least a program reading headers must do, in a
# Python loop: open each file and read its first 2880-byte blocks up to the END card of
# its first header (a .gz decompressed that far), nothing parsed, nothing else checked.
_HEADER_FLOOR = """\
import gzip, sys
END = b"END" + b" " * 77
for line in open(sys.argv[1], encoding="utf-8"):
    path = line[:-1]
    with (gzip.open if path.endswith(".gz") else open)(path, "rb") as f:
        while True:
            block = f.read(2880)
            if len(block) < 2880 or any(block[i:i + 80] == END for i in range(0, 2880, 80)):
                break
"""


def bench_planning(files_count=2000, runs=5):
    """Planning a tree, against the same work done plainly.

    New files: the plan reads headers only (their hash comes with the upload): against
    the header-only floor. The same files touched after an upload: each must be hashed
    to tell a change from a touch, on all cores: against b2sum on all cores.
    """
    print(f"2. Planning {files_count} files of mixed sizes (.fits, .fits.gz, .fz)", flush=True)
    tree = bulk_tree(f"plan{files_count}", files_count, size_bytes=256_000, mix=True)
    data = tree / "data"
    files = sorted(str(p) for p in data.rglob("*") if p.is_file())
    listing = WORK / "plan-files.txt"
    listing.write_text("".join(f"{f}\n" for f in files))
    nul_listing = WORK / "plan-files.nul"
    nul_listing.write_text("\0".join(files))
    total = sum(os.path.getsize(f) for f in files)
    label = f"{len(files):,} files, {total / 1e9:.2f} GB (`.fits`, `.fits.gz`, `.fz`)"
    print(f"  ({label})", flush=True)
    env = home_for("planning", "http://127.0.0.1:9", "0" * 32, data, min_age=0)
    empty = WORK / "empty-folder"
    empty.mkdir(exist_ok=True)
    idle = home_for("planning-empty", "http://127.0.0.1:9", "0" * 32, empty, min_age=0)
    floor = [sys.executable, "-c", _HEADER_FLOOR, str(listing)]
    times = side_by_side({
        "ours": {"cmd": [OORT, "run", "--dry-run", "--min-age=0"], "env": env},
        "floor": {"cmd": floor},
        "empty": {"cmd": [OORT, "run", "--dry-run", "--min-age=0"], "env": idle},
    }, runs)
    versus(f"planning {label}, all new (headers read, every frame checked whole)",
           times["ours"],
           "header-only floor (a Python loop reading each file's first header blocks)",
           times["floor"], target="stated")
    record("of which the fixed cost: the same `run --dry-run` over an empty folder",
           figure(times["empty"]), target="stated")
    sandbox = Sandbox(WORK / "sandbox-planning")
    env = home_for("planning-changed", sandbox.url, sandbox.key, data, min_age=0)
    timed([OORT, "run", "--min-age=0", "--jobs=8"], env=env)
    sandbox.stop()
    shutil.rmtree(WORK / "sandbox-planning", ignore_errors=True)
    later = time.time()
    for path in files:
        os.utime(path, (later, later))  # touched, not changed: each must be hashed
    cores = os.cpu_count() or 1
    per_call = max(1, -(-len(files) // (cores * 4)))
    b2sum = f"xargs -0 -P {cores} -n {per_call} b2sum < {nul_listing} > /dev/null"
    times = side_by_side({
        "ours": {"cmd": [OORT, "run", "--dry-run", "--min-age=0"], "env": env},
        "b2sum": {"cmd": b2sum, "shell": True},
    }, runs)
    versus("planning the same files after an upload, all touched (each hashed)",
           times["ours"], f"`b2sum` on all {cores} cores (`xargs -P {cores}`)",
           times["b2sum"], target="<= 1.5x")


def bench_whole(counts=(20_000, 100_000), runs=5):
    """A first plan over new files with the whole-frame check (wholeness.check) against
    the same plan without it, side by side: each run a fresh process, the two
    alternated, the page cache warm for both (issue 18: at most 1.10x)."""
    print("3. Whole-frame check: a first plan over new files, with and without it",
          flush=True)
    for files in counts:
        tree = bulk_tree(f"tree{files}", files)
        state = WORK / f"whole-manifest-{files}.sqlite"
        timings: dict[str, list[float]] = {"with": [], "without": []}
        for _ in range(runs):
            for variant in timings:
                out = subprocess.run([sys.executable, __file__, "--plan-once",
                                      str(tree / "data"), str(state), variant],
                                     check=True, capture_output=True, text=True).stdout
                timings[variant].append(float(out.split()[0]))
        versus(f"first plan of {files:,} new files, with the whole-frame check",
               timings["with"], "the same plan without it", timings["without"],
               target="<= 1.10x")


def _plan_once(data: str, state: str, variant: str) -> None:
    """One first plan of `data` (a fresh manifest), timed in this process; prints seconds
    and the number of files planned. `without` replaces the check by a no-op."""
    from oort_lib.local import wholeness
    from oort_lib.run.planner import make_plan
    from oort_lib.state import manifest as mf

    if variant == "without":
        wholeness.check = lambda path, size=None, **_: None  # read_whole calls it by name
    Path(state).unlink(missing_ok=True)
    with mf.Manifest(Path(state)) as manifest:
        started = time.perf_counter()
        plan = make_plan([cfg.Folder(data)], manifest, min_age=0)
        elapsed = time.perf_counter() - started
    print(f"{elapsed:.4f} {plan.files}")


def bench_upload(name: str, files_count: int, size: int, runs: int, curl_loop: bool):
    tree = WORK / f"upload-{name}-{files_count}"
    if not (tree / ".complete").exists():
        shutil.rmtree(tree, ignore_errors=True)
        folder = tree / "data" / "target"
        folder.mkdir(parents=True)
        for index in range(files_count):
            path = write_fits(folder / f"f{index:05d}.fits",
                              {"DATE-OBS": "2021-01-01T22:00:00", "OBJECT": "T"})
            with open(path, "r+b") as handle:
                handle.truncate(size)  # a bigger data part; the header stays valid
                handle.seek(size - 1)
                handle.write(b"\x01")
        (tree / ".complete").touch()
    files = sorted(str(p) for p in (tree / "data" / "target").iterdir())
    total = files_count * size
    print(f"{'4' if name == 'big' else '5'}. Uploads: {files_count} files of {size:,} bytes "
          "to the sandbox", flush=True)
    ours, theirs = [], []
    for run in range(runs):
        sandbox = Sandbox(WORK / f"sandbox-{name}-{run}")
        env = home_for(f"up-{name}", sandbox.url, sandbox.key, tree / "data", min_age=0)
        ours.append(total / timed([OORT, "run", "--min-age=0"], env=env)[0] / 1e6)
        dataset = make_dataset(sandbox.url, sandbox.key, f"curl{run}")
        target = f"{sandbox.url}/datasets/{dataset}/datafiles/"
        header = f"X-Arcsecond-API-Authorization: Key {sandbox.key}"
        script = WORK / f"curl-{name}.sh"
        script.write_text("".join(
            f"curl -sS -o /dev/null -H '{header}' -F 'file=@{f}' {target}\n" for f in files
        ))
        theirs.append(total / timed(["sh", str(script)])[0] / 1e6)
        sandbox.stop()
        shutil.rmtree(WORK / f"sandbox-{name}-{run}", ignore_errors=True)
    label = "a curl loop" if curl_loop else "curl, one file after another"
    size_label = f"{size / 1e6:g} MB" if size >= 1e6 else f"{size / 1e3:g} kB"
    versus(f"{files_count:,} files of {size_label} to the sandbox", ours, label, theirs,
           unit="MB/s", target=">= 0.9x" if not curl_loop else "faster")


def bench_big_file_memory(size=4 * 1024**3):
    print(f"6. Memory: one {size / 1024**3:g} GiB file (sparse)", flush=True)
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
    print(f"  uploaded {size / 1e9:.1f} GB in {seconds:.1f} s", flush=True)
    record(f"peak memory, uploading one {size / 1e9:.2g} GB file", figure(rss / 1024, "MB"),
           target="< 150 MB")


def _kind(method: str, path: str) -> str:
    parts = path.strip("/").split("/")
    if "datafiles" in parts:
        return f"{method} datafiles"
    return f"{method} {parts[-1] if method == 'POST' else parts[0]}"


def bench_requests(files_count=2000):
    """Requests per new file on a first run, counted from the sandbox's request log."""
    print(f"7. Requests per new file, first run over {files_count} files", flush=True)
    tree = bulk_tree(f"requests{files_count}", files_count)
    for generation in ("2026", "2021"):
        sandbox = Sandbox(WORK / f"sandbox-requests-{generation}", dialect=generation)
        env = home_for(f"requests{generation}", sandbox.url, sandbox.key, tree / "data",
                       generation=generation, min_age=0)
        timed([OORT, "run", "--min-age=0", "--jobs=8"], env=env)
        log = sandbox.admin("GET", "requests")
        stored = len(sandbox.admin("GET", "objects/datafiles"))
        sandbox.stop()
        shutil.rmtree(WORK / f"sandbox-requests-{generation}", ignore_errors=True)
        kinds: dict[str, int] = {}
        for method, path, _status in log:
            kinds[_kind(method, path)] = kinds.get(_kind(method, path), 0) + 1
        folders = len({os.path.dirname(p) for p in
                       (str(q.relative_to(tree)) for q in (tree / "data").rglob("*.fits"))})
        note = f"{len(log):,} requests: " + ", ".join(
            f"{n:,} `{kind}`" for kind, n in sorted(kinds.items(), key=lambda kv: -kv[1]))
        record(f"requests per new file, first run over {stored:,} files in {folders} "
               f"folders, {generation} generation",
               count(round(len(log) / stored, 3), "per file"), note=note,
               target="<= 1.02" if generation == "2026" else "stated",
               requests=len(log), files=stored, by_kind=kinds)


def bench_slow_server(files_count=400, latency=0.1):
    """Small files behind 100 ms answers: the adaptive window keeps the link busy, with
    default settings (no --jobs)."""
    print(f"8. A slow server: {files_count} small files, {latency * 1000:.0f} ms added to "
          "every answer", flush=True)
    tree = bulk_tree(f"slow{files_count}", files_count)
    files = sorted(str(p) for p in (tree / "data").rglob("*.fits"))
    seconds = {}
    for label, jobs in (("default settings", None), ("one request at a time", 1)):
        sandbox = Sandbox(WORK / "sandbox-slow", dialect="2026")
        sandbox.admin("POST", "faults", {"latency": latency})
        env = home_for(f"slow{jobs}", sandbox.url, sandbox.key, tree / "data",
                       generation="2026", min_age=0)
        command = [OORT, "run", "--min-age=0"] + ([f"--jobs={jobs}"] if jobs else [])
        seconds[label] = timed(command, env=env)[0]
        if jobs is None:
            dataset = next(d["uuid"] for d in sandbox.admin("GET", "objects/datasets"))
            header = f"X-Arcsecond-API-Authorization: Key {sandbox.key}"
            script = WORK / "curl-slow.sh"
            script.write_text("".join(
                f"curl -sS -o /dev/null -H '{header}' -F dataset={dataset} -F is_raw=True "
                f"-F 'file=@{f};filename=curl-{i}.fits' {sandbox.url}/datafiles/\n"
                for i, f in enumerate(files)))
            seconds["curl loop"] = timed(["sh", str(script)])[0]
        sandbox.stop()
        shutil.rmtree(WORK / "sandbox-slow", ignore_errors=True)
    ours = seconds["default settings"]
    for label, peer in (("one request at a time (`--jobs=1`)", "one request at a time"),
                        ("a `curl` loop", "curl loop")):
        versus(f"{files_count:,} small files, {latency * 1000:.0f} ms added to every answer "
               "(2026), default settings (the adaptive window)", ours, label, seconds[peer],
               form="faster", target=">= 8x" if peer == "one request at a time" else "")


def bench_million(files_count=1_000_000, runs=5):
    """Nothing to do over a million files, and a first plan over them (memory bounded).

    The tree is built once and kept (OORT_BENCH_DIR). Its manifest is filled the way a
    completed run records files (every row uploaded, same size, mtime and destination),
    without sending a million files through the sandbox first.
    """
    print(f"10. A decade of data: {files_count} files", flush=True)
    data = million_tree(files_count)
    mirror = data.parent / "mirror"
    if not mirror.exists():
        shutil.copytree(data, mirror, copy_function=os.link)
    api = "http://127.0.0.1:9"  # no server: a no-change run must not need one
    env = home_for("million-plan", api, "0" * 32, data, min_age=0)
    seconds, _ = timed([OORT, "run", "--dry-run", "--min-age=0"], env=env)
    rss = peak_rss([OORT, "run", "--dry-run", "--min-age=0"], env=env)
    # The floors: what a person would write to read the same headers (astropy, one loop),
    # and the bare I/O (the first 2880-byte block of each file, no parsing).
    listing = WORK / "million-files.txt"
    listing.write_text("".join(f"{p}\n" for p in data.rglob("*.fits")))
    astropy_loop = timed([sys.executable, "-c", "import sys\nfrom astropy.io import fits\n"
                          "for p in open(sys.argv[1]): fits.getheader(p[:-1])",
                          str(listing)])[0]
    raw_reads = timed([sys.executable, "-c", "import sys\nfor p in open(sys.argv[1]):\n"
                       "    with open(p[:-1], 'rb') as f: f.read(2880)", str(listing)])[0]
    versus(f"first plan (`run --dry-run`) over {files_count:,} new files", seconds,
           "a plain loop of astropy `getheader`", astropy_loop, target="<= 1.5x")
    versus(f"first plan (`run --dry-run`) over {files_count:,} new files", seconds,
           "bare first-block reads (the I/O floor)", raw_reads,
           target="stated (parsing, not I/O, is the cost)")
    record(f"peak memory, first plan over {files_count:,} new files",
           figure(rss / 1024, "MB"), target="< 200 MB")
    env = home_for("million", api, "0" * 32, data, min_age=0)
    # In a process of its own: wait4's peak RSS of a child counts the image it was forked
    # from, so this process must stay small for the figures below to be the run's own.
    subprocess.run([sys.executable, __file__, "--fill-manifest", env["OORT_SYNC_HOME"],
                    str(data), api], check=True)
    times = side_by_side({
        "ours": {"cmd": [OORT, "run"], "env": env},
        "rclone": {"cmd": ["rclone", "copy", "--dry-run", "-q", str(data), str(mirror)]},
    }, runs)
    versus(f"nothing to do, {files_count:,} files", times["ours"],
           "`rclone copy --dry-run`", times["rclone"], target="<= 1.0x")
    rss = peak_rss([OORT, "run"], env=env)
    record(f"peak memory, no-change run over {files_count:,} files",
           figure(rss / 1024, "MB"), target="< 150 MB")


def million_tree(files_count: int) -> Path:
    """The tree of the million benchmarks (its `data` folder), built once and kept."""
    tree = WORK / f"million{files_count}"
    if not (tree / ".complete").exists():
        shutil.rmtree(tree, ignore_errors=True)
        started = time.perf_counter()
        make_bulk_tree(tree / "data", files_count)
        (tree / ".complete").touch()
        print(f"  tree built in {time.perf_counter() - started:.0f} s", flush=True)
    return tree / "data"


def bench_first_million(files_count=1_000_000):
    """A first run over a million new files, every one uploaded to the sandbox (2026),
    and the dry-run listings of them (`--json`, `-v`): the peak memory of each, which
    must not grow with the files (issue 24: < 200 MB). Slow: an hour or more at the
    sandbox's pace; reuses the tree of `million`."""
    print(f"11. A first run over {files_count} new files", flush=True)
    data = million_tree(files_count)
    listing = home_for("million-listing", "http://127.0.0.1:9", "0" * 32, data, min_age=0)
    for options, label in ((["--json"], "--json"), (["-v"], "-v")):
        started = time.perf_counter()
        rss = peak_rss([OORT, "run", "--dry-run", "--min-age=0", *options], env=listing)
        print(f"  run --dry-run {label}: {time.perf_counter() - started:.0f} s", flush=True)
        record(f"peak memory, `run --dry-run {label}` listing {files_count:,} new files",
               figure(rss / 1024, "MB"), target="< 200 MB")
    sandbox = Sandbox(WORK / "sandbox-first-million", dialect="2026")
    env = home_for("million-first", sandbox.url, sandbox.key, data, "2026", min_age=0)
    started = time.perf_counter()
    rss = peak_rss([OORT, "run", "--min-age=0"], env=env)
    seconds = time.perf_counter() - started
    sandbox.stop()
    manifest = cfg.resolve_paths(env["OORT_SYNC_HOME"]).manifest_file
    import sqlite3

    with sqlite3.connect(manifest) as db:
        uploaded = db.execute("SELECT count(*) FROM files WHERE status = 'uploaded'").fetchone()[0]
    print(f"  first run: {seconds:.0f} s, {uploaded} uploaded ({uploaded / seconds:.0f} files/s)",
          flush=True)
    if uploaded != files_count:
        raise SystemExit(f"the first run uploaded {uploaded} of {files_count} files")
    record(f"peak memory, first run over {files_count:,} new files (all uploaded, 2026)",
           figure(rss / 1024, "MB"), target="< 200 MB",
           note=f"{seconds / 60:.0f} min, {uploaded / seconds:.0f} files/s")
    shutil.rmtree(WORK / "sandbox-first-million", ignore_errors=True)


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


def bench_bwlimit(rates=("512k", "1M", "4M"), total=24 * 1024**2, files_count=12):
    """--bwlimit holds: the rate the server receives from 4 workers, within 10% of the cap.
    Timed from the server's side: when each block of the upload bodies arrived there."""
    print(f"9. Bandwidth limit: {files_count} files, {total / 1024**2:.0f} MiB, 4 workers",
          flush=True)
    tree = WORK / "bwlimit" / "data"
    shutil.rmtree(WORK / "bwlimit", ignore_errors=True)
    for index in range(files_count):
        path = write_fits(tree / f"f{index:03d}.fits", {"DATE-OBS": "2021-01-01T22:00:00"})
        with open(path, "r+b") as handle:
            handle.truncate(total // files_count)
    from oort_lib.run.bandwidth import parse_rate

    for rate in rates:
        arrivals = WORK / f"bw-{rate}-arrivals.json"
        arrivals.unlink(missing_ok=True)
        sandbox = Sandbox(WORK / f"sandbox-bw-{rate}", counting=arrivals)
        env = home_for(f"bw-{rate}", sandbox.url, sandbox.key, tree, min_age=0,
                       api_dialect="2021")
        out = subprocess.run([OORT, "run", "--min-age=0", "--jobs=4", f"--bwlimit={rate}",
                              "--json"], env=env, capture_output=True, text=True, check=False)
        if out.returncode:
            raise SystemExit(f"run failed ({out.returncode}): {out.stderr[-2000:]}")
        sandbox.stop()
        shutil.rmtree(WORK / f"sandbox-bw-{rate}", ignore_errors=True)
        received, seconds, size = server_rate(json.loads(arrivals.read_text()))
        cap = parse_rate(rate)
        error = (received - cap) / cap
        summary = json.loads(out.stdout)
        said = summary["bytes"] / summary["seconds"]  # oort-sync's own view, for the log
        print(f"  --bwlimit={rate}: the server received {received / 1024**2:.3f} MiB/s over "
              f"{seconds:.1f} s ({size / 1024**2:.1f} MiB); oort-sync's summary says "
              f"{said / 1024**2:.3f} MiB/s", flush=True)
        record(f"`--bwlimit={rate}`, {total / 1024**2:.0f} MiB over 4 workers, received by "
               "the server", figure(received / 1024**2, "MiB/s"),
               {"value": cap / 1024**2, "unit": "MiB/s", "kind": "count", "runs": 1},
               "the limit", {"value": round(error, 4), "form": "error"},
               target="within 10%", server_seconds=round(seconds, 2),
               client_summary_mib_s=round(said / 1024**2, 4))
    shutil.rmtree(WORK / "bwlimit", ignore_errors=True)


NAMES = ["nothing", "planning", "whole", "big", "small", "memory", "requests", "slow",
         "bwlimit"]
SLOW = ["million", "firstmillion"]  # not in the default set: a million files each


def installed() -> str:
    """oort-sync as a user has it: built and installed (not editable) into a venv of its
    own, from this checkout, its dependencies those of the running interpreter.

    A checkout installed in editable mode starts every process with a finder hook that
    imports pathlib, re, fnmatch and urllib (~20 ms here, on a tick of ~350 ms); a
    pip-installed package runs from its own compiled bytecode without one.
    """
    import sysconfig

    venv = WORK / "venv"
    python = venv / ("Scripts" if os.name == "nt" else "bin") / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    purelib = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig."
                              "get_paths()['purelib'])"], check=True, capture_output=True,
                             text=True).stdout.strip()
    # The dependencies on the path, as a plain entry: the editable install's .pth files
    # in that folder are not processed from there.
    Path(purelib, "oort-bench-deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run([str(python), "-m", "pip", "install", "-q", "--no-deps",
                    "--no-build-isolation", "--force-reinstall", "--no-index", str(ROOT)],
                   check=True, stdout=subprocess.DEVNULL)
    return str(python.parent / "oort-sync")


def machine() -> dict:
    try:
        memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1024**3
    except (ValueError, OSError, AttributeError):
        memory = 0.0
    try:
        system = platform.freedesktop_os_release().get("PRETTY_NAME", platform.system())
    except (OSError, AttributeError):
        system = platform.system()
    return {"node": platform.node(), "arch": platform.machine(), "cores": os.cpu_count(),
            "memory_gib": round(memory), "system": system,
            "python": platform.python_version(),
            "tools": {tool[0]: version(tool) for tool in (
                ["rclone", "version"], ["rsync", "--version"], ["curl", "--version"],
                ["b2sum", "--version"])}}


def save(names: list[str]) -> Path:
    """Write this invocation's rows to .bench/results.json, keeping the rows of the
    benchmarks it did not run from an earlier invocation on the same machine."""
    out = WORK / "results.json"
    here = machine()
    kept: list[dict] = []
    if out.exists():
        try:
            earlier = json.loads(out.read_text())
        except ValueError:
            earlier = None
        if isinstance(earlier, dict) and earlier.get("machine", {}).get("node") == here["node"]:
            kept = [r for r in earlier.get("results", []) if r.get("group") not in names]
    order = {name: index for index, name in enumerate([*NAMES, *SLOW])}
    rows = sorted(kept + RESULTS, key=lambda r: order.get(r.get("group"), len(order)))
    out.write_text(json.dumps({"machine": here, "results": rows}, indent=2) + "\n")
    return out


def main() -> None:
    global QUICK, GROUP
    if sys.argv[1:2] == ["--fill-manifest"]:
        _record_all_uploaded(sys.argv[2], Path(sys.argv[3]), sys.argv[4])
        return
    if sys.argv[1:2] == ["--plan-once"]:
        _plan_once(*sys.argv[2:5])
        return
    if sys.argv[1:2] == ["--counting-sandbox"]:
        _counting_sandbox(*sys.argv[2:5])
        return
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("names", nargs="*",
                        help=" ".join(NAMES) + " million firstmillion (not in the default "
                        "set: they build 1,000,000 files; firstmillion uploads them)")
    parser.add_argument("--quick", action="store_true", help="smaller sizes")
    args = parser.parse_args()
    names = args.names or NAMES
    QUICK = quick = args.quick
    WORK.mkdir(exist_ok=True)
    global OORT
    OORT = installed()
    here = machine()
    print(f"Machine: {here['node']} {here['arch']}, {here['cores']} cores, "
          f"{here['memory_gib']} GiB, {here['system']}, Python {here['python']}, "
          f"{time.strftime('%Y-%m-%d')}")
    for tool, said in here["tools"].items():
        print(f"  {tool}: {said}")
    runs = MIN_MEDIAN_RUNS
    steps = {
        "nothing": lambda: bench_nothing_to_do((2000, 10_000) if quick else (20_000, 100_000),
                                               runs=runs if quick else 15),
        "planning": lambda: bench_planning(500 if quick else 2000, runs=runs),
        # Nine runs, not five: a plan's five-second runs vary by more than the check
        # costs, and five medians put the miss at one size or the other run to run.
        "whole": lambda: bench_whole((2000, 10_000) if quick else (20_000, 100_000),
                                     runs=runs if quick else 9),
        "big": lambda: bench_upload("big", 4 if quick else 20, 50_000_000, runs,
                                    curl_loop=False),
        "small": lambda: bench_upload("small", 200 if quick else 2000, 50_000, runs,
                                      curl_loop=True),
        "memory": lambda: bench_big_file_memory(256 * 1024**2 if quick else 4 * 1024**3),
        "requests": lambda: bench_requests(200 if quick else 2000),
        "slow": lambda: bench_slow_server(100 if quick else 400),
        "million": lambda: bench_million(100_000 if quick else 1_000_000, runs=runs),
        "firstmillion": lambda: bench_first_million(100_000 if quick else 1_000_000),
        "bwlimit": lambda: bench_bwlimit(("1M",) if quick else ("512k", "1M", "4M"),
                                         total=(8 if quick else 24) * 1024**2),
    }
    done: list[str] = []
    for name in [n for n in [*NAMES, *SLOW] if n in names]:
        GROUP = name
        steps[name]()
        done.append(name)
        save(done)  # after each benchmark: what was measured is kept
    print(f"Results in {WORK / 'results.json'}; copy it to bench/results.json, then run "
          "`python bench/readme_table.py` to put them in the README")


if __name__ == "__main__":
    main()
