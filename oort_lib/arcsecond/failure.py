"""What came of one attempt, in the error tree: a failed connection, an answer refused.

The client (client.py) builds and sends a request; this module says what its outcome
means as one of the classes of errors.py, with a message a person can act on: a
connection that failed (and how), a timeout, an answer cut at its deadline, a redirect,
a refusal, a server error, or a 2xx that is no usable answer.
"""

from __future__ import annotations

import re
from typing import NamedTuple
from urllib.parse import urlsplit

import requests

from oort_lib.arcsecond.answer import (
    MESSAGE_LIMIT,
    error_message,
    is_duplicate,
    is_error_body,
    retry_after,
    scrub,
)
from oort_lib.arcsecond.deadline import Deadline
from oort_lib.arcsecond.probe import plain_http_server, speaks_plain_http
from oort_lib.errors import (
    Aborted,
    AlreadyExists,
    AuthError,
    ConnectionFailed,
    NotFound,
    NotJson,
    PermanentError,
    Redirected,
    RemoteError,
    Timeout,
    TransientError,
    Trickling,
)


class Failed(NamedTuple):
    """An attempt that got no answer, or no whole one."""

    error: TransientError
    reached: bool  # the request may have reached the server (and been acted on)
    strike: bool  # it cost a whole timeout: counted in the run's budget (budget.py)


def failed(exc: Exception, watch: Deadline, base: str, method: str, path: str,
           read_timeout: float) -> Failed:
    """What a requests exception (or an OSError) of one attempt means; `watch` is the
    attempt's Deadline, `base` the API URL.

    Raises Aborted when the stop cut the request, and PlainHttpServer when the server of
    an https:// URL speaks plain http (no retry can help).
    """
    if watch.cut == "stop" or _aborted(exc):
        raise Aborted("the request was cut short by the stop") from None
    if watch.cut == "early":
        return Failed(TransientError(f"{method} {path}: the server answered before the "
                                     "whole file was sent (a redirect or a refusal?)"),
                      reached=True, strike=False)
    if watch.cut == "deadline":
        return Failed(Trickling(base, watch.seconds), reached=True, strike=True)
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return Failed(ConnectionFailed(f"{base}: connection timed out ({type(exc).__name__})",
                                       "timed out"), reached=False, strike=True)
    if isinstance(exc, requests.exceptions.Timeout):
        return Failed(Timeout(base, read_timeout), reached=True, strike=True)
    if isinstance(exc, requests.exceptions.SSLError) and speaks_plain_http(base):
        raise plain_http_server(base) from None
    cause = _short(exc)
    return Failed(ConnectionFailed(f"{base}: connection failed ({cause})",
                                   ConnectionFailed.kind_in(cause)),
                  reached=_maybe_sent(exc), strike=False)


def refusal(response: requests.Response, method: str, path: str, key: str | None,
            names: tuple[str, ...] | None) -> RemoteError:
    """The error of an answer of status 400 or more; `names` are those of the file being
    sent, if any. A TransientError (with its `retry_after`) for 429 and 5xx; else
    AuthError (401/403), NotFound (404), AlreadyExists (the server says the file sent is
    there), PermanentError."""
    status = response.status_code
    message = error_message(response, key)
    if status == 429 or status >= 500:
        error = TransientError(f"{method} {path}: {message}", status)
        error.retry_after = retry_after(response)
        return error
    if status == 401:
        return AuthError(
            f"The server refused the key ({message}). "
            "Run `oort-sync login` again, or check ARCSECOND_UPLOAD_KEY.",
            status,
        )
    if status == 403:
        return AuthError(f"Permission refused for {path}: {message}", status)
    if status == 404:
        return NotFound(f"{path}: {message}", status)
    # "Already there" only when the server says so of the file being sent.
    if names is not None and is_duplicate(response, names):
        return AlreadyExists(message, status)
    return PermanentError(f"{method} {path}: {message}", status)


def decoded(response: requests.Response, content: bytes, method: str, path: str,
            expect_json: bool, key: str | None):
    """The decoded answer of a 2xx, or None. Raises NotJson for a body that is not JSON
    when JSON is expected, and TransientError for an error body: some proxies and broken
    servers answer 200 {"error": ...}, never taken for a success or for a permanent
    refusal."""
    status = response.status_code
    if status == 204 or not content:
        return None
    try:
        data = response.json()
    except ValueError:
        if not expect_json:
            return None
        raise NotJson(
            f"{method} {path}: the server answered {status} with a body that "
            "is not JSON (a proxy page?)",
            status,
        ) from None
    if is_error_body(data):
        raise TransientError(f"{method} {path}: the server answered {status} with an "
                             f"error: {error_message(response, key)}", status)
    return data if expect_json else None


def redirected(base: str, method: str, path: str, response: requests.Response,
               key: str | None) -> Redirected:
    """The error of a 3xx answer, naming where it points (never followed)."""
    target = response.headers.get("Location", "")
    try:
        host = scrub(urlsplit(target).netloc, key, MESSAGE_LIMIT) or "the same host"
    except ValueError:  # not even a URL
        host = "an invalid address"
    return Redirected(
        f"{method} {path}: the server at {base} redirects to {host} ({response.status_code}). "
        "Redirects are not followed (the key would go along): check the API URL "
        "(`oort-sync login --api=URL`).",
        response.status_code,
    )


# The words a person needs of what requests and urllib3 nest in their messages, most
# telling first: "[Errno -2] Name or service not known", "Connection reset by peer".
_CAUSES = tuple(re.compile(pattern) for pattern in (
    r"\[Errno -?\d+\][^'\"()]*", r"[\w ]*Connection refused[^'\"()]*",
    r"[\w ]*reset[^'\"()]*", r"[\w ]*aborted[^'\"()]*", r"[\w ]*timed out[^'\"()]*"))


def _short(exc: Exception) -> str:
    """The cause of a connection failure in a few whole words, else the exception's
    class name."""
    text = str(exc)
    for cause in _CAUSES:
        found = cause.search(text)
        if found:
            words = " ".join(found.group(0).split())[:80].rstrip(" .,:;")
            if words:
                return words
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
