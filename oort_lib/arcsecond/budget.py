"""The run's budget of requests the server throttles or leaves unanswered.

A client's retries bound one request, not a run: a 429 with a long Retry-After on every
request, or a server that accepts connections and never answers, would hold the run (and
its lock) for a time linear in the number of files and datasets (hours for a thousand
files, past the systemd unit's limit). So the workers of a run share one Budget: a few
strikes in a row, with no answer in between, and nothing more is sent this run. The
files not sent stay pending for the next run (exit code 4, said once like other outages).

A strike is an attempt that got no answer in time (connect, read or total deadline: each
one costs a whole timeout), a throttle (429) asking for a second or more (or not saying
how long: each one costs a backoff), and a request that gave up throttled however
briefly it was asked to wait. An answer (2xx, 3xx, 4xx but 429) starts the row again; a 5xx
neither counts nor clears it.
"""

from __future__ import annotations

import logging
import threading
import time

from oort_lib.errors import ServerBusy, TransientError

log = logging.getLogger("oort_sync.api")

STRIKES = 3  # in a row, across all the workers of a run
BRIEF = 1.0  # seconds: a throttle asking for less is the server pacing us, not busy
TICK = 0.1  # how often a pause looks whether the budget is spent meanwhile


class Budget:
    """Shared by the workers of one client (thread-safe). `strikes` None never runs out
    (the commands other than `run`: one request at a time, bounded by its retries)."""

    def __init__(self, strikes: int | None = STRIKES, on_busy=None):
        self.strikes = strikes
        # Told of every 429 or 503 (the run's window of uploads in flight shrinks on it).
        self.on_busy = on_busy
        self.spent = threading.Event()
        self._row = 0
        self._message: str | None = None
        self._guard = threading.Lock()

    def check(self) -> None:
        """Before a request is sent. Raises ServerBusy once the budget is spent."""
        if self._message is not None:
            raise ServerBusy(self._message)

    def answered(self) -> None:
        """The server answered a request (not a throttle): the row starts again."""
        if self._row:
            with self._guard:
                self._row = 0

    def throttled(self, base: str, error: TransientError) -> None:
        """An attempt answered 429 or 5xx (`error`, with its `retry_after`): a 429 asking
        for BRIEF or more (or not saying) is a strike. Raises ServerBusy when this spends
        the budget."""
        wait = getattr(error, "retry_after", None)
        if self.on_busy is not None and getattr(error, "status", None) in (429, 503):
            self.on_busy()
        if _throttle(error) and (wait is None or wait >= BRIEF):
            self.strike(base, error)

    def gave_up(self, base: str, error: Exception) -> None:
        """A request ends with `error` after its retries. Raises ServerBusy when this
        spends the budget: throttled to the last, however briefly (not counted by
        attempt), it is a strike."""
        wait = getattr(error, "retry_after", None)
        if _throttle(error) and wait is not None and wait < BRIEF:
            self.strike(base, error)

    def strike(self, base: str, error: TransientError) -> None:
        """A throttle or a timeout (`error`). Raises ServerBusy when this spends the
        budget (and for every request after it)."""
        with self._guard:
            if self._message is None and self.strikes is not None:
                self._row += 1
                if self._row >= self.strikes:
                    self._message = (
                        f"{base} is busy or unresponsive: {self._row} requests in a row were "
                        f"throttled or got no answer in time (the last: "
                        f"{error.message.rstrip('.')}). Nothing more is sent this run; the "
                        "remaining files wait for the next one.")
                    log.warning("%s", self._message)
                    self.spent.set()
        self.check()

    def pause(self, seconds: float, stop: threading.Event) -> None:
        """Wait `seconds`, less when `stop` is set or the budget is spent meanwhile (a
        worker waiting out a Retry-After must not send once the run has given up)."""
        end = time.monotonic() + seconds
        while not (stop.is_set() or self.spent.is_set()):
            left = end - time.monotonic()
            if left <= 0:
                return
            stop.wait(min(left, TICK))


def _throttle(error: Exception) -> bool:
    """A 429. A 5xx is a server error, even with a Retry-After (a 503 "try again later"):
    its file fails and waits (exit code 1), as it always did."""
    return getattr(error, "status", None) == 429
