"""The one small interface the run uses to reach a server, whatever its API generation.

The run (sync.py) asks four things of a destination: make sure the remote container of
a file exists, is the file there already, send it, forget a container the server lost.
gen2021 and gen2026 answer them, each a Remote of its own (generations.py opens the one
a server speaks); nothing above this package knows which one it talks to, and this
module knows neither.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import NamedTuple

from oort_lib.errors import MalformedAnswer, TransientError


class Container(NamedTuple):
    """Where a file goes on the server. 2021 builds all three; 2026 only the dataset
    (the server builds the night log and the observation or calibration itself)."""

    dataset: str
    nightlog: str | None = None
    parent: str | None = None  # observation or calibration


class RemoteFile(NamedTuple):
    """What the server says of a file it holds (None: it does not say)."""

    size: int | None = None
    modified: float | None = None  # when its copy was last written (epoch seconds)


class Cache:
    """What a Remote remembers of remote objects between runs (the manifest's `remote`
    table): key -> UUID. The manifest implements it; tests may pass a dict-backed one."""

    def remote(self, key: str) -> str | None: ...

    def set_remote(self, key: str, kind: str, uuid: str) -> None: ...

    def forget_remote(self, key: str) -> None: ...


class Remote:
    """A destination (server + account + organisation) in one API generation."""

    generation: str = ""  # "2021" or "2026": how generations.py finds it
    # Whether the server can say if a file of that name is in a dataset (2021 can);
    # without it the manifest and the duplicate answer are all there is.
    can_check: bool = False
    # Whether a file's content can be replaced once uploaded (2021: PATCH; 2026: no).
    can_replace: bool = False

    def __init__(self, client, cache: Cache, destination: str):
        self.client = client
        self.cache = cache
        self.destination = destination
        self._guard = threading.Lock()
        self._locks: dict[str, threading.Lock] = {}
        self._memo: dict[str, str] = {}
        # Objects whose lookup the server answered malformed (listing.py): not asked
        # again by each of their files (100 pages each), only by the next run.
        self._broken: dict[str, str] = {}
        self.created: set[str] = set()  # uuids created by this run (known to be empty)

    def container(self, item) -> Container:
        """Find or create the remote objects of a plan item, once per run each.

        Raises the client's errors; PermanentError when the folder cannot go there as
        configured (e.g. no telescope where one is required).
        """
        raise NotImplementedError

    def exists(self, item, container: Container) -> RemoteFile | None:
        """The file of the item's name in the container, or None (only if can_check)."""
        raise NotImplementedError

    def slot(self, destination: str | None, telescope: str | None, night: str, kind: str,
             dataset: str, filename: str) -> tuple:
        """Where a file of that name lands on the server: two different files with the
        same slot would be one file there (see conflicts.py)."""
        raise NotImplementedError

    def send(self, item, container: Container, *, replace: bool = False,
             progress: Callable[[int], None] | None = None,
             abort: threading.Event | None = None) -> str:
        """Upload the item's file; returns the hash of the bytes sent.

        Raises AlreadyExists (the server says this file's name is taken), NotFound (the
        container is gone from the server: forget() it and try again), WrongGeneration,
        the client's errors, and what body.FileBody raises for the file (FileChanged,
        NotPlanned, ChecksumMismatch, LocalTransient), the body then cut before its end
        so that nothing is stored.
        """
        raise NotImplementedError

    def forget(self, item) -> None:
        """Drop the cached container of an item (the server no longer knows it)."""
        prefix = self._key(item, "")
        with self._guard:
            for key in [k for k in self._memo if k.startswith(prefix)]:
                self._memo.pop(key, None)
                self.cache.forget_remote(key)

    def is_new(self, container: Container) -> bool:
        """True when this run created the container (so no file can be in it yet)."""
        return container.dataset in self.created

    # --- shared machinery: each object resolved once, even with many workers -------------

    def _key(self, item, suffix: str) -> str:
        raise NotImplementedError

    def _find_or_create(self, find: Callable[[], str | None],
                        create: Callable[[], dict]) -> str:
        """The UUID `find()` gives (the oldest match), else that of what `create()` made.

        Creation is not idempotent on the server: a create whose answer was lost may have
        worked, so it is followed by another find, never by a blind second create (three
        rounds at most). Raises the last TransientError, and what `find`/`create` raise.
        """
        last: Exception | None = None
        for _attempt in range(3):
            found = find()
            if found is not None:
                return found
            try:
                created = create()
            except TransientError as exc:
                last = exc
                continue
            uuid = str(created["uuid"])
            self.created.add(uuid)
            return uuid
        raise last

    def _once(self, key: str, kind: str, resolve: Callable[[], str]) -> str:
        """The UUID of one remote object, resolved once per run. Raises what `resolve`
        raises; MalformedAnswer again (without asking) for an object whose lookup the
        server answered malformed earlier in the run."""
        if key in self._memo:
            return self._memo[key]
        with self._guard:
            lock = self._locks.setdefault(key, threading.Lock())
        with lock:
            if key in self._memo:
                return self._memo[key]
            if key in self._broken:
                raise MalformedAnswer(self._broken[key])
            uuid = self.cache.remote(key)
            if uuid is None:
                try:
                    uuid = resolve()
                except MalformedAnswer as exc:
                    self._broken[key] = exc.message
                    raise
                self.cache.set_remote(key, kind, uuid)
            self._memo[key] = uuid
            return uuid
