"""The Arcsecond HTTP client: the only module of oort_lib that speaks HTTP.

One requests session (shared connections, timeouts on every request), retries with
exponential backoff and jitter for what is transient, and every failure turned into one
of the error classes of errors.py with a message a person can act on.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from email.utils import parsedate_to_datetime
from urllib.parse import quote, urlsplit

import requests
from requests.adapters import HTTPAdapter

from . import __version__
from .body import FileBody
from .config import check_base_url
from .errors import (
    Aborted,
    AlreadyExists,
    AuthError,
    ConfigError,
    NotFound,
    PermanentError,
    ServerUnreachable,
    TransientError,
)

log = logging.getLogger("oort_sync.api")  # a child of the log file's logger

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


def error_message(response: requests.Response) -> str:
    """The first human message of an error answer, never a raw dump."""
    try:
        data = response.json()
    except ValueError:
        data = None
    found = None
    if isinstance(data, dict):
        for key in ("detail", "error", "non_field_errors", "message"):
            if key in data:
                found = data[key]
                break
        else:
            for key, value in data.items():
                first = value[0] if isinstance(value, list) and value else value
                if isinstance(first, str):
                    found = f"{key}: {first}"
                    break
    elif isinstance(data, list) and data:
        found = data[0]
    if isinstance(found, list):
        found = found[0] if found else None
    if isinstance(found, str) and found.strip():
        return found.strip()[:300]
    return f"HTTP {response.status_code} {response.reason or ''}".strip()


def _retry_after(response: requests.Response | None) -> float | None:
    value = response.headers.get("Retry-After") if response is not None else None
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return None


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
    ):
        """Raises ConfigError for a URL that is not https (or http on loopback)."""
        self.base = check_base_url(base_url)
        self.timeout = (connect_timeout, read_timeout)
        self.retries = retries
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.stop = stop or threading.Event()
        self.session = requests.Session()
        self.session.verify = True  # never turned off, whatever the environment says
        self.session.auth = _KeyAuth(key)
        self.session.headers["User-Agent"] = USER_AGENT
        self.session.headers["Accept"] = "application/json"
        adapter = HTTPAdapter(pool_connections=2, pool_maxsize=pool_size, max_retries=0)
        self.session.mount("https://", adapter)
        self.session.mount("http://", adapter)
        self._origin = urlsplit(self.base)[:2]

    @classmethod
    def from_settings(cls, settings, key: str | None = None, *, api: str | None = None,
                      **extra) -> Client:
        """A client with the timeouts and retry policy of config.Settings."""
        return cls(
            api or settings.api,
            key,
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

        Raises AuthError (401/403), NotFound (404), AlreadyExists, PermanentError (other
        4xx), TransientError (5xx/429/timeouts after retries), ServerUnreachable (no
        answer at all after retries).
        """
        url = self._url(path)
        if urlsplit(url)[:2] != self._origin:
            # A `next` link to another host must never receive the key.
            raise PermanentError(f"The server sent a link to another host ({url}); refused.")
        body_factory = kwargs.pop("body_factory", None)
        answered = False
        last: Exception | None = None
        for attempt in range(self.retries + 1):
            if attempt:
                if self.stop.is_set():
                    break
                self._sleep(attempt, last)
            if body_factory is not None:
                body = body_factory()
                kwargs["data"] = body
                kwargs.setdefault("headers", {})["Content-Type"] = body.content_type
            try:
                response = self.session.request(method, url, timeout=self.timeout, **kwargs)
            except Aborted:
                raise
            except requests.exceptions.ConnectTimeout as exc:
                last = TransientError(f"{self.base}: connection timed out ({type(exc).__name__})")
                continue
            except requests.exceptions.ConnectionError as exc:
                if _aborted(exc):
                    raise Aborted() from None
                sent = _maybe_sent(exc)
                last = TransientError(f"{self.base}: connection failed ({_short(exc)})")
                if sent:
                    answered = True
                    if not idempotent:
                        raise last from None
                continue
            except requests.exceptions.Timeout:
                answered = True
                last = TransientError(f"{self.base}: no answer within {self.timeout[1]:g} s")
                if not idempotent:
                    raise last from None
                continue
            finally:
                if body_factory is not None:
                    kwargs["data"].close()
            answered = True
            status = response.status_code
            if status < 400:
                if not expect_json or status == 204 or not response.content:
                    return None
                try:
                    return response.json()
                except ValueError:
                    raise TransientError(
                        f"{method} {path}: the server answered {status} with a body that "
                        "is not JSON (a proxy page?)",
                        status,
                    ) from None
            message = error_message(response)
            if status in (429, 500, 502, 503, 504) or status >= 500:
                last = TransientError(f"{method} {path}: {message}", status)
                last.retry_after = _retry_after(response)
                if not idempotent and status not in (429, 503):
                    raise last
                continue
            if status == 401:
                raise AuthError(
                    f"The server refused the key ({message}). "
                    "Run `oort-sync login` again, or check ARCSECOND_UPLOAD_KEY.",
                    status,
                )
            if status == 403:
                raise AuthError(f"Permission refused for {path}: {message}", status)
            if status == 404:
                raise NotFound(f"{path}: {message}", status)
            if "already exists in dataset" in message:
                raise AlreadyExists(message, status)
            raise PermanentError(f"{method} {path}: {message}", status)
        if last is None:
            last = TransientError(f"{method} {path}: stopped before an answer")
        if not answered:
            raise ServerUnreachable(
                f"{self.base} is unreachable after {self.retries + 1} attempts ({last}).",
            )
        raise last

    def _sleep(self, attempt: int, last: Exception | None) -> None:
        delay = min(self.backoff_max, self.backoff_base * 2 ** (attempt - 1))
        delay = delay * (0.5 + random.random() / 2)  # jitter: workers do not retry in step
        wanted = getattr(last, "retry_after", None)
        if wanted is not None:
            delay = min(max(delay, wanted), max(self.backoff_max, wanted))
        status = getattr(last, "status", None)
        after = f" HTTP {status}" if status else ""
        log.debug("retrying in %.2f s after%s: %s", delay, after, last)
        self.stop.wait(delay)

    # --- lists ---------------------------------------------------------------------------

    def list(self, path: str, params: dict | None = None) -> list[dict]:
        """All items of a list endpoint: plain array, or paginated object followed to the end."""
        items: list[dict] = []
        data = self.request("GET", path, params=params)
        for _page in range(100_000):
            if isinstance(data, list):
                items.extend(data)
                return items
            if not isinstance(data, dict) or "results" not in data:
                raise PermanentError(f"GET {path}: the server's answer is not a list.")
            items.extend(data["results"] or [])
            if not data.get("next"):
                return items
            data = self.request("GET", data["next"])
        raise PermanentError(f"GET {path}: pagination never ends.")

    # --- accounts ------------------------------------------------------------------------

    def token(self, username: str, password: str) -> str:
        """Exchange a password for a short-lived token. Raises AuthError on bad credentials."""
        try:
            data = self.request(
                "POST", "/auth/token/", json={"username": username, "password": password}
            )
        except PermanentError as exc:
            if exc.status == 400:
                raise AuthError(f"Login refused: {exc.message.split(': ', 1)[-1]}", 400) from None
            raise
        if not isinstance(data, dict) or not data.get("token"):
            raise PermanentError("The server's login answer has no token.")
        return str(data["token"])

    def _with_token(self, token: str, path: str) -> dict:
        data = self.request("GET", path, headers={"Authorization": f"Token {token}"})
        if not isinstance(data, dict):
            raise PermanentError(f"GET {path}: unexpected answer.")
        return data

    def profile(self, username: str, token: str) -> dict:
        return self._with_token(token, f"/profiles/{quote(username, safe='')}/")

    def upload_key(self, username: str, token: str) -> str:
        data = self._with_token(token, f"/profiles/{quote(username, safe='')}/uploadkey/")
        if not data.get("upload_key"):
            raise PermanentError("The server's answer has no upload key.")
        return str(data["upload_key"])

    def organisation(self, subdomain: str) -> dict:
        return self.request("GET", f"/organisations/{quote(subdomain, safe='')}/")

    def telescopes(self, organisation: str | None) -> list[dict]:
        return self.list(_prefix(organisation) + "/telescopes/")

    def telescope(self, organisation: str | None, ident: str) -> dict:
        return self.request("GET", f"{_prefix(organisation)}/telescopes/{quote(ident, safe='')}/")

    # --- the object chain ----------------------------------------------------------------

    def find(self, organisation: str | None, kind: str, filters: dict) -> list[dict]:
        return self.list(f"{_prefix(organisation)}/{kind}/", params=filters)

    def create(self, organisation: str | None, kind: str, body: dict) -> dict:
        """POST a new object. A TransientError here may hide a success: list before retrying."""
        return self.request("POST", f"{_prefix(organisation)}/{kind}/", json=body, idempotent=False)

    def datafile(self, organisation: str | None, dataset: str, filename: str) -> dict | None:
        """The datafile of that name in the dataset, or None when absent."""
        try:
            return self.request("GET", _datafile_path(organisation, dataset, filename))
        except NotFound:
            return None

    def upload(
        self,
        organisation: str | None,
        dataset: str,
        path: str,
        filename: str,
        *,
        replace: bool = False,
        progress: Callable[[int], None] | None = None,
        abort: threading.Event | None = None,
    ) -> str:
        """Stream a file into a dataset (POST, or PATCH to replace it); returns the hash
        (digest.new_hash) of the bytes sent, so the file is read only once.

        Raises AlreadyExists when the name is taken, Aborted when `abort` is set, and the
        request() errors otherwise. Upload failures are not retried here: whether the
        server kept the file is only known by looking, which the caller does.
        """
        if replace:
            method, url = "PATCH", _datafile_path(organisation, dataset, filename)
        else:
            method, url = "POST", f"{_prefix(organisation)}/datasets/{dataset}/datafiles/"
        bodies: list[FileBody] = []

        def body() -> FileBody:
            bodies.append(FileBody(path, filename, progress=progress, abort=abort))
            return bodies[-1]

        self.request(method, url, idempotent=False, body_factory=body)
        if not bodies or not bodies[-1].complete:
            raise TransientError(f"{filename}: the server answered before the file was sent")
        return bodies[-1].hexdigest()


def _prefix(organisation: str | None) -> str:
    return f"/{quote(organisation, safe='')}" if organisation else ""


def _datafile_path(organisation: str | None, dataset: str, filename: str) -> str:
    return f"{_prefix(organisation)}/datasets/{dataset}/datafiles/{quote(filename, safe='')}/"


def _short(exc: Exception) -> str:
    text = str(exc)
    for marker in ("Errno", "Connection refused", "reset", "aborted", "timed out"):
        index = text.find(marker)
        if index >= 0:
            return text[index:index + 60].rstrip("')\"")
    return type(exc).__name__


def _maybe_sent(exc: Exception) -> bool:
    """True unless the connection surely failed before the request left (refused, DNS)."""
    text = str(exc)
    return not any(
        marker in text
        for marker in ("NewConnectionError", "Connection refused", "Name or service", "resolve")
    )


def _aborted(exc: BaseException) -> bool:
    seen = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, Aborted):
            return True
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__ or (exc.args[0] if exc.args else None)
        if not isinstance(exc, BaseException):
            return False
    return False


def ping(url: str, suffix: str = "", timeout: float = 10.0) -> bool:
    """Healthchecks-style ping: URL/start, URL (success) or URL/<exit code>.

    Never raises: monitoring must not be the reason a run fails.
    """
    target = url.rstrip("/") + (f"/{suffix}" if suffix else "")
    try:
        check_base_url(target)
        requests.get(target, timeout=timeout, headers={"User-Agent": USER_AGENT})
        return True
    except (requests.RequestException, ConfigError) as exc:
        log.warning("ping %s failed: %s", target.split("?")[0], exc)
        return False
