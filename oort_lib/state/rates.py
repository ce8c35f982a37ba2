"""Upload rates and timetables as `bwlimit` (the config's, or `--bwlimit`) writes them,
read into numbers; run/bandwidth.py keeps a run to them.

A timetable is in the style of rclone's: `"08:00,off 19:00,1M 23:30,off"` (from 08:00 no
limit, from 19:00 1 MiB/s, from 23:30 no limit again; before the first time of the day,
the last entry of the day applies).

Rates are bytes per second with binary suffixes, as rclone reads them: `512k` is
512 KiB/s, `4M` 4 MiB/s, `1G` 1 GiB/s; a bare number is KiB/s; `off` or `0` is no limit.
"""

from __future__ import annotations

import re

from oort_lib.errors import ConfigError

_UNITS = {"b": 1, "k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4}


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
