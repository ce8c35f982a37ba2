"""A cap on the total upload rate of a run, across all its workers (`--bwlimit`,
`bwlimit` in the config), optionally by time of day in the style of rclone's timetable:
`"08:00,off 19:00,1M 23:30,off"` (from 08:00 no limit, from 19:00 1 MiB/s, from 23:30
no limit again; before the first time of the day, the last entry of the day applies).

Rates are bytes per second with binary suffixes, as rclone reads them: `512k` is
512 KiB/s, `4M` 4 MiB/s, `1G` 1 GiB/s; a bare number is KiB/s; `off` or `0` is no limit.

The limiter is one shared bucket: every chunk a worker is about to send takes its share
first (see uploader.Uploader._sent, called by the upload body before each chunk leaves),
so four workers together keep to the rate.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable

from oort_lib.errors import Aborted, ConfigError

_UNITS = {"b": 1, "k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4}
# How much a bucket may hold unused: enough to keep a worker's chunk flowing, little
# enough that a pause does not turn into a burst above the rate.
BURST_SECONDS = 0.25


def parse_rate(text: str) -> float | None:
    """Bytes per second from `512k`, `4M`, `1.5M`, `100` (KiB/s); None for `off`/`0`.

    Raises ConfigError for anything else."""
    raw = text.strip()
    if raw.lower() in ("off", "0", "none", ""):
        return None
    found = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([bBkKmMgGtT]?)(?:i?B)?(?:/s)?", raw)
    if not found:
        raise ConfigError(f"bandwidth {text!r}: write a rate such as 512k, 4M or off.")
    number, unit = float(found.group(1)), (found.group(2) or "k").lower()
    rate = number * _UNITS[unit]
    return rate if rate > 0 else None


def parse(text: str) -> tuple[tuple[int, float | None], ...]:
    """The timetable: ((minute of the day, rate or None), ...) sorted by time.

    A single rate (`4M`) is ((0, rate),). Raises ConfigError naming the bad entry."""
    text = text.strip()
    if "," not in text:
        return ((0, parse_rate(text)),)
    table = {}
    for entry in text.split():
        when, _, rate = entry.partition(",")
        found = re.fullmatch(r"([01]?\d|2[0-3]):([0-5]\d)", when)
        if not found or not rate:
            raise ConfigError(f"bandwidth timetable entry {entry!r}: write HH:MM,RATE "
                              "(e.g. \"08:00,off 19:00,1M 23:30,off\").")
        table[int(found.group(1)) * 60 + int(found.group(2))] = parse_rate(rate)
    return tuple(sorted(table.items()))


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
