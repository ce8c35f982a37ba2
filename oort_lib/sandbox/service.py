"""``Sandbox``: start, inspect, misconfigure on purpose, and stop the sandbox server."""

from __future__ import annotations

import ipaddress
import threading
import time
from pathlib import Path

from oort_lib.sandbox.admin import Admin
from oort_lib.sandbox.app import App
from oort_lib.sandbox.faults import Faults
from oort_lib.sandbox.objects import inventory
from oort_lib.sandbox.routes import API_PREFIX, DIALECTS
from oort_lib.sandbox.seed import Seed, banner_lines
from oort_lib.sandbox.server import make_threaded_server
from oort_lib.sandbox.store import Store
from oort_lib.sandbox.trap import Trap, Traps


class Sandbox:
    """An Arcsecond-compatible server on ``host:port`` keeping its state in ``data_dir``.

    ``port=0`` picks a free port (see ``url`` once started). ``faults`` may be changed at
    any time; every request reads it. Key revocations last until the sandbox stops.
    ``dialect`` picks the API generation served: "2021", "2026", or "both" (every route
    of both, the default). Raises ValueError for another dialect.
    """

    def __init__(self, data_dir: str | Path, host: str = "127.0.0.1", port: int = 0,
                 page_size: int = 50, dialect: str = "both"):
        if dialect not in DIALECTS:
            raise ValueError(f"Unknown dialect {dialect!r}: use one of {', '.join(DIALECTS)}.")
        self.dialect = dialect
        self.data_dir = Path(data_dir)
        self.host = host
        self.port = port
        self.page_size = page_size
        self.seed = Seed()
        self._faults = Faults()
        self._traps = Traps()
        self._revoked: set[str] = set()
        self._log: list[tuple[str, str, int]] = []
        self._log_lock = threading.Lock()
        self._stopping = threading.Event()
        self._stopped = threading.Event()
        self._store: Store | None = None
        self._server = None
        self._thread: threading.Thread | None = None

    # --- life cycle -----------------------------------------------------------------------

    def start(self) -> Sandbox:
        if self._server is not None:
            return self
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._store = Store(self.data_dir, self.seed)
        admin = Admin(store=self._store, seed=self.seed, faults=self._faults,
                      revoked=self._revoked, requests=lambda: self.requests,
                      clear_requests=self.clear_requests)
        app = App(store=self._store, faults=self._faults,
                  page_size=self.page_size, revoked=self._revoked, record=self._record,
                  stopping=self._stopping, admin=admin, dialect=self.dialect,
                  traps=self._traps)
        try:
            self._server = make_threaded_server(self.host, self.port, app)
        except BaseException:
            self._store.close()
            self._store = None
            raise
        self.port = self._server.server_address[1]
        self._stopping.clear()
        self._stopped.clear()
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
            name=f"oort-sandbox-{self.port}", daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, end open connections and close the database. Idempotent."""
        server, self._server = self._server, None
        if server is None:
            return
        self._traps.clear()  # releases the requests they hold
        self._stopping.set()  # wakes requests sleeping on latency or slow faults
        server.shutdown()
        server.server_close()
        server.tracker.shutdown_all()
        if self._thread is not None:
            self._thread.join(timeout=5)
        # Let requests already inside the app finish before the database goes away.
        for _ in range(100):
            if server.tracker.count() == 0:
                break
            time.sleep(0.05)
        if self._store is not None:
            self._store.close()
            self._store = None
        self._stopped.set()

    def wait(self) -> None:
        """Block until ``stop()`` is called (from another thread) or Ctrl-C is pressed."""
        try:
            while not self._stopped.wait(0.5):
                pass
        except KeyboardInterrupt:
            return

    def __enter__(self) -> Sandbox:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def trap(self, action: str, method: str, path: str, **options) -> Trap:
        """Set a trap (see trap.py): the `nth` request (options: nth, times, status,
        retry_after, delay) of `method` to a path matching the regular expression `path`
        gets `action`. Returns it: its `hits`, `wait()` and `release()`."""
        return self._traps.add(Trap(action, method, path, **options))

    def clear_traps(self) -> None:
        """Remove every trap, releasing (and resetting) the requests they hold."""
        self._traps.clear()

    @property
    def faults(self) -> Faults:
        """The live fault settings: change fields at any time, every request reads them."""
        return self._faults

    @faults.setter
    def faults(self, value: Faults) -> None:
        # The running app holds this very object, so copy the settings into it.
        self._faults.clear()
        self._faults.update(value.as_dict())

    # --- where and what -------------------------------------------------------------------

    @property
    def url(self) -> str:
        host = self.host
        if host in ("", "0.0.0.0", "::"):
            host = "127.0.0.1" if host != "::" else "::1"
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self.port}"

    @property
    def is_loopback(self) -> bool:
        """True when only this machine can reach the server (the default)."""
        if self.host == "localhost":
            return True
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return False

    @property
    def connections_accepted(self) -> int:
        """TCP connections accepted so far (tests check that clients reuse them)."""
        return self._server.tracker.accepted if self._server is not None else 0

    def objects(self, kind: str) -> list[dict]:
        """Every object of ``kind`` in every space, in creation order.

        Kinds: nightlogs, observations, calibrations, datasets, datafiles, telescopes.
        Each has its API fields plus ``organisation`` (subdomain or None) and ``owner``;
        datafiles also have ``sha256`` and ``path`` (the stored copy).
        """
        if self._store is None:
            raise RuntimeError("the sandbox is not running")
        return inventory(self._store, kind, self.url)

    def datafiles(self, dataset: str | None = None) -> list[dict]:
        """The stored datafiles (of one dataset if given), as ``objects("datafiles")``;
        each also has ``is_raw`` and ``tags``. Raises RuntimeError when not running."""
        rows = self.objects("datafiles")
        return [r for r in rows if dataset is None or r["dataset"] == dataset]

    def banner(self) -> list[str]:
        """The lines to print when the sandbox starts: one fact per line, with its label.

        Call it once started: the URL names the port actually bound.
        """
        return banner_lines(self.seed, self.url, self.dialect, API_PREFIX)

    # --- keys and the request log ---------------------------------------------------------

    def revoke_key(self, key: str) -> None:
        self._revoked.add(key)

    def restore_key(self, key: str) -> None:
        self._revoked.discard(key)

    def _record(self, method: str, path: str, status: int) -> None:
        with self._log_lock:
            self._log.append((method, path, status))

    @property
    def requests(self) -> list[tuple[str, str, int]]:
        """(method, path, status) of every API request served, in order.

        ``path`` is as sent (percent-encoded, without the query string); status 0 means
        the connection was dropped without an answer. ``/_sandbox/`` requests are not
        recorded.
        """
        with self._log_lock:
            return list(self._log)

    def clear_requests(self) -> None:
        with self._log_lock:
            self._log.clear()
