"""The manifest: what oort-sync knows of every file, remote object and run (SQLite).

The schema evolves only through the named migrations of migrations.py (sqlite-utils).
Day-to-day reads and writes use the plain sqlite3 connection: importing sqlite-utils costs
~150 ms, which the no-change fast path of a cron tick must not pay.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import NamedTuple

from oort_lib.errors import ManifestBusy, ManifestError
from oort_lib.state.migrations import MIGRATIONS
from oort_lib.state.quickindex import QuickIndex
from oort_lib.state.status import Status

# The statuses of a file row (state/status.py) under the short names the per-file code
# uses: a member looked up on its enum costs ~100 ns on Python 3.11, and planning pays it
# per file.
UPLOADED, PENDING, DEFERRED = Status.UPLOADED, Status.PENDING, Status.DEFERRED
FAILED, SKIPPED, CONFLICT = Status.FAILED, Status.SKIPPED, Status.CONFLICT
STATUSES = tuple(Status)


class Known(NamedTuple):
    """The manifest's memory of one file, as the quick check needs it."""

    id: int
    size: int | None
    mtime_ns: int | None
    hash: str | None
    status: str
    reason: str | None
    transient: int
    attempts: int
    retry_at: float | None
    header_date: str | None
    target: str | None
    uploaded_hash: str | None
    destination: str | None
    # Added by 0003_night_sources; None in rows planned before it (see planner._plan_file).
    date_source: str | None = None
    date_raw: str | None = None
    date_loc: str | None = None
    site_longitude: float | None = None
    longitude_source: str | None = None
    frame_type: str | None = None
    frame_keyword: str | None = None
    # Added by 0009_frame_facts (decision.FRAME_FACTS); None in rows read before it.
    exposure: float | None = None
    filter_name: str | None = None
    object_name: str | None = None


_KNOWN_COLUMNS = ", ".join(Known._fields)

_DAMAGED = (
    "{path}: the manifest is damaged ({error}). Run `oort-sync run --rebuild-manifest`: "
    "the damaged copy is kept aside and nothing already on the server is uploaded again."
)


# How long a write waits for another program (an `sqlite3` shell, a backup) holding the
# manifest before the run gives up with exit code 75: brief, the next tick tries again.
BUSY_WAIT = 10.0


def problem(path: Path, exc: sqlite3.Error) -> ManifestError | ManifestBusy:
    """The error a person can act on for an SQLite failure: busy, disk full, not
    writable, or (only then) damaged."""
    text = str(exc).lower()
    # Primary result codes (sqlite3.SQLITE_* names exist only from Python 3.11).
    code = (getattr(exc, "sqlite_errorcode", None) or 0) & 0xFF
    busy, locked, full, readonly, cantopen, perm = 5, 6, 13, 8, 14, 3
    if "locked" in text or "busy" in text or code in (busy, locked):
        from oort_lib.state.lock import current_holder

        holder = current_holder(path.parent / "run.lock")
        if holder is not None and holder.pid != os.getpid():
            who = f"the run of {holder.describe()}"
        else:
            who = "another program (an sqlite3 shell, a backup?)"
        return ManifestBusy(f"{path}: the manifest is kept busy by {who} for more than "
                            f"{BUSY_WAIT:g} s; this run exits and the next one will go on.")
    if "disk is full" in text or code == full:
        return ManifestError(f"{path}: the disk is full ({exc}). Free some space; what the "
                             "manifest recorded so far is intact.")
    if "readonly" in text or "read-only" in text or "unable to open" in text or code in (
            readonly, cantopen, perm):
        return ManifestError(f"{path}: cannot write the manifest ({exc}); check that its "
                             "folder is writable and mounted read-write.")
    if "no such table" in text or "no such column" in text:
        # The schema says every migration ran, yet a part of it is gone: not a mount or
        # a disk problem, a damaged (or hand-edited) file.
        return ManifestError(_DAMAGED.format(path=path, error=exc))
    if isinstance(exc, sqlite3.OperationalError) and "malformed" not in text:
        return ManifestError(f"{path}: cannot use the manifest ({exc}); check that its "
                             "folder is writable and the disk is not full.")
    return ManifestError(_DAMAGED.format(path=path, error=exc))


class Manifest:
    """One open manifest database. Each write is its own short transaction."""

    def __init__(self, path: Path, *, create: bool = True,
                 origin: tuple[str, str | None] | None = None, readonly: bool = False):
        """Open (and migrate) the manifest. `origin` (api, username) is where the
        uploads recorded before destinations existed went (migration 0002).

        `readonly` (status, report, explain): opened with SQLite's mode=ro, so a reader
        never takes a write lock a run could meet; a manifest of an older schema is
        migrated in a private copy in memory, the file left as it is.

        Raises ManifestError when the file is damaged, not a database, or written by a
        newer oort-sync; ManifestBusy when another program keeps it locked.
        """
        self.path = Path(path)
        self.origin = origin
        # Upload workers share this connection; sqlite3 does not serialise a
        # BEGIN..COMMIT pair across threads by itself.
        self.lock = threading.RLock()
        self.conn = None
        try:
            if (not create or readonly) and not self.path.exists():
                self.conn = sqlite3.connect(":memory:", isolation_level=None)
            elif readonly:
                self.conn = self._private_copy()
            else:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self.conn = sqlite3.connect(str(self.path), isolation_level=None,
                                            check_same_thread=False, timeout=BUSY_WAIT)
                self.conn.execute("PRAGMA journal_mode=WAL")
                # NORMAL keeps WAL commits durable across process crashes (not power
                # loss), and a commit per uploaded file stays cheap.
                self.conn.execute("PRAGMA synchronous=NORMAL")
            self._migrate()
        except sqlite3.Error as exc:
            if self.conn is not None:
                self.conn.close()
            raise problem(self.path, exc) from None

    def _private_copy(self) -> sqlite3.Connection:
        """The file opened read-only; copied into memory when its schema is older (its
        migrations run on the copy only)."""
        uri = f"{self.path.absolute().as_uri()}?mode=ro"
        conn = sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=False,
                               timeout=BUSY_WAIT)
        try:
            conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
        except sqlite3.OperationalError:
            # A WAL database on a read-only mount, its -shm gone with the last writer:
            # SQLite cannot share it, but nobody can write there either.
            conn.close()
            conn = sqlite3.connect(uri + "&immutable=1", uri=True, isolation_level=None,
                                   check_same_thread=False)
        self.conn = conn
        self._check_version()
        if {name for name, _ in MIGRATIONS} <= set(self.applied_migrations()):
            return conn
        memory = sqlite3.connect(":memory:", isolation_level=None, check_same_thread=False)
        conn.backup(memory)
        conn.close()
        return memory

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> Manifest:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self.close()
        # A damaged file often opens fine and fails at the first page read: whatever
        # query meets the damage (or a full disk, or a lock), one explanation and way out.
        if exc_type is not None and issubclass(exc_type, sqlite3.Error):
            raise problem(self.path, exc) from None

    # --- schema ----------------------------------------------------------------------

    def applied_migrations(self) -> list[str]:
        try:
            rows = self.conn.execute("SELECT name FROM migrations ORDER BY rowid").fetchall()
        except sqlite3.OperationalError:
            return []
        return [row[0] for row in rows]

    def _check_version(self) -> None:
        """Raises ManifestError when a newer oort-sync applied migrations this one does
        not know: its rows may mean what this version cannot tell."""
        unknown = sorted(set(self.applied_migrations()) - {name for name, _ in MIGRATIONS})
        if unknown:
            raise ManifestError(
                f"{self.path}: the manifest was written by a newer oort-sync (schema "
                f"{unknown[-1]}); upgrade oort-sync (`pipx upgrade oort-sync`). The file "
                "is left untouched.")

    def _migrate(self) -> None:
        self._check_version()
        done = set(self.applied_migrations())
        pending = [(name, fn) for name, fn in MIGRATIONS if name not in done]
        if not pending:
            return
        import sqlite_utils  # only when the schema changes: see the module docstring

        db = sqlite_utils.Database(self.conn)
        for name, fn in pending:
            with self.transaction():
                if not db["migrations"].exists():
                    db["migrations"].create({"name": str, "applied_at": float}, pk="name")
                fn(db, self.origin)
                db["migrations"].insert({"name": name, "applied_at": time.time()})

    def transaction(self):
        return _Transaction(self.conn, self.lock)

    # --- files -----------------------------------------------------------------------

    def known(self, root: str, *, unsettled_only: bool = False,
              limit: int = -1) -> dict[str, Known]:
        """File rows of a watched folder by relative path: all of them, or only those
        still to be dealt with (neither uploaded nor skipped); at most `limit` of them."""
        where = "root = ?"
        if unsettled_only:
            where += f" AND status NOT IN ('{UPLOADED}', '{SKIPPED}')"
        with self.lock:
            rows = self.conn.execute(
                f"SELECT relpath, {_KNOWN_COLUMNS} FROM files WHERE {where} LIMIT ?",
                (root, limit)).fetchall()
        return {row[0]: Known(*row[1:]) for row in rows}

    def quick_index(self, root: str, dest: str | None = None, *,
                    whole_below: int = 100_000) -> QuickIndex:
        """The quick check's rows of a watched folder for files going to `dest` (None:
        any destination; see QuickIndex): all at once for a folder of up to
        `whole_below` files (two queries, the fastest), else one directory at a time, so
        memory stays bounded whatever the tree."""
        with self.lock:
            count = self.conn.execute("SELECT count(*) FROM files WHERE root = ?",
                                      (root,)).fetchone()[0]
        return QuickIndex(self, root, dest, whole=count < whole_below, known=count > 0)

    def known_by_id(self, file_id: int) -> Known | None:
        with self.lock:
            row = self.conn.execute(
                f"SELECT {_KNOWN_COLUMNS} FROM files WHERE id = ?", (file_id,)
            ).fetchone()
        return Known(*row) if row else None

    def upsert_files(self, root: str, rows: Iterable[dict]) -> None:
        """Insert or update file rows (keyed by root + relpath) in one transaction."""
        now = time.time()
        with self.transaction():
            for row in rows:
                fields = dict(row, root=root, updated_at=now)
                columns = list(fields)
                update = ", ".join(f"{c}=excluded.{c}" for c in columns if c not in ("root",))
                self.conn.execute(
                    f"INSERT INTO files ({', '.join(columns)}, first_seen) "
                    f"VALUES ({', '.join('?' for _ in columns)}, ?) "
                    f"ON CONFLICT(root, relpath) DO UPDATE SET {update}",
                    [*fields.values(), now],
                )

    def update_file(self, root: str, relpath: str, **fields) -> None:
        """Record one outcome (its own transaction: a crash loses at most the files in flight)."""
        fields["updated_at"] = time.time()
        assignments = ", ".join(f"{c} = ?" for c in fields)
        with self.transaction():
            self.conn.execute(
                f"UPDATE files SET {assignments} WHERE root = ? AND relpath = ?",
                [*fields.values(), root, relpath],
            )

    def delete_files(self, ids: Iterable[int]) -> None:
        with self.transaction():
            self.conn.executemany("DELETE FROM files WHERE id = ?", [(i,) for i in ids])

    def refile(self, destination: str, organisation: str, telescope: str, dataset: str,
               night: str) -> None:
        """Show under ``night`` the uploaded files of a 2026 dataset that the server
        files there now (a file of an earlier night joined it: run/filing.py)."""
        with self.transaction():
            self.conn.execute(
                "UPDATE files SET night = ? WHERE status = ? AND destination = ? AND "
                "COALESCE(organisation, '') = ? AND telescope = ? AND dataset = ? AND "
                "night > ?", (night, UPLOADED, destination, organisation, telescope,
                              dataset, night))

    def file(self, root: str, relpath: str) -> dict | None:
        rows = self.rows("SELECT * FROM files WHERE root = ? AND relpath = ?", (root, relpath))
        return rows[0] if rows else None

    def rows(self, sql: str, params: Iterable = ()) -> list[dict]:
        """Read-only query helper for status and report."""
        with self.lock:
            cursor = self.conn.execute(sql, tuple(params))
            names = [d[0] for d in cursor.description]
            return [dict(zip(names, row)) for row in cursor]

    def function(self, name: str, arguments: int, function) -> None:
        """Let SQL call `function` as `name` (deterministic: a pure function of its
        arguments), e.g. to group rows by a value only Python computes."""
        with self.lock:
            self.conn.create_function(name, arguments, function, deterministic=True)

    def stream(self, sql: str, params: Iterable = (), *, size: int = 1000) -> Iterator[dict]:
        """Rows of a read-only query as they are read, `size` at a time: for a long
        listing of a manifest nobody writes meanwhile (a dry run's scratch queue)."""
        with self.lock:
            cursor = self.conn.execute(sql, tuple(params))
            names = [d[0] for d in cursor.description]
        while True:
            with self.lock:
                chunk = cursor.fetchmany(size)
            if not chunk:
                return
            for row in chunk:
                yield dict(zip(names, row))

    # --- remote objects ---------------------------------------------------------------

    def remote(self, key: str) -> str | None:
        with self.lock:
            row = self.conn.execute("SELECT uuid FROM remote WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    def set_remote(self, key: str, kind: str, uuid: str) -> None:
        with self.transaction():
            self.conn.execute(
                "INSERT OR REPLACE INTO remote (key, kind, uuid, created_at) VALUES (?,?,?,?)",
                (key, kind, uuid, time.time()),
            )

    def forget_remote(self, key: str) -> None:
        with self.transaction():
            self.conn.execute("DELETE FROM remote WHERE key = ?", (key,))

    # --- runs ------------------------------------------------------------------------

    def start_run(self) -> int:
        with self.transaction():
            cursor = self.conn.execute(
                "INSERT INTO runs (pid, started_at) VALUES (?, ?)", (os.getpid(), time.time())
            )
        return int(cursor.lastrowid)

    def finish_run(self, run_id: int, **fields) -> None:
        fields["ended_at"] = time.time()
        assignments = ", ".join(f"{c} = ?" for c in fields)
        with self.transaction():
            self.conn.execute(
                f"UPDATE runs SET {assignments} WHERE id = ?", [*fields.values(), run_id]
            )

    def last_runs(self, limit: int = 10) -> list[dict]:
        return self.rows("SELECT * FROM runs ORDER BY id DESC LIMIT ?", (limit,))


class _Transaction:
    """BEGIN IMMEDIATE ... COMMIT, rolled back on any exception."""

    def __init__(self, conn: sqlite3.Connection, lock: threading.RLock):
        self.conn = conn
        self.lock = lock

    def __enter__(self):
        self.lock.acquire()
        try:
            self.conn.execute("BEGIN IMMEDIATE")
        except BaseException:
            self.lock.release()
            raise
        return self.conn

    def __exit__(self, exc_type, exc, tb):
        try:
            if exc_type is None:
                self.conn.execute("COMMIT")
            elif self.conn.in_transaction:
                # SQLite already rolled back after some errors (a full disk): a second
                # ROLLBACK would fail and hide the error that tells what happened.
                try:
                    self.conn.execute("ROLLBACK")
                except sqlite3.Error:
                    pass
        finally:
            self.lock.release()
        return False


def rebuild(path: Path) -> Path | None:
    """Move a damaged manifest aside (kept, never deleted) so a fresh one can be made.

    Returns where the old copy went, or None if there was none.
    """
    path = Path(path)
    if not path.exists():
        return None
    aside = path.with_name(f"{path.name}.damaged-{time.strftime('%Y%m%d-%H%M%S')}")
    os.replace(path, aside)
    for suffix in ("-wal", "-shm"):
        extra = path.with_name(path.name + suffix)
        if extra.exists():
            os.replace(extra, aside.with_name(aside.name + suffix))
    return aside
