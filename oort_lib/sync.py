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

from . import manifest as mf
from .config import Paths, Settings, select_folders
from .credentials import Credentials
from .destination import destination
from .errors import (
    EXIT_FILES_FAILED,
    EXIT_OK,
    Aborted,
    AlreadyExists,
    NotFound,
    OortError,
    RemoteError,
    TransientError,
    WrongGeneration,
)
from .lock import RunLock
from .plan import Item, Plan, make_plan
from .reasons import classify

log = logging.getLogger("oort_sync")

# Upload attempts within one run before a file waits for a later run.
ATTEMPTS_PER_RUN = 2
# A file whose upload failed for a transient reason waits `retry_delay` (a setting),
# doubled per failure, up to this.
RETRY_MAX = 6 * 3600.0
UNKNOWN_REMOTE = "?"  # uploaded_hash when the server holds a copy of unknown content
ALREADY = "already on the server"
# 2026: a duplicate answer for a file this destination never sent: same name, but the
# content cannot be compared (the generation has no checksum and no existence check).
ALREADY_UNVERIFIED = "already on the server (not verified)"
NOT_REPLACED = "changed after upload; the server keeps the first version"


class Events:
    """What a run tells its caller as it goes. The CLI subclasses it to draw progress."""

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
        # A missing watched folder (unmounted disk?) needs a person, like a failed file.
        return EXIT_FILES_FAILED if self.failed or self.plan.missing else EXIT_OK

    def summary(self) -> dict:
        return {
            "uploaded": self.uploaded,
            "already_on_server": self.already,
            "failed": len(self.failed),
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
) -> RunResult:
    """One batch run under the run lock.

    `stop` asks for a graceful end (no new uploads); `abort` also cuts in-flight uploads.
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
        from .bandwidth import Limiter, parse

        limiter = Limiter(parse(bwlimit or settings.bwlimit))
    with (RunLock(paths.lock_file),
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
        )
        result = RunResult(plan=plan)
        result.run_id = run_id
        _record_plan(manifest, plan)
        events.planned(plan)
        if plan.items and not stop.is_set():
            # requests costs ~60 ms: only when there is work
            from .arcsecond.client import Client

            client = Client.from_settings(settings, creds.key, pool_size=jobs + 2, stop=abort,
                                         halt=stop)
            try:
                _upload_all(client, manifest, settings, creds, result, events, stop, abort,
                            jobs, limiter)
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
            "%s deferred, %s skipped, %s unchanged, %s bytes in %.1f s%s",
            summary["exit_code"], summary["uploaded"], summary["already_on_server"],
            summary["failed"], summary["deferred"], summary["skipped"], summary["unchanged"],
            summary["bytes"], summary["seconds"],
            f" ({result.fatal.message})" if result.fatal else "",
            extra={"run_id": run_id, "exit_code": summary["exit_code"], "bytes": summary["bytes"],
                   "reason": result.fatal.message if result.fatal else None},
        )
        manifest.finish_run(
            run_id,
            exit_code=result.exit_code,
            uploaded=result.uploaded + result.already,
            failed=len(result.failed),
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
        from .records import exit_code_for

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


def _upload_all(client, manifest, settings, creds, result, events, stop, abort, jobs,
                limiter=None) -> None:
    """Pick the API generation, upload the plan; once, if a route of the remembered
    generation is missing (the server was upgraded), detect again and go on."""
    from .account import generation_for
    from .arcsecond.remote import open_remote

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
        self._guard = threading.Lock()

    def run(self, jobs: int) -> None:
        from concurrent.futures import ThreadPoolExecutor

        self.result.plan.items.sort(key=lambda i: (i.group, i.relpath))
        # A short queue of futures, not one per file: memory stays flat over 100,000 files.
        in_flight: deque = deque()
        with ThreadPoolExecutor(max_workers=max(1, jobs), thread_name_prefix="upload") as pool:
            for item in self.result.plan.items:
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

    def _one(self, item: Item) -> None:
        if self.stop.is_set():
            return
        if self.second_pass:
            row = self.manifest.file(item.folder.path, item.relpath)
            if row and row["status"] != mf.PENDING:
                return  # dealt with by the first pass
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
        except OortError as exc:
            outcome, reason, uuids, digest = "failed", exc.message, None, None
        except Exception as exc:  # noqa: BLE001 - one file's bug must not stop the others
            log.exception("unexpected error on %s", item.path)
            outcome, reason, uuids, digest = "failed", f"internal error: {exc!r}", None, None
        self._record(item, outcome, reason, uuids, digest)

    def _upload(self, item: Item) -> tuple[str, str | None, tuple | None, str | None]:
        """(outcome, reason, remote UUIDs, content hash). Raises api/Oort errors."""
        before = _stat(item)
        if before is None:
            return "vanished", "vanished before its upload", None, None
        if before != (item.size, item.mtime_ns):
            return ("changed", "changed since it was read; it is uploaded on a later run",
                    None, None)
        remote = self.remote
        if item.replace and not remote.can_replace:
            return "failed", NOT_REPLACED, None, None
        attempt, stale = 0, False
        while True:
            if self.stop.is_set():
                raise Aborted("the run is stopping")
            box = remote.container(item)
            # Look before sending unless the container is new (nothing can be in it):
            # after a failed attempt, or a file an earlier run may have sent already.
            if remote.can_check and not item.replace:
                if attempt > 0 or item.attempts > 0 or not remote.is_new(box):
                    if remote.exists(item, box):
                        return "already", ALREADY, box, _content_hash(item)
            try:
                digest = remote.send(item, box, replace=item.replace, progress=self._sent,
                                     abort=self.abort)
            except AlreadyExists:
                ours = remote.can_check or attempt > 0 or item.attempts > 0
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
            after = _stat(item)
            if after != before:
                return ("changed", "changed during its upload; it is uploaded again later",
                        box, None)
            return "uploaded", None, box, digest

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
                fields["reason"] = "replaced" if item.replace else None
        elif outcome == "failed-transient":
            delay = min(RETRY_MAX, self.retry_delay * 2 ** min(item.attempts, 12))
            fields.update(status=mf.FAILED, transient=1, retry_at=now + delay)
        elif outcome == "failed":
            fields.update(status=mf.FAILED, transient=0, retry_at=None)
        elif outcome == "changed":
            fields["status"] = mf.PENDING
            if uuids:  # something reached the server: replace it once the file settles
                fields["uploaded_hash"] = UNKNOWN_REMOTE
        elif outcome == "vanished":
            fields.update(status=mf.SKIPPED)
        self.manifest.update_file(item.folder.path, item.relpath, **fields)
        with self._guard:
            if outcome == "uploaded":
                self.result.uploaded += 1
            elif outcome == "already":
                self.result.already += 1
            elif outcome.startswith("failed"):
                self.result.failed.append((item, reason or "failed"))
            else:
                self.result.postponed.append((item, reason or outcome))
        level = logging.WARNING if outcome.startswith("failed") else logging.INFO
        log.log(level, "%s %s/%s%s", outcome, item.folder.path, item.relpath,
                f" ({reason})" if reason else "",
                extra={"run_id": self.result.run_id, "outcome": outcome, "reason": reason,
                       "file": os.path.join(item.folder.path, item.relpath),
                       "bytes": item.size, "dataset": item.dataset})
        self.events.done(item, outcome, reason)


def _content_hash(item: Item) -> str:
    """The item's hash, reading the file only if planning did not (raises FileProblem)."""
    if item.hash:
        return item.hash
    from .digest import file_hash

    return file_hash(item.path)[0]


def _stat(item: Item) -> tuple[int, int] | None:
    try:
        st = os.stat(item.path)
    except OSError:
        return None
    return st.st_size, st.st_mtime_ns
