"""When a file that failed is tried again: the backoff of transient failures, and the
retry times a wrong clock set (pure rules, no I/O)."""

from __future__ import annotations

# A file whose upload failed for a transient reason (remote or local) waits
# `retry_delay` (a setting), doubled per failure, up to this. A `retry_at` further than
# this from now was set by a clock that was wrong (ahead then, or behind now): retried.
RETRY_MAX = 6 * 3600.0


def backoff(retry_delay: float, attempts: int) -> float:
    """Seconds a file waits after its `attempts`-th failure (0 for the first)."""
    return min(RETRY_MAX, retry_delay * 2 ** min(attempts, 12))


def waits(known, now: float) -> bool:
    """True while a failed file must wait: permanent failures (until --retry-failed or a
    change), transient ones until their retry time, which is never believed further than
    RETRY_MAX from now (a clock set a year ahead at the failure must not hold a file for
    a year once it is fixed)."""
    if not known.transient:
        return True
    retry_at = known.retry_at or 0
    return now < retry_at <= now + RETRY_MAX
