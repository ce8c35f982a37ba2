"""The deadline of a request: connect + whole answer, whatever the server trickles.

A socket timeout only bounds each wait for one more byte: a server sending one byte every
few seconds never trips it, and holds the run (and the lock) as long as it likes. Here a
watchdog thread checks every request in flight a few times a second and, past its
deadline or once the run is asked to stop, shuts its socket down: the blocked read returns
at once and the request fails (TransientError or Aborted, decided by the client).

The socket is found through the connection classes below, which the client's adapter
uses: each notes itself in the calling thread's current Deadline when it connects or
sends a request.
"""

from __future__ import annotations

import select
import socket
import ssl
import threading
import time
from collections.abc import Callable

from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

TICK = 0.1  # how often the watchdog looks: a stop cuts a request within about this
STALL = 1.0  # seconds an upload's send may stall before an early answer is looked for

_current = threading.local()
_active: set[Deadline] = set()
_guard = threading.Lock()
_wake = threading.Condition(_guard)
_thread: threading.Thread | None = None


class Deadline:
    """A context manager around one request (and the reading of its answer).

    `seconds` is the total allowed; `starts` (optional) says when the clock starts
    (an upload's answer is timed from the moment its body is sent, not from the start:
    a large file over a slow link takes what it takes). `stop` events cut the request.
    After the block, `cut` is None, "deadline" or "stop".
    """

    def __init__(self, seconds: float, *, stops: tuple[threading.Event | None, ...] = (),
                 starts: Callable[[], bool] | None = None,
                 stalled: Callable[[], float] | None = None):
        self.seconds = seconds
        self.stops = tuple(s for s in stops if s is not None)
        self.starts = starts
        # For an upload: seconds since its body last moved. A send that stalls while
        # the server has already answered (a 307 or a refusal before reading the file)
        # is ended, so the answer is read now, not after the whole timeout.
        self.stalled = stalled
        self.early = False
        self.began: float | None = None
        self.conn = None
        self.cut: str | None = None

    def __enter__(self) -> Deadline:
        self.began = None if self.starts else time.monotonic()
        _current.deadline = self
        with _guard:
            _active.add(self)
            _ensure_watchdog()
            _wake.notify()
        return self

    def __exit__(self, *exc) -> None:
        with _guard:
            _active.discard(self)
        if getattr(_current, "deadline", None) is self:
            _current.deadline = None

    def _check(self, now: float) -> None:
        if self.cut:
            return
        if any(s.is_set() for s in self.stops):
            self._cut("stop")
        elif self.began is None:
            if self.starts():
                self.began = now
            elif self.stalled and not self.early and self.stalled() > STALL:
                self._answered_early()
        elif now - self.began > self.seconds:
            self._cut("deadline")

    def _cut(self, why: str) -> None:
        self.cut = why
        sock = getattr(self.conn, "sock", None)
        if sock is None:
            return
        try:
            sock.shutdown(socket.SHUT_RDWR)  # the blocked recv/send returns at once
        except OSError:
            pass


    def _answered_early(self) -> None:
        sock = getattr(self.conn, "sock", None)
        if sock is None:
            return
        try:
            readable = select.select([sock], [], [], 0)[0]
        except (OSError, ValueError):
            return
        if not readable:
            return  # a slow link, not an answer: the socket timeout judges it
        self.early = True
        if isinstance(sock, ssl.SSLSocket):
            self._cut("early")  # TLS cannot stop sending and still read: give up
            return
        try:
            # The blocked send fails with EPIPE; urllib3 then reads the answer.
            sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass


def _note(conn) -> None:
    deadline = getattr(_current, "deadline", None)
    if deadline is not None:
        deadline.conn = conn
        if deadline.cut:  # cut before the socket existed: cut it now
            deadline._cut(deadline.cut)


def _watch() -> None:
    while True:
        with _guard:
            _wake.wait_for(lambda: bool(_active))
            watched = list(_active)
        now = time.monotonic()
        for deadline in watched:
            deadline._check(now)
        time.sleep(TICK)


def _ensure_watchdog() -> None:
    global _thread
    if _thread is None or not _thread.is_alive():
        _thread = threading.Thread(target=_watch, name="oort-deadline", daemon=True)
        _thread.start()


class _Watched:
    """Registers the connection's socket with the watchdog when it connects and sends."""

    def connect(self):
        _note(self)
        super().connect()
        _note(self)

    def request(self, *args, **kwargs):
        _note(self)
        return super().request(*args, **kwargs)


class _WatchedHTTP(_Watched, HTTPConnection):
    pass


class _WatchedHTTPS(_Watched, HTTPSConnection):
    pass


class _HTTPPool(HTTPConnectionPool):
    ConnectionCls = _WatchedHTTP


class _HTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _WatchedHTTPS


class WatchedAdapter(HTTPAdapter):
    """An HTTPAdapter whose connections a Deadline can cut."""

    def init_poolmanager(self, *args, **kwargs):
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {"http": _HTTPPool, "https": _HTTPSPool}
