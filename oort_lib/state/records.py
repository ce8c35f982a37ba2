"""Run records as people and scripts read them: the exit code of whatever ended a run,
RFC 3339 times, and the state of a run (finished, running, did not finish)."""

from __future__ import annotations

from oort_lib.errors import EXIT_SIGINT, EXIT_SIGTERM, EXIT_SOFTWARE, EXIT_USAGE, OortError
from oort_lib.state.status import StrEnum


class RunState(StrEnum):
    """The state of a run record (`state` in status --json), see run_state."""

    RUNNING = "running"
    FINISHED = "finished"
    DID_NOT_FINISH = "did not finish"


def exit_code_for(exc: BaseException) -> int:
    """The exit code cli.main gives a run that `exc` ended."""
    if isinstance(exc, KeyboardInterrupt):
        return EXIT_SIGINT
    if isinstance(exc, SystemExit):
        code = exc.code
        return code if isinstance(code, int) else EXIT_SIGTERM
    if isinstance(exc, OortError):
        return exc.exit_code
    if isinstance(exc, OSError):
        return EXIT_USAGE  # cli.main: the state or config folder itself is unusable
    return EXIT_SOFTWARE


def rfc3339(stamp: float | None) -> str | None:
    """Local time with the offset written `+01:00` (RFC 3339), which Python 3.10's
    `datetime.fromisoformat` and jq's date functions accept (`+0100` they refuse)."""
    if stamp is None:
        return None
    from datetime import datetime

    return datetime.fromtimestamp(stamp).astimezone().isoformat(timespec="seconds")


def run_state(row: dict, holder_pid: int | None) -> RunState:
    """A runs row is finished (it has an end), running (its process holds the lock) or
    did not finish (killed, power cut: no end was ever written)."""
    if row.get("ended_at") is not None:
        return RunState.FINISHED
    if holder_pid is not None and holder_pid == row.get("pid"):
        return RunState.RUNNING
    return RunState.DID_NOT_FINISH
