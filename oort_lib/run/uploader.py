"""The worker pool of a run: each planned file checked, sent and recorded.

A few workers share one Remote (the server's generation behind its small interface):
each file's container is made sure of, the file is looked for (where the generation can
tell), streamed, and its outcome committed to the manifest at once.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import deque
from typing import NamedTuple

from oort_lib.errors import (
    Aborted,
    AlreadyExists,
    FileChanged,
    FileProblem,
    NotFound,
    OortError,
    RemoteError,
    TransientError,
    local_problem,
)
from oort_lib.run.item import Item
from oort_lib.run.reasons import ALREADY, classify
from oort_lib.run.result import Outcome, RunResult, Unsent
from oort_lib.run.retry import backoff
from oort_lib.run.window import Window
from oort_lib.state import manifest as mf
from oort_lib.state.config import Settings
from oort_lib.state.credentials import Credentials

log = logging.getLogger("oort_sync")

# Upload attempts within one run before a file waits for a later run (which waits
# retry.backoff(), at most retry.RETRY_MAX).
ATTEMPTS_PER_RUN = 2
UNKNOWN_REMOTE = "?"  # uploaded_hash when the server holds a copy of unknown content
# 2026: a duplicate answer for a file this destination never sent: same name, but the
# content cannot be compared (the generation has no checksum and no existence check).
ALREADY_UNVERIFIED = "already on the server (not verified)"
# 2021: a file of that name and size that this destination never sent (a lost or rebuilt
# manifest, another installation): the server gives no checksum to compare.
ALREADY_SAME_SIZE = "already on the server (same name and size; content not verified)"
# 2026: a file under the name of one uploaded before (a new frame of a capture program
# that restarts its numbering, or the same file modified): the server cannot replace it.
NOT_REPLACED = ("conflict: the server already holds an earlier file named {name} in dataset "
                "{dataset}{when}, and today's Arcsecond cannot replace a file: rename this "
                "one, or keep each night in its own folder (the dataset is named after the "
                "folder)")


class Done(NamedTuple):
    """What became of one file, as the manifest records it."""

    outcome: Outcome
    reason: str | None
    container: object | None  # the remote.Container it reached, if any
    digest: str | None  # its content hash, where known


class Uploader:
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
        self.order = settings.upload_order  # which night of a backlog goes first
        self.limiter = None  # bandwidth.Limiter shared by the workers, if any
        self.rebuilt = False
        self._guard = threading.Lock()

    def run(self, window: Window) -> None:
        """Upload the plan's items, as many in flight as `window` allows."""
        from concurrent.futures import ThreadPoolExecutor

        from oort_lib.run import conflicts

        queue = self.result.plan.queue
        # Before anything is sent: different files that would be one on the server.
        waiting = set()
        for verdict in conflicts.check(queue, self.remote, self.manifest, _content_hash):
            self._record(verdict.item, Done(verdict.outcome, verdict.reason, None,
                                            verdict.digest))
            if verdict.outcome == Outcome.WAIT:  # pending still, for a later run
                waiting.add((verdict.item.folder.path, verdict.item.relpath))
        # Night by night, the newest first by default (ordering.py), read from the
        # manifest a page at a time (queue.py). A second pass (the server was upgraded
        # under the run) finds only the files the first left pending.
        items = queue.items(self.order, skip=waiting)
        # A short queue of futures, not one per file: memory stays flat over 100,000 files.
        # The window decides how many are sent at once; the pool only has the threads.
        in_flight: deque = deque()
        with ThreadPoolExecutor(max_workers=window.capacity,
                                thread_name_prefix="upload") as pool:
            for item in items:
                while not window.acquire(timeout=0.5):
                    if self.stop.is_set():
                        break
                if self.stop.is_set():
                    break
                while in_flight and in_flight[0].done():
                    in_flight.popleft().result()
                future = pool.submit(self._one, item)
                future.add_done_callback(
                    lambda done: window.release(done.exception() is None and bool(done.result())))
                in_flight.append(future)
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

    def _one(self, item: Item) -> bool:
        """Send and record one file; True when the server has it (the window grows)."""
        if self.stop.is_set():
            return False
        try:
            done = self._upload(item)
        except Aborted:
            return False  # stopping: the file stays pending for the next run
        except RemoteError as exc:
            if exc.fatal:
                self._fatal(exc)
                return False
            done = _failure(classify(exc), exc.transient)
            log.info("%s: %s", item.path, exc.message,  # the URL and details, for the log
                     extra={"run_id": self.result.run_id, "file": item.path,
                            "reason": done.reason, "detail": exc.message})
        except FileProblem as exc:
            # Local: an I/O error, a file that vanished or changed mode (transient, with
            # the backoff of remote ones), or its content (permanent).
            done = _failure(exc.reason, exc.transient)
        except OortError as exc:
            done = _failure(exc.message)
        except OSError as exc:
            # A local file call not wrapped as a FileProblem: transient all the same.
            log.warning("unexpected local error on %s: %r", item.path, exc)
            done = _failure(local_problem(exc, "upload").reason, transient=True)
        except Exception as exc:  # noqa: BLE001 - one file's bug must not stop the others
            log.exception("unexpected error on %s", item.path)
            done = _failure(f"internal error: {exc!r}")
        try:
            self._record(item, done)
        except BaseException:
            # The manifest cannot record (a full disk, an I/O error): the files queued
            # behind this one are not sent, since nothing could say they were.
            self.stop.set()
            raise
        return done.outcome in (Outcome.UPLOADED, Outcome.ALREADY)

    def _upload(self, item: Item) -> Done:
        """What became of the file, sent or not. Raises api/Oort errors,
        LocalTransient when the file cannot be read now or another file is at its path
        (NotPlanned; retried later), ChecksumMismatch when its bytes contradict their
        DATASUM/CHECKSUM (a problem until it changes); nothing is stored of either."""
        before = _stat(item)
        if before != (item.size, item.mtime_ns):
            return Done(Outcome.CHANGED,
                        "changed since it was read; it is uploaded on a later run", None, None)
        remote = self.remote
        if item.replace and not remote.can_replace:
            # Nothing is sent: a conflict, looked at again by every run until renamed.
            return Done(Outcome.CONFLICT, self._not_replaced(item), None, item.hash)
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
                            return verdict._replace(container=box)
                        replace = True
            try:
                digest = remote.send(item, box, replace=replace, progress=self._sent,
                                     abort=self.abort)
            except FileChanged as exc:
                # Cut before the body's end: nothing of it is on the server. It waits
                # to settle, like a file still being written.
                log.info("%s: %s", item.path, exc.message)
                return Done(Outcome.CHANGED, exc.reason, None, None)
            except AlreadyExists:
                if remote.can_check and not replace:
                    found = remote.exists(item, box)
                    verdict = self._judge(item, found, ours) if found is not None else None
                    if verdict is not None:
                        return verdict._replace(container=box)
                    if found is not None:
                        replace = True
                        continue
                ours = ours or remote.can_check
                return Done(Outcome.ALREADY, ALREADY if ours else ALREADY_UNVERIFIED, box,
                            _content_hash(item))
            except NotFound:
                if stale:
                    raise
                # A container cached by an earlier run is gone from the server: find or
                # create it again (once).
                stale = True
                remote.forget(item)
                continue
            except TransientError as exc:
                attempt += 1
                if exc.fatal or attempt >= ATTEMPTS_PER_RUN or self.stop.is_set():
                    raise
                continue
            # The body sent exactly the bytes planned, checked up to its last block
            # (body.py): a change after that is a new version for the next run.
            return Done(Outcome.UPLOADED, "replaced" if replace else None, box, digest)

    def _not_replaced(self, item: Item) -> str:
        """The conflict reason of a file under the name of one uploaded before (2026)."""
        row = self.manifest.file(item.folder.path, item.relpath) or {}
        when = row.get("uploaded_at")
        shown = f" (uploaded {time.strftime('%Y-%m-%d %H:%M', time.localtime(when))})" \
            if when else ""
        return NOT_REPLACED.format(name=item.filename, dataset=item.dataset, when=shown)

    def _judge(self, item: Item, found, ours: bool) -> Done | None:
        """What a file of the item's name on the server (2021: with its size) means (its
        container left to the caller), or None to replace it with this file.

        Same size: this file, already there (not verified unless ours: the generation
        gives no checksum). Another size: an older version of this file when ours or
        after a rebuild (replaced), else another file (a conflict, never ALREADY).
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
            return Done(Outcome.ALREADY, reason, None, _content_hash(item))
        if ours or self.rebuilt:
            log.info("replacing %s on the server (%s bytes there, %s here)", item.filename,
                     found.size, item.size)
            return None
        return Done(Outcome.CONFLICT, f"conflict: the server already holds another file "
                    f"named {item.filename} in {item.dataset} ({found.size} bytes; this one "
                    f"{item.size} bytes); rename one of them", None, None)

    def _record(self, item: Item, done: Done) -> None:
        outcome, reason, box, digest = done
        now = time.time()
        fields: dict = {"attempts": item.attempts + 1, "reason": reason}
        if box:
            fields.update(nightlog_uuid=box.nightlog, parent_uuid=box.parent,
                          dataset_uuid=box.dataset, destination=item.destination)
        if outcome in (Outcome.UPLOADED, Outcome.ALREADY):
            fields.update(
                status=mf.UPLOADED, transient=0, retry_at=None, hash=digest, uploaded_hash=digest,
                uploaded_size=item.size, uploaded_at=now,
            )
            if outcome == Outcome.UPLOADED:
                fields["reason"] = reason or ("replaced" if item.replace else None)
        elif outcome == Outcome.FAILED_TRANSIENT:
            # Bounded from now: see retry.waits for a clock that was wrong.
            fields.update(status=mf.FAILED, transient=1,
                          retry_at=now + backoff(self.retry_delay, item.attempts))
        elif outcome == Outcome.FAILED:
            fields.update(status=mf.FAILED, transient=0, retry_at=None)
        elif outcome == Outcome.CONFLICT:
            # Looked at again by every run: it ends when one of the files is renamed.
            # Not an attempt: nothing was sent (see `ours` in _upload).
            fields.update(status=mf.CONFLICT, transient=0, retry_at=None,
                          attempts=item.attempts)
            if digest:
                fields["hash"] = digest
        elif outcome == Outcome.CHANGED:
            fields["status"] = mf.PENDING
            if box:  # something reached the server: replace it once the file settles
                fields["uploaded_hash"] = UNKNOWN_REMOTE
        elif outcome == Outcome.WAIT:
            fields.update(status=mf.PENDING, attempts=item.attempts)
        self.manifest.update_file(item.folder.path, item.relpath, **fields)
        with self._guard:
            if outcome == Outcome.UPLOADED:
                self.result.uploaded += 1
            elif outcome == Outcome.ALREADY:
                self.result.already += 1
            elif outcome.failed:
                self.result.failed.append(Unsent(item, reason or Outcome.FAILED))
            elif outcome == Outcome.CONFLICT:
                self.result.conflicts.append(Unsent(item, reason or outcome))
            else:
                self.result.postponed.append(Unsent(item, reason or outcome))
        log.log(logging.WARNING if outcome.trouble else logging.INFO, "%s %s/%s%s", outcome,
                item.folder.path, item.relpath, f" ({reason})" if reason else "",
                extra={"run_id": self.result.run_id, "outcome": outcome, "reason": reason,
                       "file": os.path.join(item.folder.path, item.relpath),
                       "bytes": item.size, "dataset": item.dataset})
        self.events.done(item, outcome, reason)


def _failure(reason: str, transient: bool = False) -> Done:
    """A file that failed: retried after its backoff when `transient`, else once it
    changes (or with --retry-failed)."""
    return Done(Outcome.FAILED_TRANSIENT if transient else Outcome.FAILED, reason, None, None)


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
