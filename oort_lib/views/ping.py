"""Healthchecks-style monitoring pings: URL/start, URL (success), URL/<exit code>.

Each ping has a short total deadline, whatever the network does (a DNS lookup that
hangs, a server that trickles its answer): monitoring must never hold a run up, nor be
the reason one fails. The failure ping is a POST whose body is a one-line reason, which
Healthchecks shows beside the failure. The failure-only notifications (notify.py) are
sent by the same request code (deliver), under the same deadline.
"""

from __future__ import annotations

import logging
import threading

log = logging.getLogger("oort_sync")

DEADLINE = 5.0  # seconds for one ping, all included


def target(url: str, exit_code: int | None = None, *, start: bool = False) -> str:
    """The URL to ping: URL/start, URL (exit code 0) or URL/<exit code>."""
    base = url.rstrip("/")
    if start:
        return f"{base}/start"
    return base if not exit_code else f"{base}/{exit_code}"


def send(url: str, exit_code: int | None = None, reason: str | None = None, *,
         start: bool = False, deadline: float = DEADLINE) -> bool:
    """Ping the monitor; True if it answered within `deadline` seconds. Never raises."""
    body = None if reason is None else " ".join(reason.split())[:500].encode()
    return deliver(target(url, exit_code, start=start), body, deadline=deadline)


def deliver(where: str, body: bytes | None, *, content_type: str | None = None,
            deadline: float = DEADLINE, name: str = "ping") -> bool:
    """GET `where` (a POST of `body` when there is one), given up on after `deadline`
    seconds whatever the network does: the request runs in a thread of that `name`,
    abandoned at the deadline. True if it was answered with a success. The URL is
    checked first (https://, or http:// on loopback: address.check_base_url). Never
    raises; what went wrong is logged, without the URL's query."""
    outcome: list[bool] = []
    worker = threading.Thread(target=_request, args=(where, body, content_type, deadline,
                                                     outcome, name),
                              name=name, daemon=True)
    worker.start()
    worker.join(deadline)
    if not outcome:
        log.warning("%s %s: no answer within %g s", name, where.split("?")[0], deadline)
        return False
    return outcome[0]


def reason(result, stopped_by: str = "") -> str | None:
    """What the failure ping says of a finished run (result.RunResult), in one line;
    `stopped_by` names the signal that stopped it, if one did."""
    if stopped_by:
        return f"stopped by {stopped_by}"
    if result.fatal is not None:
        return result.fatal.message
    reasons = [why for _root, why in result.plan.missing]
    if result.failed:
        reasons.append(f"{len(result.failed)} file(s) failed, e.g. {result.failed[0][1]}")
    if result.plan.problems:
        reasons.append(f"{len(result.plan.problems)} file(s) not whole, e.g. "
                       f"{result.plan.problems[0][2]}")
    return "; ".join(reasons) or None


def _request(where: str, body: bytes | None, content_type: str | None, deadline: float,
             outcome: list, name: str) -> None:
    import http.client
    import urllib.request

    from oort_lib import __version__
    from oort_lib.arcsecond.address import check_base_url
    from oort_lib.errors import ConfigError

    try:
        check_base_url(where)  # https://, or http:// on loopback
        headers = {"User-Agent": f"oort-sync/{__version__}"}
        if content_type:
            headers["Content-Type"] = content_type
        request = urllib.request.Request(where, data=body, method="POST" if body else "GET",
                                         headers=headers)
        with urllib.request.urlopen(request, timeout=deadline) as answer:  # noqa: S310
            answer.read(1024)
        outcome.append(True)
    # HTTPException: a status line or an answer cut short (a monitor that trickled, then
    # closed), which a worker abandoned at the deadline still meets later.
    except (OSError, ValueError, ConfigError, http.client.HTTPException) as exc:
        log.warning("%s %s failed: %s", name, where.split("?")[0], exc)
        outcome.append(False)
