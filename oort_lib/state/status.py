"""The status of a file in the manifest, named: each value is the text the manifest stores."""

from __future__ import annotations

from enum import Enum


class StrEnum(str, Enum):
    """An enum whose members are their text (Python 3.11's enum.StrEnum; the project
    supports 3.10): equal to it, hashed like it, and shown as it by str(), f-strings
    and json, so SQL, dict keys and the JSON output hold the plain value."""

    def __str__(self) -> str:
        return self.value


class Status(StrEnum):
    """Where a file stands (the `status` column of the manifest's files)."""

    UPLOADED = "uploaded"
    PENDING = "pending"  # planned, not sent yet (a run in progress, or cut)
    DEFERRED = "deferred"  # waits: modified too recently (or "in the future"), not whole yet
    FAILED = "failed"  # transient: retried after a backoff; else once the file changes
    SKIPPED = "skipped"  # not for upload as it is (not a frame, no date)
    # Another file would have the same name on the server (run/conflicts.py): looked at
    # again by every run until one of them is renamed or moved.
    CONFLICT = "conflict"


class Verdict(StrEnum):
    """What `doctor` found of one check of the setup (doctor.py)."""

    OK = "ok"
    WARNING = "warning"  # worth knowing, not wrong: exit code 0 all the same
    PROBLEM = "problem"  # something to fix: exit code 1 (3 or 4 for the key, the server)
