"""Quiet outages: a failure that lasts is said once when it starts and once when it ends.

During a server outage or while a disk is unplugged, every cron tick meets the same
error; printing it each time makes cron mail every five minutes for hours. The ongoing
problems are kept in a small state file (`outages.json` beside the manifest): a problem
seen by the previous run too is logged and still gives a non-zero exit code, but is not
printed; when it is gone, one line says so ("recovered after 3 h 10 min, 42 runs").

The same file remembers whether the last run failed, and since when (`failing`): the
failure-only notifications (`run --notify-url`, views/notify.py) are sent when that
turns, once when runs start failing and once when one succeeds again.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable
from pathlib import Path
from typing import NamedTuple

from oort_lib.state.status import StrEnum

UNREACHABLE = "server unreachable"
BUSY = "server busy or unresponsive"  # the same problem (key UNREACHABLE), named so
AUTH = "authentication refused"
MISSING = "folder missing"


class Problem(NamedTuple):
    key: str  # what stays the same from one run to the next: kind (and folder)
    kind: str  # UNREACHABLE, BUSY, AUTH, MISSING
    message: str  # what was printed when it started


class Event(StrEnum):
    """What a failure-only notification says: runs started failing, or work again."""

    FAILURE = "failure"
    RECOVERY = "recovery"


class Turn(NamedTuple):
    """A run that changed (or has not yet told) whether runs fail: what to notify."""

    event: Event
    since: float  # when the runs started failing
    runs: int  # failing runs so far (for a recovery: all of them)


class Verdict(NamedTuple):
    quiet: frozenset[str]  # messages of this run not to print again
    started: tuple[Problem, ...]  # new this run: printed as usual
    recovered: tuple[str, ...]  # lines to print: problems gone since the last run
    state: dict  # the new content of the state file
    turn: Turn | None = None  # a notification to send (see turned)


def problems_of(result) -> list[Problem]:
    """The lasting kinds of problem a run's result shows (result.RunResult)."""
    from oort_lib.errors import AuthError, ServerBusy, ServerUnreachable

    found = [Problem(f"{MISSING}:{root}", MISSING, why) for root, why in result.plan.missing]
    if isinstance(result.fatal, ServerUnreachable):
        kind = BUSY if isinstance(result.fatal, ServerBusy) else UNREACHABLE
        found.append(Problem(UNREACHABLE, kind, result.fatal.message))
    elif isinstance(result.fatal, AuthError):
        found.append(Problem(AUTH, AUTH, result.fatal.message))
    return found


def judge(previous: dict, problems: list[Problem], now: float, *, checked_roots,
          server_checked: bool, failing: bool | None = None) -> Verdict:
    """Compare this run's problems with the ongoing ones of `previous` (the state file).

    A server problem is over only when this run spoke to the server (`server_checked`:
    a tick with nothing to send cannot tell); a missing folder only when this run looked
    at that folder (`checked_roots`). `failing`: whether this run failed (its exit code),
    None when it cannot say (stopped by a signal): see turned.
    """
    ongoing = dict(previous.get("ongoing") or {})
    state: dict = {}
    quiet, started = set(), []
    for problem in problems:
        entry = ongoing.pop(problem.key, None)
        if entry is None:
            started.append(problem)
            entry = {"kind": problem.kind, "message": problem.message, "since": now, "runs": 0}
        else:
            quiet.add(problem.message)
        entry["runs"] = int(entry.get("runs", 0)) + 1
        entry["last"] = now
        state[problem.key] = entry
    roots = set(checked_roots)
    recovered = []
    for key, entry in ongoing.items():
        kind = entry.get("kind")
        over = (key.split(":", 1)[1] in roots) if kind == MISSING else server_checked
        if not over:
            state[key] = entry
            continue
        recovered.append(f"oort-sync: {_label(entry)}: recovered after "
                         f"{duration(now - float(entry.get('since', now)))}, "
                         f"{entry.get('runs', 1)} run{'s' if entry.get('runs', 1) != 1 else ''}.")
    new = {"ongoing": state}
    failing_entry, turn = turned(previous.get("failing"), failing, now)
    if failing_entry:
        new["failing"] = failing_entry
    return Verdict(frozenset(quiet), tuple(started), tuple(recovered), new, turn)


def turned(entry: dict | None, failing: bool | None,
           now: float) -> tuple[dict | None, Turn | None]:
    """The new `failing` entry of the state file ({"since", "runs", "told"}, None when runs
    succeed) and the notification this run calls for, from the previous entry and
    whether this run failed (None: it cannot say; nothing changes).

    A failure is notified by the first failing run, and again by the next failing ones
    only while no notification of it was delivered (`told`, see mark_told: a webhook
    that was down, a URL added during the outage); a recovery by the first run that
    succeeds after failing ones.
    """
    entry = dict(entry) if isinstance(entry, dict) else None
    if failing is None:
        return entry, None
    if not failing:
        if entry is None:
            return None, None
        return None, Turn(Event.RECOVERY, _number(entry.get("since"), now),
                          int(_number(entry.get("runs"), 1)))
    if entry is None:
        entry = {"since": now, "runs": 0, "told": False}
    entry["runs"] = int(_number(entry.get("runs"), 0)) + 1
    entry["last"] = now
    if entry.get("told"):
        return entry, None
    return entry, Turn(Event.FAILURE, _number(entry.get("since"), now), entry["runs"])


def _number(value, default: float) -> float:
    """A number of the state file (edited by hand, or damaged), else `default`."""
    return float(value) if isinstance(value, (int, float)) else default


def settle(state_file: Path, result, checked_roots: Iterable[str], now: float,
           failing: bool | None = None) -> Verdict:
    """Judge a finished run's problems (result.RunResult) against the ongoing ones kept in
    `state_file`, keep the new state there, and log what goes on quietly and what is
    over. `failing`: whether the run failed (None: stopped by a signal), for the
    notifications (Verdict.turn). A state file that cannot be written is logged, never
    raised: the next run then says the outage again, which is better than a run failing
    over it."""
    log = logging.getLogger("oort_sync")
    verdict = judge(load(state_file), problems_of(result), now, checked_roots=checked_roots,
                    server_checked=result.generation is not None, failing=failing)
    _keep(state_file, verdict.state)
    for message in verdict.quiet:
        log.error("still: %s", message)
    for line in verdict.recovered:
        log.info("%s", line.removeprefix("oort-sync: "))
    return verdict


def settle_failure(state_file: Path, now: float) -> Turn | None:
    """A run that ended by an error before it had a result (the state disk full, a
    damaged manifest...): recorded as a failing run, its problems unknown (the ongoing
    ones are kept). The notification it calls for, if any. Raises nothing."""
    state = load(state_file)
    entry, turn = turned(state.get("failing"), True, now)
    _keep(state_file, {"ongoing": state.get("ongoing") or {}, "failing": entry})
    return turn


def mark_told(state_file: Path) -> None:
    """The failure notification was delivered: the next failing runs send none. Raises
    nothing (not kept: the next failing run notifies again)."""
    state = load(state_file)
    if isinstance(state.get("failing"), dict) and not state["failing"].get("told"):
        state["failing"]["told"] = True
        _keep(state_file, state)


def _keep(state_file: Path, state: dict) -> None:
    try:
        save(state_file, state)
    except OSError as exc:
        logging.getLogger("oort_sync").warning("cannot keep %s: %s", state_file, exc)


def _label(entry: dict) -> str:
    if entry.get("kind") == MISSING:
        return entry.get("message") or MISSING
    return str(entry.get("kind"))


def duration(seconds: float) -> str:
    """`3 h 10 min`, `5 min`, `40 s`, `2 d 4 h`."""
    seconds = max(0, int(seconds))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days} d {hours} h" if hours else f"{days} d"
    if hours:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    if minutes:
        return f"{minutes} min"
    return f"{secs} s"


def load(path: Path) -> dict:
    """The state file; an unreadable one counts as no ongoing problem (it is rewritten)."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def save(path: Path, state: dict) -> None:
    """Write the state file atomically; nothing to remember (no ongoing problem, runs not
    failing) removes it."""
    path = Path(path)
    if not state.get("ongoing") and not state.get("failing"):
        try:
            path.unlink()
        except FileNotFoundError:
            pass
        return
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(state, indent=1), encoding="utf-8")
    os.replace(tmp, path)
