"""What a run did: each file's outcome, and the run's result (the CLI renders it)."""

from __future__ import annotations

import time
from typing import NamedTuple

from oort_lib.errors import EXIT_FILES_FAILED, EXIT_OK, OortError
from oort_lib.run.item import Item
from oort_lib.run.plan import Plan
from oort_lib.state.status import Status, StrEnum


class Outcome(StrEnum):
    """What became of one planned file (the log, `run -v`, Events.done); the uploader
    records each as a Status."""

    UPLOADED = Status.UPLOADED.value  # sent, and kept by the server
    ALREADY = "already"  # found on the server, not sent (its reason says how it was told)
    FAILED = Status.FAILED.value  # waits for a change of the file (or --retry-failed)
    FAILED_TRANSIENT = "failed-transient"  # retried after its backoff
    CONFLICT = Status.CONFLICT.value  # another file would have its name on the server
    CHANGED = "changed"  # changed since it was read: pending, sent by a later run
    WAIT = "wait"  # same content as another file of the run, uploaded first (conflicts.py)

    @property
    def failed(self) -> bool:
        return self in (Outcome.FAILED, Outcome.FAILED_TRANSIENT)

    @property
    def trouble(self) -> bool:
        """A failure or a conflict: a warning in the log, shown with its reason."""
        return self.failed or self is Outcome.CONFLICT


class Unsent(NamedTuple):
    """A file of the run that is not on the server, and why."""

    item: Item
    reason: str


class RunResult:
    """What a run did, file by file (the CLI renders it; status reads the manifest)."""

    def __init__(self, plan: Plan):
        self.plan = plan
        # Counts, not lists: a first run over 100,000 files must not keep them all.
        self.uploaded = 0
        self.already = 0  # found on the server (a lost manifest, an answer lost)
        self.failed: list[Unsent] = []
        self.postponed: list[Unsent] = []  # retried next run
        # Different files that would be one on the server (the reason names the other).
        self.conflicts: list[Unsent] = []
        self.fatal: OortError | None = None
        self.bytes_sent = 0  # on the wire, refused uploads included (the progress bar)
        self.bytes_stored = 0  # of the files the server kept (the summary)
        # (folder, relpath) of the failures that wait for a change (or --retry-failed).
        self.permanent: set[tuple[str, str]] = set()
        self.started = time.time()
        self.ended: float | None = None
        self.stopped = False  # asked to stop (a signal) before the end
        self.generation: str | None = None  # the API generation spoken, if any request
        self.signal_code = 0  # 130 or 143 when a signal ended the run (issue 14)
        self.run_id: int | None = None  # the manifest's runs row
        self.window = None  # window.Shape: the uploads in flight over the run (run -v)

    @property
    def exit_code(self) -> int:
        if self.signal_code:
            return self.signal_code
        if self.fatal is not None:
            return self.fatal.exit_code
        # A missing watched folder (unmounted disk?) needs a person, like a failed file,
        # and so does a conflict; a transient failure lasts while it waits for its retry.
        trouble = (self.failed or self.plan.failed or self.plan.problems or self.plan.missing
                   or self.conflicts or self.plan.retrying)
        return EXIT_FILES_FAILED if trouble else EXIT_OK

    def summary(self) -> dict:
        """The run's counts (`run --json`; its field names are kept as they are)."""
        return {
            "uploaded": self.uploaded,
            "already_on_server": self.already,
            "failed": len(self.failed) + len(self.plan.failed) + len(self.plan.problems),
            "conflicts": len(self.conflicts),
            "postponed": len(self.postponed),
            "retrying": len(self.plan.retrying),
            "deferred": len(self.plan.deferred) + len(self.plan.incomplete),
            "skipped": len(self.plan.skipped),
            "unchanged": self.plan.unchanged,
            "bytes": self.bytes_stored,
            "bytes_sent": self.bytes_sent,
            "seconds": round((self.ended or time.time()) - self.started, 3),
            "exit_code": self.exit_code,
            "error": self.fatal.message if self.fatal else None,
            "generation": self.generation,
        }
