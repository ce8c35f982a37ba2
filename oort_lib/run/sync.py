"""The run: lock, plan, resolve the remote objects, upload with a few workers, record all.

Every outcome is committed to the manifest as it happens, so a crash loses at most the
files in flight, and those are found again by the next run (look before re-sending).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Iterable

from oort_lib.errors import OortError, WrongGeneration
from oort_lib.run.item import Item
from oort_lib.run.plan import Plan
from oort_lib.run.planner import make_plan
from oort_lib.run.queue import Queue
from oort_lib.run.result import Outcome, RunResult
from oort_lib.run.window import HIGH, Window
from oort_lib.state import manifest as mf
from oort_lib.state.config import Paths, Settings, select_folders
from oort_lib.state.credentials import Credentials, known_generation
from oort_lib.state.destination import for_folders
from oort_lib.state.folderlock import folder_locks
from oort_lib.state.lock import RunLock

log = logging.getLogger("oort_sync")

FOLDERS_SEEN = "folders.json"


class Events:
    """What a run tells its caller as it goes. The CLI subclasses it to draw progress."""

    # Called as planning reads files: (read, of how many); None when nobody draws it
    # (then planning does not even count them first).
    reading = None

    def planned(self, plan: Plan) -> None: ...

    def sent(self, nbytes: int) -> None: ...

    def done(self, item: Item, outcome: Outcome, reason: str | None) -> None: ...

    def finish(self) -> None: ...


class _Outcomes(Events):
    """The caller's events, passed on, noting in the result what its summary needs of
    each file's outcome: the bytes of the files stored (not those sent and refused), and
    which failures are permanent."""

    def __init__(self, events: Events, result: RunResult):
        self.events, self.result = events, result
        self._guard = threading.Lock()  # upload workers

    def planned(self, plan: Plan) -> None:
        self.events.planned(plan)

    def sent(self, nbytes: int) -> None:
        self.events.sent(nbytes)

    def done(self, item: Item, outcome: Outcome, reason: str | None) -> None:
        with self._guard:
            if outcome == Outcome.UPLOADED:
                self.result.bytes_stored += item.size
            elif outcome == Outcome.FAILED:
                self.result.permanent.add((item.folder.path, item.relpath))
        self.events.done(item, outcome, reason)

    def finish(self) -> None:
        self.events.finish()


def dry_run(
    paths: Paths,
    settings: Settings,
    only: Iterable[str] = (),
    *,
    min_age: float | None = None,
    retry_failed: bool = False,
    creds: Credentials | None = None,
    queue: Queue | None = None,
    reading=None,
) -> Plan:
    """The plan a run would follow, touching neither the network nor the manifest.
    Its files are listed in `queue` (a scratch manifest's: queue.Scratch), else only
    counted per dataset. Memory stays flat either way."""
    folders = select_folders(settings.folders, only)
    account = creds.username if creds else None
    with mf.Manifest(paths.manifest_file, create=False, origin=(settings.api, account)
                     ) as manifest:
        return make_plan(
            folders,
            manifest,
            min_age=settings.min_age if min_age is None else min_age,
            retry_failed=retry_failed,
            destination=for_folders(settings.api, account),
            queue=queue,
            retry_delay=settings.retry_delay,
            partial_wait=settings.partial_wait,
            devices=_folders_seen(paths),
            reading=reading,
            generation=known_generation(creds, settings.api, settings.api_dialect),
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
    # --jobs (or `jobs` in the config) pins the uploads in flight; else they adapt.
    window = Window(jobs or settings.jobs)
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
        # The manifest is the queue: planned files are recorded as pending as planning
        # goes, and read back a page at a time by the uploader (queue.py).
        plan = make_plan(
            folders,
            manifest,
            min_age=settings.min_age if min_age is None else min_age,
            retry_failed=retry_failed,
            destination=for_folders(settings.api, creds.username),
            queue=Queue(manifest),
            record=manifest.upsert_files,
            retry_delay=settings.retry_delay,
            partial_wait=settings.partial_wait,
            devices=_folders_seen(paths),
            reading=getattr(events, "reading", None),
            generation=known_generation(creds, settings.api, settings.api_dialect),
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
        if plan.files and not stop.is_set():
            # requests costs ~60 ms: only when there is work
            from oort_lib.arcsecond.budget import Budget
            from oort_lib.arcsecond.client import Client

            # One budget for all the workers: a server throttling or silent for every
            # request ends the run's sending after a few, not after every file.
            client = Client.from_settings(settings, creds.key,
                                         pool_size=min(HIGH, window.capacity + 2),
                                         stop=abort, halt=stop,
                                         budget=Budget(on_busy=window.throttled))
            try:
                _upload_all(client, manifest, settings, creds, result, events, stop, abort,
                            window, limiter, rebuilt)
            finally:
                client.close()
            result.window = window.shape()
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
            uploaded=result.uploaded,
            already=result.already,
            failed=summary["failed"] + summary["conflicts"],
            skipped=len(plan.skipped),
            deferred=len(plan.deferred),
            bytes=result.bytes_stored,
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
    """What planning left to record once it was over (the files' rows were recorded as
    it went): the datasets a 2026 server files under an earlier night now, the rows of
    files gone."""
    for moved in plan.refiled:
        manifest.refile(*moved)
    plan.refiled = []
    if plan.gone:
        manifest.delete_files(plan.gone)
        plan.gone = []


def _folders_seen(paths: Paths) -> dict[str, dict]:
    """What the last runs saw of each watched folder (see unmount.emptied); {} if unknown."""
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


def _upload_all(client, manifest, settings, creds, result, events, stop, abort,
                window: Window, limiter=None, rebuilt=False) -> None:
    """Pick the API generation, upload the plan; once, if a route of the remembered
    generation is missing (the server was upgraded), detect again and go on."""
    from oort_lib.arcsecond.detect import generation_for
    from oort_lib.arcsecond.generations import open_remote
    from oort_lib.run.uploader import Uploader  # here: a no-change tick needs none of it

    redetect = False
    while True:
        try:
            result.generation = generation_for(client, settings, creds, redetect=redetect)
        except OortError as exc:
            result.fatal = exc
            return
        if not redetect and (result.generation == "2026") != (result.plan.generation == "2026"):
            # Planned without knowing the generation: its nights are decided again (the
            # second pass keeps them: its first pass recorded outcomes already).
            from oort_lib.run.filing import renight

            renight(result.plan, result.generation, manifest,
                    for_folders(settings.api, creds.username))
            _record_plan(manifest, result.plan)
        remote = open_remote(result.generation, client, manifest, str(client.base))
        uploader = Uploader(remote, manifest, settings, creds, result,
                            _Outcomes(events, result), stop, abort)
        uploader.limiter = limiter
        uploader.rebuilt = rebuilt
        uploader.run(window)
        if (isinstance(result.fatal, WrongGeneration) and not redetect
                and settings.api_dialect == "auto"):
            log.warning("%s; detecting the server's API generation again", result.fatal)
            result.fatal, redetect = None, True
            stop.clear()
            continue
        return
