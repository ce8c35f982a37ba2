"""How many uploads a run keeps in flight: a window that grows while the server keeps up
and shrinks when it says it cannot (429, 503), like TCP's congestion window.

One request at a time leaves a slow link idle for the whole round trip of each answer; a
fixed number of workers is right for one link and one server only, and a user cannot
guess it. So, unless `--jobs` pins it, the window starts small, doubles each round while
every upload succeeds (slow start), then grows by one per round; a throttle halves it
(once per round: a burst of 429s is one signal, not ten) and it grows again from there.
It never exceeds HIGH: more connections than that to one server is a denial of service,
not a speed-up.
"""

from __future__ import annotations

import threading
from typing import NamedTuple

HIGH = 16  # connections to one server, at most
START = 2  # the first round: two uploads in flight


class Shape(NamedTuple):
    """What the window did over a run (shown by `run -v`)."""

    pinned: bool  # --jobs (or `jobs` in the config) fixed it
    size: int  # at the end
    peak: int  # the largest it reached
    halved: int  # times a throttle (429, 503) halved it

    def describe(self) -> str:
        """One line for `run -v`."""
        if self.pinned:
            return f"Uploads in flight: {self.size} (fixed by --jobs or `jobs`)."
        after = (f", halved {self.halved} time{'s' if self.halved != 1 else ''} by the "
                 f"server's 429/503, {self.size} at the end") if self.halved else ""
        return f"Uploads in flight: up to {self.peak} (adaptive, at most {HIGH}{after})."


class Window:
    """The number of uploads allowed in flight; thread-safe. `pinned` fixes the size
    (`--jobs`); otherwise it adapts between 1 and `high`, starting at `start`."""

    def __init__(self, pinned: int | None = None, *, start: int = START, high: int = HIGH):
        self.pinned = pinned is not None
        self.high = max(1, pinned if pinned is not None else high)
        self._size = max(1, min(self.high, pinned if pinned is not None else start))
        self._threshold = self.high  # slow start below it
        self._in_flight = 0
        self._done_in_round = 0  # successes since the size last changed
        self._quiet = 0  # completions to wait before a throttle may halve again
        self._peak = self._size
        self._halved = 0
        self._cond = threading.Condition()

    @property
    def size(self) -> int:
        return self._size

    @property
    def capacity(self) -> int:
        """The most it can ever allow: the pool of workers and connections to size."""
        return self.high

    def acquire(self, timeout: float | None = None) -> bool:
        """Wait for room for one more upload; False if `timeout` passed first."""
        with self._cond:
            ok = self._cond.wait_for(lambda: self._in_flight < self._size, timeout)
            if ok:
                self._in_flight += 1
            return ok

    def release(self, succeeded: bool = True) -> None:
        """An upload ended (`succeeded`: the server took it or already had it)."""
        with self._cond:
            self._in_flight = max(0, self._in_flight - 1)
            if self._quiet:
                self._quiet -= 1
            if succeeded and not self.pinned:
                self._grow()
            self._cond.notify_all()

    def throttled(self) -> None:
        """The server answered 429 or 503: halve the window, once per round."""
        if self.pinned:
            return
        with self._cond:
            if self._quiet:
                return
            self._size = max(1, self._size // 2)
            self._threshold = max(1, self._size)
            self._halved += 1
            self._done_in_round = 0
            # The uploads already in flight were sent at the old size: their throttles
            # are the same signal.
            self._quiet = max(1, self._in_flight)

    def _grow(self) -> None:
        self._done_in_round += 1
        # Slow start: one more per success (the size doubles each round); past the
        # threshold, one more per round of `size` successes.
        step = 1 if self._size < self._threshold else self._size
        if self._done_in_round >= step and self._size < self.high:
            self._size += 1
            self._done_in_round = 0
            self._peak = max(self._peak, self._size)

    def shape(self) -> Shape:
        """What the window did so far."""
        with self._cond:
            return Shape(self.pinned, self._size, self._peak, self._halved)
