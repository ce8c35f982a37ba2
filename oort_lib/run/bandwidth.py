"""A cap on the total upload rate of a run, across all its workers (`--bwlimit`,
`bwlimit` in the config), optionally by time of day: the rates and timetables are read
by state/rates.py (the config checks them when it is loaded), kept to here.

The limiter is one shared bucket: every chunk a worker is about to send takes its share
first (see uploader.Uploader._sent, called by the upload body before each chunk leaves),
so four workers together keep to the rate.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from oort_lib.errors import Aborted
from oort_lib.state.rates import parse, parse_rate

# parse and parse_rate (state/rates.py) are reached through here too, where the run
# (sync.py), `--bwlimit` (cli.py) and the benchmark look for them.
__all__ = ["BURST_SECONDS", "Limiter", "describe", "parse", "parse_rate", "rate_at"]

# How much a bucket may hold unused: enough to keep a worker's chunk flowing, little
# enough that a pause does not turn into a burst above the rate.
BURST_SECONDS = 0.25


def rate_at(table, minute: int) -> float | None:
    """The rate in force at `minute` of the day (the last entry at or before it, else
    the last of the day before)."""
    current = table[-1][1]
    for start, rate in table:
        if start <= minute:
            current = rate
    return current


def describe(table) -> str:
    def rate(value):
        if value is None:
            return "no limit"
        for unit, size in (("G", 1024**3), ("M", 1024**2), ("k", 1024)):
            if value >= size:
                return f"{value / size:g}{unit}B/s"
        return f"{value:g} B/s"

    if len(table) == 1 and table[0][0] == 0:
        return rate(table[0][1])
    return ", ".join(f"from {m // 60:02d}:{m % 60:02d} {rate(r)}" for m, r in table)


class Limiter:
    """One bucket shared by the workers of a run: `take(n)` returns once n bytes may
    leave without the total going over the rate in force (`table` at the local time)."""

    def __init__(self, table, *, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] | None = None,
                 minute: Callable[[], int] | None = None):
        self.table = table
        self._clock = clock
        self._sleep = sleep
        self._minute = minute or _local_minute
        self._lock = threading.Lock()
        self._next = clock()  # when the bucket is next empty of debt

    def rate(self) -> float | None:
        return rate_at(self.table, self._minute())

    def take(self, nbytes: int, abort: threading.Event | None = None) -> None:
        """Wait for the right to send `nbytes`. Raises Aborted if `abort` is set meanwhile."""
        rate = self.rate()
        if rate is None or nbytes <= 0:
            return
        with self._lock:
            # GCRA: the theoretical time the bytes taken so far have all left.
            now = self._clock()
            self._next = max(self._next, now) + nbytes / rate
            wait = self._next - now - BURST_SECONDS
        if wait <= 0:
            return
        if self._sleep is not None:
            self._sleep(wait)
        elif abort is not None:
            if abort.wait(wait):
                raise Aborted()
        else:
            time.sleep(wait)


def _local_minute() -> int:
    now = time.localtime()
    return now.tm_hour * 60 + now.tm_min
