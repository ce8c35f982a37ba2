"""The Arcsecond HTTP client: the only place in oort_lib that speaks HTTP.

One requests session (shared connections, timeouts on every request), retries with
exponential backoff and jitter for what is transient, and every failure turned into one
of the error classes of errors.py with a message a person can act on (failure.py says
which). It knows URLs, keys, pages and errors, not API generations: gen2021 and gen2026
build on it.

Key hygiene: redirects are never followed (requests would carry the key header to
whatever host a 3xx names); `next` links are rebuilt onto the configured base, so the
key only ever goes to the configured origin; error texts are scrubbed of the key.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from urllib.parse import quote, urlsplit, urlunsplit

import requests

from oort_lib import __version__
from oort_lib.arcsecond.address import check_base_url, check_resolved, needs_resolving
from oort_lib.arcsecond.body import FileBody
from oort_lib.arcsecond.budget import Budget
from oort_lib.arcsecond.deadline import Deadline, WatchedAdapter
from oort_lib.arcsecond.failure import Failed, decoded, failed, redirected, refusal
from oort_lib.errors import (
    Aborted,
    FileProblem,
    MalformedAnswer,
    PermanentError,
    ServerUnreachable,
    TransientError,
)

log = logging.getLogger("oort_sync.api")  # a child of the log file's logger

# The largest answer read: a page of 500 objects is ~1 MB. Past this, a proxy or a broken
# server is talking, and holding it all in memory is the failure.
MAX_ANSWER = 16 << 20

KEY_HEADER = "X-Arcsecond-API-Authorization"
USER_AGENT = f"oort-sync/{__version__} (+https://github.com/arcsecond-io)"


class _KeyAuth(requests.auth.AuthBase):
    """Adds the key header. Also stops requests from looking up ~/.netrc for our host."""

    def __init__(self, key: str | None):
        self.key = key

    def __call__(self, request):
        if self.key:
            request.headers[KEY_HEADER] = f"Key {self.key}"
        return request


class _NoKey(requests.auth.AuthBase):
    """Sends no key header: for the password and key-verification calls, whose body
    carries the credentials (the official client excludes the header there too)."""

    def __call__(self, request):
        return request


NO_KEY = _NoKey()


class Client:
    """One API server, one key, one pooled session. Thread-safe for the upload workers."""

    def __init__(
        self,
        base_url: str,
        key: str | None = None,
        *,
        connect_timeout: float = 10.0,
        read_timeout: float = 60.0,
        retries: int = 4,
        backoff_base: float = 0.5,
        backoff_max: float = 30.0,
        pool_size: int = 8,
        stop: threading.Event | None = None,
        halt: threading.Event | None = None,
        allow_http: bool = False,
        budget: Budget | None = None,
    ):
        """`stop` cuts every request in flight (uploads too) and ends retries; `halt`
        cuts the others only (an upload in flight gets the run's grace period); `budget`
        (a run's) ends all sending after a few throttles or timeouts in a row.

        Raises ConfigError for a URL that address.check_base_url refuses."""
        self.base = check_base_url(base_url, allow_http=allow_http)
        self._unresolved = needs_resolving(self.base)
        self.key = key
        self.timeout = (connect_timeout, read_timeout)
        self.retries = retries
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.stop = stop or threading.Event()
        self.halt = halt
        self.budget = budget or Budget(None)
        # Whole answer, not only between two bytes: see deadline.py.
        self.deadline = connect_timeout + read_timeout
        self.max_answer = MAX_ANSWER
        self.session = requests.Session()
        self.session.verify = True  # never turned off, whatever the environment says
        self.session.auth = _KeyAuth(key)
        self.session.headers["User-Agent"] = USER_AGENT
        self.session.headers["Accept"] = "application/json"
        adapter = WatchedAdapter(pool_connections=2, pool_maxsize=pool_size, max_retries=0)
        self.session.mount("https://", adapter)
        self.session.mount("http://", adapter)
        parts = urlsplit(self.base)
        self._origin = parts[:2]
        self._base_path = parts.path.rstrip("/")
        # The `Date` header of the last answer, and this machine's clock when it came
        # (clock_offset): a refusal's answer counts, the server's clock is in all of them.
        self._dated: tuple[str, float] | None = None

    @classmethod
    def from_settings(cls, settings, key: str | None = None, *, api: str | None = None,
                      allow_http: bool | None = None, **extra) -> Client:
        """A client with the timeouts and retry policy of config.Settings."""
        return cls(
            api or settings.api,
            key,
            allow_http=settings.allow_http if allow_http is None else allow_http,
            connect_timeout=settings.connect_timeout,
            read_timeout=settings.read_timeout,
            retries=settings.retries,
            backoff_base=settings.backoff_base,
            backoff_max=settings.backoff_max,
            **extra,
        )

    def close(self) -> None:
        self.session.close()

    # --- the one request loop ----------------------------------------------------------

    def _url(self, path: str) -> str:
        return path if path.startswith(("http://", "https://")) else self.base + path

    def rebase(self, link: str) -> str:
        """A server-given link (`next`) moved onto the configured base: its path and
        query kept, its scheme and host replaced by ours, the base path (`/api` of
        Arcsecond.local) added when a proxy dropped it."""
        parts = urlsplit(link)
        path = parts.path or "/"
        if self._base_path and not (path + "/").startswith(self._base_path + "/"):
            path = self._base_path + path
        return urlunsplit((*self._origin, path, parts.query, ""))

    def request(
        self,
        method: str,
        path: str,
        *,
        idempotent: bool = True,
        expect_json: bool = True,
        **kwargs,
    ):
        """One API call with retries; returns the decoded JSON (or None for no body).

        Non-idempotent calls (creations) are retried only when the request surely did
        not reach the server; otherwise the TransientError goes to the caller, who must
        look (list) before trying again.

        Raises AuthError (401/403), NotFound (404), AlreadyExists (an upload whose body's
        file the server says is there), PermanentError (other 4xx), TransientError
        (5xx/429/timeouts after retries), ServerUnreachable (no answer at all after
        retries, or a LAN name that resolves to nothing), InsecureAddress (plain http:// to
        a name that resolves to a public address: address.check_resolved), PlainHttpServer
        (an https:// URL of a server speaking plain http: probe.py); and, untouched and
        never retried, what an upload body raises (Aborted, FileChanged, NotPlanned,
        ChecksumMismatch, LocalTransient: see body.py).
        """
        url = self._target(path, kwargs)
        body_factory = kwargs.pop("body_factory", None)
        answered = False
        last: Exception | None = None
        for attempt in range(self.retries + 1):
            if attempt:
                if self.stop.is_set():
                    break
                self._sleep(attempt, last)
            self.budget.check()  # spent by this run's workers: nothing more is sent
            body = None
            if body_factory is not None:
                body = body_factory()
                kwargs["data"] = body
                kwargs.setdefault("headers", {})["Content-Type"] = body.content_type
            outcome = self._attempt(method, url, path, body, kwargs)
            if isinstance(outcome, Failed):
                if outcome.strike:
                    self.budget.strike(self.base, outcome.error)
                last = outcome.error
                if outcome.reached:
                    answered = True
                    if not idempotent:
                        raise last
                continue
            answered = True
            response, content = outcome
            status = response.status_code
            if 300 <= status < 400:
                raise redirected(self.base, method, path, response, self.key)
            if status < 400:
                self.budget.answered()
                return decoded(response, content, method, path, expect_json, self.key)
            error = refusal(response, method, path, self.key,
                            body.names if body is not None else None)
            if not isinstance(error, TransientError):
                self.budget.answered()
                raise error
            last = error
            self.budget.throttled(self.base, error)
            if not idempotent and status not in (429, 503):
                raise error
        if last is None:
            last = TransientError(f"{method} {path}: stopped before an answer")
        if not answered:
            raise ServerUnreachable(
                f"{self.base} is unreachable after {self.retries + 1} attempts ({last}).",
            )
        self.budget.gave_up(self.base, last)
        raise last

    def _target(self, path: str, kwargs: dict) -> str:
        """The URL of `path`, once it is sure the key may go there; sets the options
        every request is sent with in `kwargs`. Raises PermanentError for another host,
        and what address.check_resolved raises."""
        if self._unresolved:
            check_resolved(self.base)  # before the key goes in clear to a LAN name
            self._unresolved = False
        url = self._url(path)
        if urlsplit(url)[:2] != self._origin:
            # Only rebase()d links reach here; anything else is a bug, not a request.
            raise PermanentError(f"Refused to send the key to another host ({url}).")
        kwargs["allow_redirects"] = False
        kwargs["stream"] = True  # the answer is read here, against the deadline and the cap
        return url

    def _attempt(self, method: str, url: str, path: str, body: FileBody | None,
                 kwargs: dict) -> tuple[requests.Response, bytes] | Failed:
        """Send once: the answer and its whole body, or what failed (failure.failed).
        Raises Aborted, what the body raises for its file, what failure.failed and
        _read raise."""
        watch = self._deadline(body)
        response = None
        try:
            with watch:
                response = self.session.request(method, url, timeout=self.timeout, **kwargs)
                date = response.headers.get("Date")
                if date:
                    self._dated = (date, time.time())
                return response, self._read(response, method, path)
        except (Aborted, FileProblem):
            # The stop, or the body refusing to go on (the file moved, a checksum,
            # a disk error): never retried here, never taken for a network failure.
            raise
        except (requests.exceptions.RequestException, OSError) as exc:
            return failed(exc, watch, self.base, method, path, self.timeout[1])
        finally:
            if response is not None:
                response.close()
            if body is not None:
                body.close()

    def clock_offset(self) -> float | None:
        """How many seconds the server's clock is ahead of this machine's (negative:
        behind), from the `Date` header of the last answer and the moment it came; None
        before any answer, or when it had no readable `Date`. The header has whole
        seconds: the offset is good to about a second. Raises nothing."""
        if self._dated is None:
            return None
        from email.utils import parsedate_to_datetime

        header, received = self._dated
        try:
            then = parsedate_to_datetime(header)
        except (TypeError, ValueError, IndexError, OverflowError):
            return None
        if then.tzinfo is None:  # "-0000": RFC 5322's "UTC, source unknown"
            from datetime import timezone

            then = then.replace(tzinfo=timezone.utc)
        # The header's clock is cut to the second: the middle of that second is the
        # best guess of the server's time when it answered.
        return then.timestamp() + 0.5 - received

    def _deadline(self, body: FileBody | None) -> Deadline:
        if body is None:
            return Deadline(self.deadline, stops=(self.stop, self.halt))
        # An upload: the clock starts once the body is sent (see Deadline).
        return Deadline(self.timeout[1], stops=(self.stop,),
                        starts=lambda: bool(body.complete),
                        stalled=lambda: time.monotonic() - body.moved)

    def _read(self, response: requests.Response, method: str, path: str) -> bytes:
        """The whole body of an answer, at most max_answer bytes (raises TransientError
        past that: a huge answer is a proxy or a broken server, not a list)."""
        chunks, size = [], 0
        for chunk in response.iter_content(1 << 16):
            size += len(chunk)
            if size > self.max_answer:
                raise TransientError(
                    f"{method} {path}: the server's answer is larger than "
                    f"{self.max_answer >> 20} MiB; not read further.", response.status_code)
            chunks.append(chunk)
        content = b"".join(chunks)
        response._content = content  # so .json() and .text work on what was read
        return content

    def _sleep(self, attempt: int, last: Exception | None) -> None:
        delay = min(self.backoff_max, self.backoff_base * 2 ** (attempt - 1))
        delay = delay * (0.5 + random.random() / 2)  # jitter: workers do not retry in step
        wanted = getattr(last, "retry_after", None)
        if wanted is not None:
            # Honoured up to the longest backoff: a `Retry-After: 86400` must not hold
            # the lock for a day. The next run (a few minutes later) tries again.
            delay = min(max(delay, wanted), self.backoff_max)
        status = getattr(last, "status", None)
        after = f" HTTP {status}" if status else ""
        level = logging.INFO if delay >= 5 else logging.DEBUG
        log.log(level, "retrying in %.2f s after%s: %s", delay, after, last)
        self.budget.pause(delay, self.stop)

    # --- lists ---------------------------------------------------------------------------

    def list(self, path: str, params: dict | None = None) -> list[dict]:
        """All entries of a list endpoint: see listing.walk (and what it raises)."""
        from oort_lib.arcsecond.listing import walk

        return walk(self, path, params)

    # --- what both generations share -----------------------------------------------------

    def organisation(self, subdomain: str) -> dict:
        return self.request("GET", f"/organisations/{quote(subdomain, safe='')}/")

    def telescopes(self, organisation: str | None) -> list[dict]:
        return self.list(prefix(organisation) + "/telescopes/")

    def telescope(self, organisation: str | None, ident: str) -> dict:
        """Raises MalformedAnswer for an answer that is not a telescope with a uuid."""
        from oort_lib.arcsecond.listing import entry

        path = f"{prefix(organisation)}/telescopes/{quote(ident, safe='')}/"
        return entry(self.request("GET", path), "the server's telescope", path, listed=False)

    def find(self, organisation: str | None, kind: str, filters: dict) -> list[dict]:
        return self.list(f"{prefix(organisation)}/{kind}/", params=filters)

    def create(self, organisation: str | None, kind: str, body: dict) -> dict:
        """POST a new object. A TransientError here may hide a success: list before retrying."""
        created = self.request("POST", f"{prefix(organisation)}/{kind}/", json=body,
                               idempotent=False)
        if not isinstance(created, dict) or not created.get("uuid"):
            raise MalformedAnswer(f"POST {kind}: the server's answer has no uuid.")
        return created

    def send_file(self, url: str, body_factory: Callable[[], FileBody], *,
                  method: str = "POST") -> str:
        """Stream a multipart body made by `body_factory`; returns the hash
        (digest.new_hash) of the file bytes sent, so the file is read only once.

        Raises AlreadyExists when the server says this file's name is taken, Aborted
        when the body's abort event is set, what the body raises for the file (FileChanged,
        NotPlanned, ChecksumMismatch, LocalTransient: the body was cut before its end, so
        nothing is stored), and the request() errors otherwise. Not retried blindly:
        whether the server kept the file is only known by looking (or by its duplicate
        answer).
        """
        bodies: list[FileBody] = []

        def body() -> FileBody:
            bodies.append(body_factory())
            return bodies[-1]

        self.request(method, url, idempotent=False, body_factory=body, expect_json=False)
        if not bodies or not bodies[-1].complete:
            raise TransientError("the server answered before the whole file was sent")
        return bodies[-1].hexdigest()


def prefix(organisation: str | None) -> str:
    """The path prefix of an organisation's routes ("" for the personal account)."""
    return f"/{quote(organisation, safe='')}" if organisation else ""
