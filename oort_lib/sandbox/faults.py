"""Fault injection: the sandbox misbehaves on purpose so the client's retry logic is tested.

Every request (except the ``/_sandbox/`` admin paths) draws its faults from one seeded
``random.Random``, so a test that sets ``seed`` gets the same sequence of faults each time
it sends the same sequence of requests.
"""

from __future__ import annotations

import random
import re
import threading
from dataclasses import dataclass, field, fields

ADMIN_PREFIX = "/_sandbox/"


class DropConnection(Exception):
    """Raised by the app to make the server abort the TCP connection without an answer.

    The server answers it by closing the socket with a reset, so the client sees a
    connection error (never a hang, never a half answer it could mistake for success).
    """


@dataclass
class Plan:
    """What goes wrong with one request, decided before it is processed."""

    error: int | None = None  # 500/502/503 answered before processing
    throttle: bool = False  # 429 answered before processing
    reset: bool = False  # uploads: read part of the body, then reset the connection
    lost: str | None = None  # "502" or "drop": processed, but the answer never arrives
    delay: float = 0.0  # seconds slept after processing, before answering
    # Uploads: the whole body read, nothing stored, 400 {"detail": this} ("{filename}" in
    # it becomes the name received).
    refusal: str | None = None


@dataclass
class Faults:
    """Fault rates, read by every request; tests may change any field while serving."""

    error_rate: float = 0.0
    lost_answer_rate: float = 0.0
    throttle_rate: float = 0.0
    retry_after: float = 1
    reset_rate: float = 0.0
    latency: float = 0.0
    slow_rate: float = 0.0
    slow_delay: float = 5.0
    seed: int = 0
    paths: str = ""
    # A refusal every upload gets (see Plan.refusal): how a server's own words, such as
    # "storage quota reached", reach the client. "" answers normally.
    upload_refusal: str = ""
    # How list pages write their ``next`` links: "normal"; "other-host" (another origin,
    # which a client must never send its key to); "no-prefix" (drops the ``/api`` prefix
    # of a request served under it, as a proxy in front of Arcsecond.local may).
    next_links: str = "normal"
    # Seconds added to the clock of every answer's `Date` header (negative: behind): a
    # server whose clock is wrong, for `doctor`'s clock check. Nothing else uses it.
    clock_skew: float = 0.0
    _rng: random.Random = field(init=False, repr=False, compare=False)
    _rng_seed: int = field(init=False, repr=False, compare=False)
    _lock: threading.Lock = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._rng_seed = self.seed
        self._rng = random.Random(self.seed)

    # --- configuration --------------------------------------------------------------------

    def as_dict(self) -> dict[str, object]:
        return {f.name: getattr(self, f.name) for f in _public_fields()}

    def update(self, values: dict[str, object]) -> None:
        """Set several fields at once, checked first so a bad value changes nothing."""
        checked: dict[str, object] = {}
        known = {f.name: f for f in _public_fields()}
        for name, value in values.items():
            if name not in known:
                raise ValueError(f"Unknown fault setting: {name!r}.")
            checked[name] = _check(name, value)
        for name, value in checked.items():
            setattr(self, name, value)

    def clear(self) -> None:
        """Back to a well-behaved server (the random sequence restarts from ``seed``)."""
        defaults = Faults()
        for f in _public_fields():
            setattr(self, f.name, getattr(defaults, f.name))
        with self._lock:
            self._rng_seed = self.seed
            self._rng = random.Random(self.seed)

    def retry_after_header(self) -> str:
        value = max(0.0, float(self.retry_after))
        return str(int(value)) if value == int(value) else f"{value:g}"

    # --- per request ----------------------------------------------------------------------

    def applies(self, path: str) -> bool:
        if path.startswith(ADMIN_PREFIX):
            return False
        pattern = self.paths
        if not pattern:
            return True
        try:
            return re.search(pattern, path) is not None
        except re.error:
            return False

    def plan(self, path: str, upload: bool) -> Plan:
        """Roll the dice for one request; the order of rolls is fixed for reproducibility."""
        if not self.applies(path):
            return Plan()
        plan = Plan(delay=max(0.0, float(self.latency)),
                    refusal=(self.upload_refusal or None) if upload else None)
        with self._lock:
            if self._rng_seed != self.seed:
                self._rng_seed = self.seed
                self._rng = random.Random(self.seed)
            rng = self._rng
            if _hit(rng, self.error_rate):
                plan.error = rng.choice((500, 502, 503))
            elif _hit(rng, self.throttle_rate):
                plan.throttle = True
            elif upload and _hit(rng, self.reset_rate):
                plan.reset = True
            elif _hit(rng, self.lost_answer_rate):
                plan.lost = rng.choice(("502", "drop"))
            if _hit(rng, self.slow_rate):
                plan.delay += max(0.0, float(self.slow_delay))
        return plan


def _hit(rng: random.Random, rate: float) -> bool:
    return rate > 0 and rng.random() < rate


def _public_fields():
    return [f for f in fields(Faults) if not f.name.startswith("_")]


NEXT_LINKS = ("normal", "other-host", "no-prefix")


def _check(name: str, value: object) -> object:
    if name == "next_links":
        if value not in NEXT_LINKS:
            raise ValueError(f"next_links must be one of {', '.join(NEXT_LINKS)}.")
        return value
    if name == "upload_refusal":
        if not isinstance(value, str):
            raise ValueError("upload_refusal must be a string (the refusal's detail).")
        return value
    if name == "paths":
        if not isinstance(value, str):
            raise ValueError("paths must be a string (a regular expression).")
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"paths is not a valid regular expression: {exc}.") from None
        return value
    if name == "seed":
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError("seed must be an integer.")
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{name} must be a number.")
    if name == "clock_skew":  # ahead or behind, within a few years of the real clock
        if not -1e8 <= value <= 1e8:
            raise ValueError("clock_skew must be between -1e8 and 1e8 seconds.")
        return float(value)
    if value < 0:
        raise ValueError(f"{name} must not be negative.")
    if name.endswith("_rate") and value > 1:
        raise ValueError(f"{name} is a fraction between 0 and 1.")
    return float(value)
