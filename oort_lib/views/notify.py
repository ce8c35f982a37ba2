"""Failure-only notifications (`run --notify-url`, `notify_url`): one JSON POST when runs
start failing, one when a run succeeds again; nothing while all goes well, nothing on a
repeated failure.

A chat room must not get a message every five minutes of an outage, nor one per good
night: only the turns count, and the state file of the quiet outages (run/outage.py)
remembers whether the last run failed and since when. The body's `text` is one line a
person reads as it is (Slack and Mattermost incoming webhooks show it without any
adapter); the other fields are for a program. Sent like a ping (ping.deliver): a 5 s
total deadline, https:// or http:// on loopback only, never raising, and never the key.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from pathlib import Path

from oort_lib.errors import EXIT_LOCKED, EXIT_OK, EXIT_SIGINT, EXIT_SIGTERM, ConfigError
from oort_lib.run import outage
from oort_lib.run.outage import Event, Turn
from oort_lib.run.reasons import classify, kind_of
from oort_lib.state.records import rfc3339
from oort_lib.views import ping
from oort_lib.views.render import plural

MAX_REASONS = 5  # the first reasons a body lists (most files first)
# Exit codes of runs that are no failure: all done, the lock held by the previous run
# (or the manifest by another program), stopped by a signal.
NOT_FAILING = (EXIT_OK, EXIT_LOCKED, EXIT_SIGINT, EXIT_SIGTERM)
CONFLICT = "name conflict (another file would have its name on the server)"


def address(option: str | None, setting: str | None, config_file: Path) -> str | None:
    """The URL to notify: `--notify-url`, else `notify_url` of the config, else None.
    Raises ConfigError naming the option or the setting when it is not one oort-sync
    sends to (https://, or http:// on this machine only), before the run starts: a
    notification that can never be sent would hide the failures it is there to tell."""
    url = (option or setting or "").strip()
    if not url:
        return None  # the common case, without the address rules' imports (socket...)
    from oort_lib.arcsecond.address import check_base_url

    where = "--notify-url" if option else f"notify_url in {config_file}"
    try:
        return check_base_url(url)
    except ConfigError:
        raise ConfigError(f"{where} = {url}: not an address notifications can go to; give an "
                          "https:// URL (plain http:// only to this machine, e.g. "
                          "http://127.0.0.1:8080/hook), without user@, ? or #.") from None


def failing(exit_code: int) -> bool:
    """Whether a run that ended with `exit_code` failed (see NOT_FAILING)."""
    return exit_code not in NOT_FAILING


def tell(url: str, state_file: Path, body: dict, *, deadline: float = ping.DEADLINE) -> bool:
    """POST `body` as JSON to `url` (ping.deliver: never raises); a delivered failure
    notification is remembered (outage.mark_told), so the next failing runs send none."""
    import json

    sent = ping.deliver(url, json.dumps(body).encode(), content_type="application/json",
                        deadline=deadline, name="notify")
    if sent and body.get("event") == Event.FAILURE:
        outage.mark_told(state_file)
    return sent


def after_error(url: str | None, state_file: Path, exc: Exception, key: str | None) -> bool:
    """A run ended by an error before it had a result (the state disk full, a damaged
    manifest, a bug...): recorded as a failing run, and notified when it is the turn
    (see outage.turned). The lock held by another run is no failure. True if a
    notification was delivered. Raises nothing."""
    from oort_lib.errors import EXIT_SOFTWARE, EXIT_USAGE, OortError

    # The exit code views/failure.py gives it.
    code = (exc.exit_code if isinstance(exc, OortError)
            else EXIT_USAGE if isinstance(exc, OSError) else EXIT_SOFTWARE)
    if not failing(code):
        return False
    try:
        turn = outage.settle_failure(state_file, time.time())
        if turn is None or not url:
            return False
        what = _error_reason(exc)
        return tell(url, state_file, _body(turn, what, code, key, _counts(None),
                                           [{"reason": what, "files": None}]))
    except Exception:  # noqa: BLE001 - the run's own error is the one to tell, not this
        logging.getLogger("oort_sync").exception("notify: after %r", exc)
        return False


def message(turn: Turn, result, exit_code: int, key: str | None,
            now: float | None = None) -> dict:
    """The body that tells `turn` after a finished run (result.RunResult)."""
    now = time.time() if now is None else now
    counts = _counts(result)
    if turn.event == Event.RECOVERY:
        what = (f"runs succeed again after {outage.duration(now - turn.since)} "
                f"({plural(turn.runs, 'failing run')} since {_clock(turn.since, now)}); "
                f"{plural(counts['uploaded'], 'file')} uploaded by this one")
        return _body(turn, what, exit_code, key, counts, [], now=now, recovery=True)
    phrases = _what(result)
    what = "; ".join(phrases) or f"the run failed (exit code {exit_code})"
    return _body(turn, what, exit_code, key, counts, _reasons(result), now=now)


def _body(turn: Turn, what: str, exit_code: int, key: str | None, counts: dict,
          reasons: list[dict], *, now: float | None = None, recovery: bool = False) -> dict:
    from oort_lib.arcsecond.answer import scrub
    from oort_lib.escape import escaped

    now = time.time() if now is None else now
    import socket  # here: importing it costs a cron tick with nothing to send ~4 ms

    host = socket.gethostname() or "this machine"
    text = f"oort-sync on {host}: {what}"
    if not recovery:
        text += f" since {_clock(turn.since, now)}"
    # One line (a path may hold a line feed), never the key (a server may echo it).
    text = scrub(" ".join(escaped(text).split()), key)
    return {
        "text": text,
        "event": str(turn.event),
        "host": host,
        "exit_code": exit_code,
        "since": rfc3339(turn.since),
        "failing_runs": turn.runs,
        "counts": counts,
        "reasons": [dict(r, reason=scrub(escaped(r["reason"]), key)) for r in reasons],
    }


def _clock(stamp: float, now: float) -> str:
    """`02:14` today, else `2026-11-23 02:14` (local time, like the rest of the output)."""
    when, today = time.localtime(stamp), time.localtime(now)
    same_day = when[:3] == today[:3]
    return time.strftime("%H:%M" if same_day else "%Y-%m-%d %H:%M", when)


def _counts(result) -> dict:
    """The run's counts (RunResult.summary's), with `pending`: planned files the run did
    not get to (a fatal error ended it). All zero for a run that has no result."""
    keys = ("uploaded", "already_on_server", "failed", "conflicts", "postponed",
            "retrying", "deferred", "skipped")
    if result is None:
        return {name: 0 for name in (*keys, "pending")}
    summary = result.summary()
    counts = {name: summary[name] for name in keys}
    dealt = (result.uploaded + result.already + len(result.failed) + len(result.conflicts)
             + len(result.postponed))
    counts["pending"] = max(0, result.plan.files - dealt)
    return counts


def _fatal(exc) -> str:
    """What the error that ended a run says, its kind first (the outage's)."""
    from oort_lib.errors import AuthError, ServerBusy, ServerUnreachable

    if isinstance(exc, AuthError):
        status = getattr(exc, "status", None)
        return f"{outage.AUTH} ({status})" if status else outage.AUTH
    if isinstance(exc, ServerUnreachable):
        label = outage.BUSY if isinstance(exc, ServerBusy) else outage.UNREACHABLE
        return f"{label} ({classify(exc)})"
    return classify(exc)


def _error_reason(exc: BaseException) -> str:
    """One line for an error that ended a run before its result."""
    import errno

    from oort_lib.errors import OortError

    if isinstance(exc, OortError):
        return _fatal(exc)
    if isinstance(exc, OSError):
        where = f" ({exc.filename})" if exc.filename else ""
        if exc.errno == errno.ENOSPC:
            return f"disk full{where}"
        return f"{exc.strerror or exc}{where}"
    return f"internal error ({type(exc).__name__}; see `oort-sync logs`)"


def _groups(reasons) -> list[tuple[str, int]]:
    """(reason, files) of the reasons of some files, grouped by kind (reasons.kind_of),
    most files first."""
    return Counter(kind_of(reason)[0] for reason in reasons).most_common()


def _first(reasons) -> str:
    """The two most common reasons of some files, and `...` if there are more."""
    groups = [reason for reason, _files in _groups(reasons)]
    return ", ".join(groups[:2]) + (", ..." if len(groups) > 2 else "")


def _what(result) -> list[str]:
    """The failure in a few words, most serious first."""
    plan = result.plan
    phrases = [_fatal(result.fatal)] if result.fatal is not None else []
    if len(plan.missing) == 1:
        phrases.append(plan.missing[0].reason.rstrip("."))
    elif plan.missing:
        phrases.append(f"{len(plan.missing)} watched folders missing (disk unmounted?)")
    failed = [u.reason for u in result.failed] + [f.reason for f in (*plan.failed,
                                                                     *plan.problems)]
    if failed:
        phrases.append(f"{plural(len(failed), 'file')} failed ({_first(failed)})")
    if result.conflicts:
        phrases.append(plural(len(result.conflicts), "name conflict"))
    if plan.retrying:
        first = _first(r.reason for r in plan.retrying)
        waits = "waits" if len(plan.retrying) == 1 else "wait"
        phrases.append(f"{plural(len(plan.retrying), 'file')} {waits} for a retry ({first})")
    return phrases


def _reasons(result) -> list[dict]:
    """The first reasons of a failed run: the error that ended it and the missing
    folders, then the files' reasons (classified, as `status` groups them), most files
    first."""
    plan = result.plan
    found = [{"reason": _fatal(result.fatal), "files": None}] if result.fatal else []
    found += [{"reason": m.reason, "files": None} for m in plan.missing]
    reasons = [u.reason for u in result.failed]
    reasons += [f.reason for f in (*plan.failed, *plan.problems, *plan.retrying)]
    reasons += [CONFLICT] * len(result.conflicts)
    found += [{"reason": reason, "files": files} for reason, files in _groups(reasons)]
    return found[:MAX_REASONS]
