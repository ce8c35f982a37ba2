"""Traps: one chosen request misbehaves, or waits, so that a test acts at a known moment.

Faults (faults.py) strike at random rates. A trap strikes the `nth` request matching a
method and a path pattern (counted from when the trap is set), and the `times - 1`
matching requests after it, and counts its strikes, so a test knows a fault was really
injected. What a strike does (`action`):

  error        a 5xx answer (`status`, 500 unless told), the request not processed
  throttle     429 with `Retry-After` (`retry_after` seconds), not processed
  reset        the connection reset before the request is processed (an upload: before
               its body is read)
  lost         processed (a create created, an upload stored), then the connection reset
               without the answer
  slow         processed; the answer's headers at once, its body one byte every `delay`
               seconds (an answer without a body, such as a 204, comes 40 x `delay` late)
  hold         held as it arrives, nothing read nor processed, until `release()`;
               `release(drop=True)` then resets it without processing it
  hold-answer  processed, its answer held until `release()`; with `drop=True` the answer
               is never sent (as "lost")
  answered     answered normally; `reached` is set once its last byte is written

`reached` is set at the first strike (for "answered", once that answer is out), so a test
waits for the moment, acts (a SIGKILL to the client), then releases what is held;
`answers` keeps the answers the struck requests were given (or, held or lost, would have
been given), such as the datafile an upload stored.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable

from werkzeug.wrappers import Response
from werkzeug.wsgi import ClosingIterator

from oort_lib.sandbox.faults import DropConnection
from oort_lib.sandbox.responses import json_response

ACTIONS = ("error", "throttle", "reset", "lost", "slow", "hold", "hold-answer", "answered")


class Trap:
    """One trap; see the module's docstring. Raises ValueError for an unknown action."""

    def __init__(self, action: str, method: str, path: str, *, nth: int = 1, times: int = 1,
                 status: int = 500, retry_after: str = "1", delay: float = 0.25):
        if action not in ACTIONS:
            raise ValueError(f"Unknown trap action {action!r}: use one of {', '.join(ACTIONS)}.")
        if nth < 1 or times < 1:
            raise ValueError("nth and times count requests from 1.")
        self.action = action
        self.method = method.upper()
        self.path = re.compile(path)
        self.nth, self.times = nth, times
        self.status, self.retry_after, self.delay = status, retry_after, delay
        self.seen = 0  # requests that matched
        self.hits = 0  # requests struck: the faults really injected
        self.answers: list[bytes] = []  # the bodies of the struck requests' answers
        self.reached = threading.Event()
        self._released = threading.Event()
        self._drop = False

    def __repr__(self) -> str:
        return (f"Trap({self.action} {self.method} {self.path.pattern} #{self.nth}"
                f"x{self.times}: {self.hits} hit)")

    def release(self, drop: bool = False) -> None:
        """Let a held request go on (`drop`: reset its connection instead)."""
        self._drop = drop
        self._released.set()

    def wait(self, timeout: float) -> bool:
        """True once the trap has struck (for "answered": once that answer is out)."""
        return self.reached.wait(timeout)

    # --- called by the app, for the requests this trap strikes ----------------------------

    def _match(self, method: str, path: str) -> bool:
        """Count a request; True if this one is struck."""
        if method != self.method or not self.path.search(path):
            return False
        self.seen += 1
        if not self.nth <= self.seen < self.nth + self.times:
            return False
        self.hits += 1
        return True

    def before(self) -> Response | None:
        """Before processing: an answer instead of processing, or None to go on.
        Raises DropConnection for a reset."""
        if self.action not in ("answered", "hold-answer"):
            self.reached.set()
        if self.action == "error":
            return json_response(self.status, {"detail": "A server error occurred."})
        if self.action == "throttle":
            return json_response(429, {"detail": "Request was throttled. Expected available "
                                       f"in {self.retry_after} seconds."},
                                 {"Retry-After": self.retry_after})
        if self.action == "reset":
            raise DropConnection()
        if self.action == "hold":
            self._hold()
        return None

    def after(self, response: Response, stopping: threading.Event) -> Response:
        """After processing: the answer to send (raises DropConnection to send none)."""
        self.answers.append(response.get_data())
        if self.action == "lost":
            raise DropConnection()
        if self.action == "hold-answer":
            self.reached.set()
            self._hold()
        if self.action == "slow":
            if not response.get_data():  # nothing to trickle (a 204): the whole answer late
                stopping.wait(40 * self.delay)
                return response
            return _trickled(response, self.delay, stopping)
        return response

    def sent(self, body: Iterable[bytes]) -> Iterable[bytes]:
        """The WSGI answer; an "answered" trap is reached when the server has written it
        (the server closes the iterable after its last byte)."""
        if self.action != "answered":
            return body
        return ClosingIterator(body, [self.reached.set])

    def _hold(self) -> None:
        self._released.wait()
        if self._drop:
            raise DropConnection()


class Traps:
    """The traps set on a sandbox; every API request is counted against each."""

    def __init__(self):
        self._lock = threading.Lock()
        self._traps: list[Trap] = []

    def add(self, trap: Trap) -> Trap:
        with self._lock:
            self._traps.append(trap)
        return trap

    def clear(self) -> None:
        """Remove every trap, releasing (and resetting) the requests they hold."""
        with self._lock:
            traps, self._traps = self._traps, []
        for trap in traps:
            trap.release(drop=True)

    def strike(self, method: str, path: str) -> list[Trap]:
        """The traps that strike this request (each one counts it)."""
        with self._lock:
            return [trap for trap in self._traps if trap._match(method, path)]


def _trickled(response: Response, delay: float, stopping: threading.Event) -> Response:
    body = response.get_data()

    def chunks():
        for index in range(len(body)):
            if index and stopping.wait(delay):
                return
            yield body[index:index + 1]

    slow = Response(chunks(), status=response.status, headers=list(response.headers.items()))
    slow.headers["Content-Length"] = str(len(body))
    return slow
