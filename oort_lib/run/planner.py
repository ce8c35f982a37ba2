"""Planning, folder by folder and file by file: the walk against the manifest (the quick
check), the files read (reading.py) in batches, and each one's fate decided.

make_plan drives it; a Plan (plan.py) collects what it finds. Nothing here writes but
through what the caller gives: the queue the planned files go to, and `record` for the
rows of the others (a real run: the manifest, a batch at a time; a dry run: nothing).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterable
from itertools import chain

from oort_lib.errors import FileChanged, FileProblem, NotWhole
from oort_lib.local.decision import FACTS, FRAME_FACTS, decide
from oort_lib.local.exclude import EXCLUDED, matcher
from oort_lib.local.scan import Entry, Skipped, is_transient, walk
from oort_lib.run.estimate import count_to_read, resolve
from oort_lib.run.item import Item, joined
from oort_lib.run.plan import Deferred, Listed, Missing, Plan, Tally
from oort_lib.run.queue import Queue
from oort_lib.run.readiness import defer_young, not_whole, settled_ahead
from oort_lib.run.reading import Inspected, ToRead, inspect_all
from oort_lib.run.reasons import NO_DATE
from oort_lib.run.retry import backoff, waits
from oort_lib.run.unmount import emptied
from oort_lib.state import manifest as mf
from oort_lib.state.config import Folder
from oort_lib.state.quickindex import Unsettled


def make_plan(
    folders: Iterable[Folder],
    manifest: mf.Manifest,
    *,
    now: float | None = None,
    min_age: float = 60.0,
    retry_failed: bool = False,
    destination: Callable[[Folder], str] | None = None,
    queue: Queue | None = None,
    record: Callable[[str, list[dict]], None] | None = None,
    retry_delay: float = 60.0,
    devices: dict[str, dict] | None = None,
    reading: Callable[[int, int], None] | None = None,
    partial_wait: float = 86400.0,
    generation: str | None = None,
) -> Plan:
    """Compare the folders with the manifest and describe what a run must do.

    `destination(folder)` names where the folder's files go (server, account,
    organisation): a file uploaded to another destination is new there.
    Each folder's path is resolved now (a watched symlink may point elsewhere since the
    last run); its files are keyed in the manifest under the resolved path.
    Per-file problems become skipped entries (permanent: the content) or failed ones
    (transient: an I/O error, a file that vanished, permission denied; retried after
    `retry_delay`, doubled per failure). A missing watched folder, or one that looks
    emptied by an unmount (`devices`: what the last runs saw, see unmount.emptied), is
    reported in `missing` and its manifest rows are left alone (an unmounted disk is not
    a deletion).
    A file that is not a whole frame is deferred while it was modified within
    `partial_wait` seconds, then a problem (readiness.not_whole).
    `generation` is the server's API generation where known: for "2026" every night is
    the one that server will file the file under (filing.py).
    The planned items go to `queue` (queue.py; none: only counted), and the rows of the
    other files to `record(root, rows)` (a real run's manifest.upsert_files; none: a
    dry run, nothing recorded), a batch at a time: memory stays flat over a million new
    files. Raises what the manifest raises (ManifestError, ManifestBusy).
    """
    now = time.time() if now is None else now
    folders = list(folders)
    plan = Plan(folders=folders, queue=queue)
    plan.record = record
    if record is not None:  # a real run: the manifest has the skipped files (Tally)
        plan.skipped, plan.excluded = Tally(), Tally()
    plan.partial_wait = partial_wait
    plan.generation = generation
    if reading is not None:
        # A progress display wants its total at once, not after the slow part: the walk
        # and quick check alone take seconds where reading a million headers takes minutes.
        plan.reading, plan.to_read = reading, count_to_read(folders, manifest, destination)
        reading(0, plan.to_read)
    taken: list[tuple[str, str]] = []  # (resolved path, path as given) of planned folders
    for folder in folders:
        real = resolve(folder.path)
        clash = nested_in(real, taken)
        if clash is not None:
            plan.missing.append(Missing(folder.path, f"{folder.path} (now {real}) is inside "
                                        f"the watched folder {clash}, or holds it: not "
                                        "scanned twice."))
            continue
        taken.append((real, folder.path))
        dest = destination(folder) if destination else None
        resolved = folder if real == folder.path else folder._replace(path=real)
        plan_folder(plan, resolved, manifest, now, min_age, retry_failed, dest,
                     retry_delay, folder.path, (devices or {}).get(folder.path))
    if queue is not None:
        queue.flush()
    if generation == "2026":
        from oort_lib.run import filing

        filing.describe_folders(plan, folders, now)
        filing.file_datasets(plan, manifest, destination)
    return plan


def nested_in(real: str, taken: list[tuple[str, str]]) -> str | None:
    from oort_lib.host import is_inside

    for other, given in taken:
        if is_inside(real, other) or is_inside(other, real):
            return given
    return None


def plan_folder(plan, folder, manifest, now, min_age, retry_failed, dest, retry_delay,
                 given, seen) -> None:
    root = folder.path
    quick = manifest.quick_index(root, dest)
    unsettled = Unsettled(manifest, root)
    rows: list[dict] = []
    todo: list[ToRead] = []
    young = now - min_age
    ahead = now + min_age  # an mtime past this was set by a wrong clock, not a writer
    entries = walk(root, matcher(folder.exclude) if folder.exclude else None)
    try:
        # walk() checks the root when first advanced: a missing folder raises here.
        first = next(entries, None)
    except FileProblem as exc:
        plan.missing.append(Missing(root, exc.message))
        return
    if emptied(plan, given, root, first is not None, quick.known, seen):
        return
    if plan.queue is not None:
        plan.queue.watch(folder)
    # A no-change tick meets every file here: what it does per file is what a tick
    # costs, so the common case (uploaded here as it is) is decided first, with locals.
    pop_settled, pop_other = quick.poppers()
    skipped_type = Skipped
    for entry in chain(() if first is None else (first,), entries):
        relpath = entry.relpath
        settled = pop_settled(relpath, None)  # (relpath, size, mtime_ns): uploaded to dest
        if settled is not None:
            if (settled[1] == entry.size and settled[2] == entry.mtime_ns
                    and type(entry) is not skipped_type):
                plan.unchanged += 1  # what the slower path below decides for it too
                continue
            quick_old = quick.full(relpath)  # changed since, or cannot be read now
        else:
            quick_old = pop_other(relpath, None)
        # quickindex.QUICK_COLUMNS: (id, size, mtime_ns, status, reason, destination, relpath)
        if (quick_old is not None and quick_old[5] != dest and quick_old[3] != mf.SKIPPED
                and dest is not None):
            # Recorded for another destination: new here (the row is rewritten below).
            quick_old = None
        if type(entry) is Skipped:
            if entry.reason.startswith(EXCLUDED):
                plan.excluded.append(Listed(root, relpath, entry.reason))
                if quick_old is not None and quick_old[3] != mf.UPLOADED:
                    plan.gone.append(quick_old[0])  # no longer to be uploaded
                continue
            if is_transient(entry.reason):
                if (quick_old is not None and quick_old[3] == mf.UPLOADED
                        and (quick_old[1], quick_old[2]) == (entry.size, entry.mtime_ns)):
                    # Uploaded as it is: that it cannot be read now does not matter.
                    plan.unchanged += 1
                    continue
                _failed(plan, root, entry, entry.reason, unsettled.get(relpath, quick_old),
                        now, retry_delay, rows, dest, observed=True)
                continue
            plan.skipped.append(Listed(root, relpath, entry.reason))
            if quick_old is None or quick_old[3:5] != (mf.SKIPPED, entry.reason):
                rows.append(_skip_row(entry, entry.reason))
            continue
        same = (
            quick_old is not None
            and quick_old[1] == entry.size
            and quick_old[2] == entry.mtime_ns
        )
        if same and quick_old[3] == mf.UPLOADED:
            plan.unchanged += 1
            continue
        if same and quick_old[3] == mf.SKIPPED:
            plan.skipped.append(Listed(root, relpath, quick_old[4] or mf.SKIPPED))
            continue
        old = None
        if quick_old is not None:
            old = unsettled.known(relpath, quick_old)
        if same:
            status = old.status
            if status == mf.FAILED and not retry_failed and waits(old, now):
                plan.waiting.append(Listed(root, relpath, old.reason or mf.FAILED))
                if old.transient:
                    plan.retry(root, relpath, old.reason or mf.FAILED, old.retry_at)
                continue
        mtime = entry.mtime_ns / 1e9
        if mtime > young:
            if mtime <= ahead:
                defer_young(plan, root, entry, old if same else None, min_age, rows)
                continue
            if not settled_ahead(plan, root, entry, old if same else None, now, min_age,
                                 rows, dest):
                continue
        todo.append(ToRead(entry, old if same else None, old))
        if len(rows) >= _BATCH * 8:  # skipped, deferred...: a tree of them is long too
            flush(plan, root, rows)
        if len(todo) >= _BATCH:
            _plan_batch(plan, folder, todo, rows, dest, now, retry_delay)
    _plan_batch(plan, folder, todo, rows, dest, now, retry_delay)
    # What is left was not seen by this walk: deleted since (uploaded rows stay as history).
    plan.gone.extend(quick.gone())


def _failed(plan: Plan, root: str, entry, reason: str, old, now: float,
            retry_delay: float, rows: list, dest: str | None, *,
            observed: bool = False) -> None:
    """A file that cannot be read now (transient): failed, retried after the backoff.

    `observed`: the walk itself saw the problem (permission denied, a folder that cannot
    be listed). It looks again at every run for free: failed at every run while it
    lasts, and read at once when it is over (no backoff to wait).
    """
    attempts = old.attempts if old is not None else 0
    plan.failed.append(Listed(root, entry.relpath, reason))
    row = {"relpath": entry.relpath, "size": entry.size,
           "mtime_ns": getattr(entry, "mtime_ns", None), "status": mf.FAILED,
           "reason": reason, "transient": 1, "attempts": attempts + 1,
           "retry_at": now if observed else now + backoff(retry_delay, attempts),
           "destination": dest}
    if old is None or (old.size, old.mtime_ns) != (row["size"], row["mtime_ns"]):
        # What was known of the content (hash, header) is of another version: once
        # readable, the file is read again rather than planned from stale facts.
        row.update(hash=None, header_date=None)
    rows.append(row)


# Files read (header, hash) per batch: enough to keep the cores busy, few enough that a
# first run over 100,000 files never holds them all at once (peak memory, measured).
_BATCH = 256


def _plan_batch(plan: Plan, folder: Folder, todo: list[ToRead], rows: list,
                dest: str | None, now: float = 0.0, retry_delay: float = 60.0) -> None:
    """Read the files of `todo`, turn them into items, skips or failures, and empty it."""
    inspected = inspect_all(todo)
    plan.bytes_read += sum(found.bytes_hashed for found in inspected.values()
                           if not isinstance(found, FileProblem))
    for entry, same, old in todo:
        found = inspected.get(entry.path)
        if isinstance(found, NotWhole):
            not_whole(plan, folder.path, entry, found, now, rows, dest)
        elif isinstance(found, FileChanged):
            # Being written after all: it waits, like a young file.
            plan.deferred.append(Deferred(folder.path, entry.relpath))
            rows.append({"relpath": entry.relpath, "size": entry.size,
                         "mtime_ns": entry.mtime_ns, "status": mf.DEFERRED,
                         "reason": found.reason})
        elif isinstance(found, FileProblem) and found.transient:
            _failed(plan, folder.path, entry, found.reason, old, now, retry_delay, rows, dest)
        else:
            try:
                _plan_file(plan, folder, entry, same, old, rows, found, dest)
            except Exception as exc:  # noqa: BLE001 - one file's values must not stop the rest
                # A value the rules did not expect: a bug, fixed by an upgrade; retried
                # with the backoff meanwhile.
                why = f"the rules failed on its header values ({type(exc).__name__}: {exc})"
                _failed(plan, folder.path, entry, why, old, now, retry_delay, rows, dest)
    if plan.reading is not None and todo:
        plan.read += len(todo)
        plan.reading(plan.read, max(plan.to_read, plan.read))
    todo.clear()
    flush(plan, folder.path, rows)


def flush(plan: Plan, root: str, rows: list[dict]) -> None:
    """Record the rows collected (a real run: make_plan's `record`) and empty the list."""
    if plan.record is not None and rows:
        plan.record(root, rows)
    rows.clear()


def _skip_row(entry, reason: str) -> dict:
    return {
        "relpath": entry.relpath,
        "size": entry.size,
        "mtime_ns": getattr(entry, "mtime_ns", None),
        "status": mf.SKIPPED,
        "reason": reason,
    }


def _plan_file(plan: Plan, folder: Folder, entry: Entry, same, old, rows,
               inspected: Inspected | FileProblem | None, dest: str | None = None) -> None:
    """Turn what is known of one file (manifest, or `inspected`) into an item or a skip."""
    if same is not None and same.header_date:
        # The manifest keeps what the header said: a retried file is not read again.
        # Rows from before 0003_night_sources have no facts: the date alone decides.
        digest, header_date, target = same.hash, same.header_date, same.target
        facts = {key: getattr(same, key) for key in (*FACTS, *FRAME_FACTS)}
    else:
        if isinstance(inspected, FileProblem):
            plan.skipped.append(Listed(folder.path, entry.relpath, inspected.reason))
            rows.append(_skip_row(entry, inspected.reason))
            return
        digest, header_date, target = inspected.hash, inspected.header_date, inspected.target
        facts = inspected.facts
        # Only a file uploaded before was hashed now: to tell a real change from a touch.
        # A new file is hashed by its upload, which reads it anyway.
        uploaded_before = old is not None and bool(old.uploaded_hash)
        if uploaded_before and old.uploaded_hash == digest:
            # Touched, not changed: the server already has this content.
            plan.unchanged += 1
            rows.append(
                {"relpath": entry.relpath, "size": entry.size, "mtime_ns": entry.mtime_ns,
                 "hash": digest, "status": mf.UPLOADED, "reason": None}
            )
            return
        if header_date is None:
            problem = inspected.date_problem
            reason = f"{NO_DATE} ({problem})" if problem else NO_DATE
            plan.skipped.append(Listed(folder.path, entry.relpath, reason))
            rows.append(dict(_skip_row(entry, reason), hash=digest))
            return
    decided = decide(entry.relpath, folder, header_date, facts, plan.generation)
    item = Item(
        folder=folder,
        full_path=None if entry.path == joined(folder.path, entry.relpath) else entry.path,
        relpath=entry.relpath,
        size=entry.size,
        mtime_ns=entry.mtime_ns,
        hash=digest,
        header_date=header_date,
        # Interned: thousands of files of a folder share one copy of these strings.
        night=sys.intern(decided.night),
        kind=decided.kind,
        dataset=sys.intern(decided.dataset),
        target=sys.intern(decided.target(target)),
        replace=bool(old is not None and old.uploaded_hash and old.uploaded_hash != digest),
        attempts=old.attempts if old is not None else 0,
        destination=dest,
        date_source=_intern(facts.get("date_source")),
        time_source=_intern(decided.local.source),
        # Values only, none when empty, and shared strings interned: a first run over
        # 100,000 files must fit in 150 MB (measured: 1.1 kB an item before, 0.5 after).
        date_raw=facts.get("date_raw"),
        facts=_facts(facts),
        dev=entry.dev,
        ino=entry.ino,
        exposure=_shared(facts.get("exposure")),
        filter_name=_intern(facts.get("filter_name")),
        object_name=_intern(facts.get("object_name")),
    )
    plan.add(item)


def _facts(facts: dict) -> tuple | None:
    values = tuple(facts.get(key) for key in FACTS[2:])
    return None if all(value is None for value in values) else values


def _intern(text: str | None) -> str | None:
    return sys.intern(text) if text is not None else None


# One float object per exposure time (a night has a few: 300 s lights, 1 s flats...).
_EXPOSURES: dict[float, float] = {}


def _shared(seconds: float | None) -> float | None:
    if seconds is None or len(_EXPOSURES) > 1000:
        return seconds
    return _EXPOSURES.setdefault(seconds, seconds)
