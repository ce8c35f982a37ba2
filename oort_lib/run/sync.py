"""The run: lock, plan, resolve the remote objects, upload with a few workers, record all.

Every outcome is committed to the manifest as it happens, so a crash loses at most the
files in flight, and those are found again by the next run (look before re-sending).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable

from oort_lib.errors import (
    EXIT_FILES_FAILED,
    EXIT_OK,
    Aborted,
    AlreadyExists,
    FileProblem,
    NotFound,
    OortError,
    RemoteError,
    TransientError,
    WrongGeneration,
    local_problem,
)
from oort_lib.run.plan import Item, Plan, backoff, make_plan
from oort_lib.run.reasons import classify
from oort_lib.state import manifest as mf
from oort_lib.state.config import Paths, Settings, select_folders
from oort_lib.state.credentials import Credentials
from oort_lib.state.destination import destination
from oort_lib.state.lock import RunLock, folder_locks

log = logging.getLogger("oort_sync")

# Upload attempts within one run before a file waits for a later run (which waits
# plan.backoff(), at most plan.RETRY_MAX).
ATTEMPTS_PER_RUN = 2
UNKNOWN_REMOTE = "?"  # uploaded_hash when the server holds a copy of unknown content
ALREADY = "already on the server"
# 2026: a duplicate answer for a file this destination never sent: same name, but the
# content cannot be compared (the generation has no checksum and no existence check).
ALREADY_UNVERIFIED = "already on the server (not verified)"
# 2021: a file of that name and size that this destination never sent (a lost or rebuilt
# manifest, another installation): the server gives no checksum to compare.
ALREADY_SAME_SIZE = "already on the server (same name and size; content not verified)"
NOT_REPLACED = "changed after upload; the server keeps the first version"
# A state file beside the manifest: what the last runs saw of each watched folder.
FOLDERS_SEEN = "folders.json"


class Events:
    """What a run tells its caller as it goes. The CLI subclasses it to draw progress."""

    # Called as planning reads files: (read, of how many); None when nobody draws it
    # (then planning does not even count them first).
    reading = None

    def planned(self, plan: Plan) -> None: ...

    def sent(self, nbytes: int) -> None: ...

    def done(self, item: Item, outcome: str, reason: str | None) -> None: ...

    def finish(self) -> None: ...


class RunResult:
    """What a run did, file by file (the CLI renders it; status reads the manifest)."""

    def __init__(self, plan: Plan):
        self.plan = plan
        # Counts, not lists: a first run over 100,000 files must not keep them all.
        self.uploaded = 0
        self.already = 0  # found on the server (a lost manifest, an answer lost)
        self.failed: list[tuple[Item, str]] = []
        self.postponed: list[tuple[Item, str]] = []  # retried next run
        # Different files that would be one on the server: (item, reason naming the other).
        self.conflicts: list[tuple[Item, str]] = []
        self.fatal: OortError | None = None
        self.bytes_sent = 0
        self.started = time.time()
        self.ended: float | None = None
        self.stopped = False  # asked to stop (a signal) before the end
        self.generation: str | None = None  # the API generation spoken, if any request
        self.signal_code = 0  # 130 or 143 when a signal ended the run (issue 14)
        self.run_id: int | None = None  # the manifest's runs row

    @property
    def exit_code(self) -> int:
        if self.signal_code:
            return self.signal_code
        if self.fatal is not None:
            return self.fatal.exit_code
        # A missing watched folder (unmounted disk?) needs a person, like a failed file,
        # and so does a conflict.
        trouble = self.failed or self.plan.failed or self.plan.missing or self.conflicts
        return EXIT_FILES_FAILED if trouble else EXIT_OK

    def summary(self) -> dict:
        return {
            "uploaded": self.uploaded,
            "already_on_server": self.already,
            "failed": len(self.failed) + len(self.plan.failed),
            "conflicts": len(self.conflicts),
            "postponed": len(self.postponed),
            "deferred": len(self.plan.deferred),
            "skipped": len(self.plan.skipped),
            "unchanged": self.plan.unchanged,
            "bytes": self.bytes_sent,
            "seconds": round((self.ended or time.time()) - self.started, 3),
            "exit_code": self.exit_code,
            "error": self.fatal.message if self.fatal else None,
            "generation": self.generation,
        }


def dry_run(
    paths: Paths,
    settings: Settings,
    only: Iterable[str] = (),
    *,
    min_age: float | None = None,
    retry_failed: bool = False,
    creds: Credentials | None = None,
    keep_items: bool = True,
    reading=None,
) -> Plan:
    """The plan a run would follow, touching neither the network nor the manifest.
    Without `keep_items`, only its totals per dataset (memory stays flat)."""
    folders = select_folders(settings.folders, only)
    account = creds.username if creds else None
    with mf.Manifest(paths.manifest_file, create=False, origin=(settings.api, account)
                     ) as manifest:
        return make_plan(
            folders,
            manifest,
            min_age=settings.min_age if min_age is None else min_age,
            retry_failed=retry_failed,
            destination=lambda f: destination(settings.api, account, f.organisation),
            keep_items=keep_items,
            retry_delay=settings.retry_delay,
            devices=_folders_seen(paths),
            reading=reading,
        )


def run(
    paths: Paths,
    settings: Settings,
    creds: Credentials,
    only: Iterable[str] = (),
    *,
    jobs: int | None = None,
    min_age: float | None = None,
    retry_failed: bool = False,
    events: Events | None = None,
    stop: threading.Event | None = None,
    abort: threading.Event | None = None,
    on_locked: Callable[[], None] | None = None,
    stop_code: Callable[[], int] | None = None,
    bwlimit: str | None = None,
    rebuilt: bool = False,
) -> RunResult:
    """One batch run under the run lock, and the host-wide lock of each of its folders
    (two profiles never upload one folder at once).

    `stop` asks for a graceful end (no new uploads); `abort` also cuts in-flight uploads.
    `rebuilt`: the manifest was just rebuilt, so a file of this name but another size on
    a 2021 server is this file's older version (replaced), not another file (conflict).
    Raises LockHeld, ConfigError, ManifestError before anything is sent. Remote fatal
    errors (auth, unreachable) end the run and are returned in RunResult.fatal.
    `on_locked` is called once the lock is taken (a monitor's start ping: a tick that
    finds the lock busy sends nothing); `stop_code` gives the exit code of the signal
    that set `stop` (recorded as the run's exit code). Whatever ends the run, even an
    exception (re-raised), the run record gets the real exit code. `bwlimit` (a rate or
    a timetable, bandwidth.py; default: the config's) caps the total upload rate.
    Raises ConfigError for a bad `bwlimit`.
    """
    events = events or Events()
    stop = stop or threading.Event()
    abort = abort or threading.Event()
    folders = select_folders(settings.folders, only)
    jobs = jobs or settings.jobs
    origin = (settings.api, creds.username)
    limiter = None
    if bwlimit or settings.bwlimit:
        from oort_lib.run.bandwidth import Limiter, parse

        limiter = Limiter(parse(bwlimit or settings.bwlimit))
    with (RunLock(paths.lock_file),
          folder_locks(folders, paths),
          mf.Manifest(paths.manifest_file, origin=origin) as manifest,
          _RunRecord(manifest) as run_id):
        if on_locked is not None:
            on_locked()
        plan = make_plan(
            folders,
            manifest,
            min_age=settings.min_age if min_age is None else min_age,
            retry_failed=retry_failed,
            destination=lambda f: destination(settings.api, creds.username, f.organisation),
            retry_delay=settings.retry_delay,
            devices=_folders_seen(paths),
            reading=getattr(events, "reading", None),
        )
        result = RunResult(plan=plan)
        result.run_id = run_id
        _record_plan(manifest, plan)
        _remember_folders(paths, plan)
        for note in plan.notes:
            log.warning("%s", note)
        for root, relpath, why in plan.failed:
            log.warning("failed-transient %s/%s (%s)", root, relpath, why)
        events.planned(plan)
        if plan.items and not stop.is_set():
            # requests costs ~60 ms: only when there is work
            from oort_lib.arcsecond.client import Client

            client = Client.from_settings(settings, creds.key, pool_size=jobs + 2, stop=abort,
                                         halt=stop)
            try:
                _upload_all(client, manifest, settings, creds, result, events, stop, abort,
                            jobs, limiter, rebuilt)
            finally:
                client.close()
        if stop.is_set() and result.fatal is None:
            result.stopped = True
        if stop.is_set() and stop_code is not None:
            result.signal_code = stop_code() or 0
        result.ended = time.time()
        summary = result.summary()
        log.log(
            logging.ERROR if result.fatal else logging.INFO,
            "run finished: exit %s, %s uploaded, %s already on the server, %s failed, "
            "%s conflicts, %s deferred, %s skipped, %s unchanged, %s bytes in %.1f s%s",
            summary["exit_code"], summary["uploaded"], summary["already_on_server"],
            summary["failed"], summary["conflicts"], summary["deferred"], summary["skipped"],
            summary["unchanged"],
            summary["bytes"], summary["seconds"],
            f" ({result.fatal.message})" if result.fatal else "",
            extra={"run_id": run_id, "exit_code": summary["exit_code"], "bytes": summary["bytes"],
                   "reason": result.fatal.message if result.fatal else None},
        )
        manifest.finish_run(
            run_id,
            exit_code=result.exit_code,
            uploaded=result.uploaded + result.already,
            failed=summary["failed"] + summary["conflicts"],
            skipped=len(plan.skipped),
            deferred=len(plan.deferred),
            bytes=result.bytes_sent,
            message=result.fatal.message if result.fatal else (
                "stopped by a signal; files in flight are retried next run"
                if result.stopped else None),
        )
    return result


class _RunRecord:
    """The run's row in the manifest: started on entry; on an exception (re-raised),
    finished with the exit code cli.main gives it, so a record never says success for a
    run that crashed (the normal end is recorded by run() itself)."""

    def __init__(self, manifest: mf.Manifest):
        self.manifest = manifest
        self.run_id = 0

    def __enter__(self) -> int:
        self.run_id = self.manifest.start_run()
        return self.run_id

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc is None:
            return
        from oort_lib.state.records import exit_code_for

        try:
            self.manifest.finish_run(self.run_id, exit_code=exit_code_for(exc),
                                     message=f"ended by {type(exc).__name__}: {exc}"[:300])
        except Exception:  # noqa: BLE001 - the manifest itself may be what failed
            log.exception("could not record the end of run %s", self.run_id)


def _record_plan(manifest: mf.Manifest, plan: Plan) -> None:
    for root, rows in plan.rows.items():
        manifest.upsert_files(root, rows)
    plan.rows.clear()
    for root in {item.folder.path for item in plan.items}:
        manifest.upsert_files(root, (item.row() for item in plan.items if item.folder.path == root))
    if plan.gone:
        manifest.delete_files(plan.gone)


def _folders_seen(paths: Paths) -> dict[str, dict]:
    """What the last runs saw of each watched folder (see plan._emptied); {} if unknown."""
    import json

    try:
        data = json.loads((paths.state_dir / FOLDERS_SEEN).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _remember_folders(paths: Paths, plan: Plan) -> None:
    if not plan.devices:
        return
    import json

    seen = _folders_seen(paths)
    if all(seen.get(k) == v for k, v in plan.devices.items()):
        return  # the no-change path writes nothing
    seen.update(plan.devices)
    target = paths.state_dir / FOLDERS_SEEN
    tmp = target.with_name(f"{target.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(json.dumps(seen, indent=1, sort_keys=True), encoding="utf-8")
        os.replace(tmp, target)
    except OSError as exc:
        log.warning("cannot write %s: %s", target, exc.strerror or exc)


def _upload_all(client, manifest, settings, creds, result, events, stop, abort, jobs,
                limiter=None, rebuilt=False) -> None:
    """Pick the API generation, upload the plan; once, if a route of the remembered
    generation is missing (the server was upgraded), detect again and go on."""
    from oort_lib.arcsecond.detect import generation_for
    from oort_lib.arcsecond.remote import open_remote

    redetect = False
    while True:
        try:
            result.generation = generation_for(client, settings, creds, redetect=redetect)
        except OortError as exc:
            result.fatal = exc
            return
        remote = open_remote(result.generation, client, manifest, str(client.base))
        uploader = _Uploader(remote, manifest, settings, creds, result, events, stop, abort)
        uploader.second_pass = redetect
        uploader.limiter = limiter
        uploader.rebuilt = rebuilt
        uploader.run(jobs)
        if (isinstance(result.fatal, WrongGeneration) and not redetect
                and settings.api_dialect == "auto"):
            log.warning("%s; detecting the server's API generation again", result.fatal)
            result.fatal, redetect = None, True
            stop.clear()
            continue
        return


class _Uploader:
    """The worker pool of a run: each item resolved, uploaded and recorded."""

    def __init__(self, remote, manifest, settings: Settings, creds: Credentials,
                 result: RunResult, events, stop, abort):
        self.remote = remote
        self.manifest = manifest
        self.account = creds.username
        self.result = result
        self.events = events
        self.stop = stop
        self.abort = abort
        self.retry_delay = settings.retry_delay
        self.second_pass = False
        self.limiter = None  # bandwidth.Limiter shared by the workers, if any
        self.rebuilt = False
        self._guard = threading.Lock()

    def run(self, jobs: int) -> None:
        from concurrent.futures import ThreadPoolExecutor

        from oort_lib.run import conflicts

        items = self.result.plan.items
        if self.second_pass:
            items = [i for i in items if self._pending(i)]
        # Before anything is sent: different files that would be one on the server.
        items, verdicts = conflicts.check(items, self.remote, self.manifest, _content_hash)
        for verdict in verdicts:
            self._record(verdict.item, verdict.outcome, verdict.reason, None, verdict.digest)
        # Stable: of two files with the same path in two folders, the first folder's goes
        # first (conflicts.check kept that one).
        items.sort(key=lambda i: (i.group, i.relpath))
        # A short queue of futures, not one per file: memory stays flat over 100,000 files.
        in_flight: deque = deque()
        with ThreadPoolExecutor(max_workers=max(1, jobs), thread_name_prefix="upload") as pool:
            for item in items:
                if len(in_flight) >= 4 * jobs:
                    in_flight.popleft().result()
                in_flight.append(pool.submit(self._one, item))
            for future in in_flight:
                future.result()

    def _fatal(self, exc: OortError) -> None:
        with self._guard:
            if self.result.fatal is None:
                self.result.fatal = exc
        self.stop.set()

    def _sent(self, nbytes: int) -> None:
        # Called by the upload body before each chunk leaves: waiting here paces it.
        if self.limiter is not None:
            self.limiter.take(nbytes, self.abort)
        with self._guard:
            self.result.bytes_sent += nbytes
        self.events.sent(nbytes)

    def _pending(self, item: Item) -> bool:
        row = self.manifest.file(item.folder.path, item.relpath)
        return not row or row["status"] == mf.PENDING  # else dealt with by the first pass

    def _one(self, item: Item) -> None:
        if self.stop.is_set():
            return
        try:
            outcome, reason, uuids, digest = self._upload(item)
        except Aborted:
            return  # stopping: the file stays pending for the next run
        except RemoteError as exc:
            if exc.fatal:
                self._fatal(exc)
                return
            outcome = "failed-transient" if exc.transient else "failed"
            reason, uuids, digest = classify(exc), None, None
            log.info("%s: %s", item.path, exc.message,  # the URL and details, for the log
                     extra={"run_id": self.result.run_id, "file": item.path,
                            "reason": reason, "detail": exc.message})
        except FileProblem as exc:
            # Local: an I/O error, a file that vanished or changed mode (transient, with
            # the backoff of remote ones), or its content (permanent).
            outcome = "failed-transient" if exc.transient else "failed"
            reason, uuids, digest = exc.reason, None, None
        except OortError as exc:
            outcome, reason, uuids, digest = "failed", exc.message, None, None
        except OSError as exc:
            # A local file call not wrapped as a FileProblem: transient all the same.
            log.warning("unexpected local error on %s: %r", item.path, exc)
            outcome, reason, uuids, digest = ("failed-transient",
                                              local_problem(exc, "upload").reason, None, None)
        except Exception as exc:  # noqa: BLE001 - one file's bug must not stop the others
            log.exception("unexpected error on %s", item.path)
            outcome, reason, uuids, digest = "failed", f"internal error: {exc!r}", None, None
        self._record(item, outcome, reason, uuids, digest)

    def _upload(self, item: Item) -> tuple[str, str | None, tuple | None, str | None]:
        """(outcome, reason, remote UUIDs, content hash). Raises api/Oort errors, and
        LocalTransient when the file cannot be read now (retried later)."""
        before = _stat(item)
        if before != (item.size, item.mtime_ns):
            return ("changed", "changed since it was read; it is uploaded on a later run",
                    None, None)
        remote = self.remote
        if item.replace and not remote.can_replace:
            return "failed", NOT_REPLACED, None, None
        attempt, stale, replace = 0, False, item.replace
        while True:
            if self.stop.is_set():
                raise Aborted("the run is stopping")
            box = remote.container(item)
            # A copy on the server after an earlier attempt (of this run or an earlier
            # one) is this file's, maybe incomplete or older: see _judge.
            ours = attempt > 0 or item.attempts > 0
            # Look before sending unless the container is new (nothing can be in it):
            # after a failed attempt, or a file an earlier run may have sent already.
            if remote.can_check and not replace:
                if ours or not remote.is_new(box):
                    found = remote.exists(item, box)
                    if found is not None:
                        verdict = self._judge(item, found, ours)
                        if verdict is not None:
                            return (*verdict[:2], box, verdict[2])
                        replace = True
            try:
                digest = remote.send(item, box, replace=replace, progress=self._sent,
                                     abort=self.abort)
            except AlreadyExists:
                if remote.can_check and not replace:
                    found = remote.exists(item, box)
                    verdict = self._judge(item, found, ours) if found is not None else None
                    if verdict is not None:
                        return (*verdict[:2], box, verdict[2])
                    if found is not None:
                        replace = True
                        continue
                ours = ours or remote.can_check
                return ("already", ALREADY if ours else ALREADY_UNVERIFIED, box,
                        _content_hash(item))
            except NotFound:
                if stale:
                    raise
                # A container cached by an earlier run is gone from the server: find or
                # create it again (once).
                stale = True
                remote.forget(item)
                continue
            except TransientError:
                attempt += 1
                if attempt >= ATTEMPTS_PER_RUN or self.stop.is_set():
                    raise
                continue
            try:
                after = _stat(item)
            except FileProblem:
                after = before  # gone after a whole upload: what was sent was complete
            if after != before:
                return ("changed", "changed during its upload; it is uploaded again later",
                        box, None)
            return "uploaded", "replaced" if replace else None, box, digest

    def _judge(self, item: Item, found, ours: bool) -> tuple[str, str, str | None] | None:
        """What a file of the item's name on the server (2021: with its size) means:
        (outcome, reason, hash), or None to replace it with this file.

        Same size: this file, already there (not verified unless ours: the generation
        gives no checksum). Another size: an older version of this file when ours or
        after a rebuild (replaced), else another file (a conflict, never "already").
        After a rebuild, a local file modified after the server's copy was written is
        replaced even at the same size.
        """
        # After a rebuild, a file modified after the server's copy was written is newer
        # than that copy, whatever its size (replacing an equal copy costs only time).
        newer = (self.rebuilt and found.modified is not None
                 and item.mtime_ns / 1e9 > found.modified + 2)
        if (found.size is None or found.size == item.size) and not newer:
            reason = (ALREADY if ours else ALREADY_UNVERIFIED if found.size is None
                      else ALREADY_SAME_SIZE)
            return "already", reason, _content_hash(item)
        if ours or self.rebuilt:
            log.info("replacing %s on the server (%s bytes there, %s here)", item.filename,
                     found.size, item.size)
            return None
        from oort_lib.run.conflicts import CONFLICT

        return (CONFLICT, f"conflict: the server already holds another file named "
                f"{item.filename} in {item.dataset} ({found.size} bytes; this one "
                f"{item.size} bytes); rename one of them", None)

    def _record(self, item: Item, outcome: str, reason: str | None, uuids,
                digest: str | None) -> None:
        now = time.time()
        fields: dict = {"attempts": item.attempts + 1, "reason": reason}
        if uuids:
            fields.update(nightlog_uuid=uuids.nightlog, parent_uuid=uuids.parent,
                          dataset_uuid=uuids.dataset, destination=item.destination)
        if outcome in ("uploaded", "already"):
            fields.update(
                status=mf.UPLOADED, transient=0, retry_at=None, hash=digest, uploaded_hash=digest,
                uploaded_size=item.size, uploaded_at=now,
            )
            if outcome == "uploaded":
                fields["reason"] = reason or ("replaced" if item.replace else None)
        elif outcome == "failed-transient":
            # Bounded from now: see plan.waits for a clock that was wrong.
            fields.update(status=mf.FAILED, transient=1,
                          retry_at=now + backoff(self.retry_delay, item.attempts))
        elif outcome == "failed":
            fields.update(status=mf.FAILED, transient=0, retry_at=None)
        elif outcome == "conflict":
            # Looked at again by every run: it ends when one of the files is renamed.
            # Not an attempt: nothing was sent (see `ours` in _upload).
            fields.update(status=mf.CONFLICT, transient=0, retry_at=None,
                          attempts=item.attempts)
            if digest:
                fields["hash"] = digest
        elif outcome == "changed":
            fields["status"] = mf.PENDING
            if uuids:  # something reached the server: replace it once the file settles
                fields["uploaded_hash"] = UNKNOWN_REMOTE
        elif outcome == "wait":
            fields.update(status=mf.PENDING, attempts=item.attempts)
        self.manifest.update_file(item.folder.path, item.relpath, **fields)
        with self._guard:
            if outcome == "uploaded":
                self.result.uploaded += 1
            elif outcome == "already":
                self.result.already += 1
            elif outcome.startswith("failed"):
                self.result.failed.append((item, reason or "failed"))
            elif outcome == "conflict":
                self.result.conflicts.append((item, reason or "conflict"))
            else:
                self.result.postponed.append((item, reason or outcome))
        level = (logging.WARNING if outcome.startswith("failed") or outcome == "conflict"
                 else logging.INFO)
        log.log(level, "%s %s/%s%s", outcome, item.folder.path, item.relpath,
                f" ({reason})" if reason else "",
                extra={"run_id": self.result.run_id, "outcome": outcome, "reason": reason,
                       "file": os.path.join(item.folder.path, item.relpath),
                       "bytes": item.size, "dataset": item.dataset})
        self.events.done(item, outcome, reason)


def _content_hash(item: Item) -> str:
    """The item's hash, reading the file only if planning did not (raises
    LocalTransient)."""
    if item.hash:
        return item.hash
    from oort_lib.local.digest import file_hash

    return file_hash(item.path)[0]


def _stat(item: Item) -> tuple[int, int]:
    """(size, mtime) of the item's file now; raises LocalTransient (vanished, moved,
    unreadable: the file is retried later, never skipped for good)."""
    try:
        st = os.stat(item.path)
    except OSError as exc:
        raise local_problem(exc, "upload") from None
    return st.st_size, st.st_mtime_ns
