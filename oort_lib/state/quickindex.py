"""The quick check's view of a watched folder's manifest rows, one directory at a time,
and the rows of its files still to be dealt with."""

from __future__ import annotations

from oort_lib.state.migrations import DIR_SQL
from oort_lib.state.status import Status

# A file's row for the quick check, by position: id, size, mtime_ns, status, reason,
# destination (as the planner reads them), then the relpath it is found by, kept in the
# tuple SQLite made rather than sliced off (a copy of every row).
QUICK_COLUMNS = "id, size, mtime_ns, status, reason, destination, relpath"

# A file uploaded to the destination at hand ("settled") needs only its size and mtime
# for the quick check: three columns, not seven, for nearly every row of a tick (each
# column is an object made per row: ~8 ms per 20,000 files). The other rows come whole.
# `destination IS ?` is left out when the planner has no destination (any counts);
# status is never NULL (NOT NULL in the schema), so each row is in exactly one query.
_SETTLED = "status = 'uploaded' AND destination IS ?"
_SETTLED_ANYWHERE = "status = 'uploaded'"

# One directory's rows, by the folder index, named: SQLite would otherwise take the
# covering files_quick (root only) and read the whole folder for each directory.
_BY_FOLDER = f"INDEXED BY files_by_folder WHERE root = ? AND {DIR_SQL} = ?"

# Looked up once: the loops below compare it with every row (see manifest.UPLOADED).
UPLOADED, SKIPPED = Status.UPLOADED, Status.SKIPPED


def quick_sql(dest: str | None, folder: bool = False) -> tuple[str, str]:
    """The two queries of a folder's quick rows (or of one directory of it, `folder`):
    the settled rows as (relpath, size, mtime_ns), and the others as QUICK_COLUMNS.
    Their parameters: root[, directory][, dest]; both are read from an index alone."""
    settled = _SETTLED if dest is not None else _SETTLED_ANYWHERE
    where = _BY_FOLDER if folder else "WHERE root = ?"
    return (f"SELECT relpath, size, mtime_ns FROM files {where} AND {settled}",
            f"SELECT {QUICK_COLUMNS} FROM files {where} AND NOT ({settled})")


class QuickIndex:
    """A watched folder's manifest rows as the walk meets them, one directory at a time.

    The walk yields the files of a directory together, so only that directory's rows
    need to be in memory: a tree of a million files costs what its largest directory
    costs. Each row is given once: `poppers()` gives the two lookups the planner's loop
    uses (a settled row as (relpath, size, mtime_ns), see quick_sql; any other row as
    QUICK_COLUMNS); `pop(relpath)` gives any row as QUICK_COLUMNS. `gone()` lists the
    ids of rows the walk never met that are not uploaded (uploaded rows stay as
    history). `known`: the folder had rows when the index was made (it had files once);
    `manifest`: the Manifest read (its `lock` and `conn`); `dest`: the destination the
    files go to (None: any destination).
    """

    def __init__(self, manifest, root: str, dest: str | None = None, whole: bool = True,
                 known: bool = True):
        self.known = known
        self._manifest = manifest
        self._root = root
        self._dest = () if dest is None else (dest,)
        self._whole = whole  # small folders: every row, loaded at once
        self._folder: str | None = None
        self._settled: dict[str, tuple] = {}
        self._others: dict[str, tuple] = {}
        self._unseen: dict[str, dict[str, int]] = {}  # folder -> relpath -> id (unsettled)
        self._sql = quick_sql(dest, folder=not whole)  # the whole folder, or a directory
        if whole:
            self._settled, self._others = self._rows(self._sql, (root,))

    def poppers(self):
        """(pop a settled row, pop another row): for a folder loaded whole the dicts' own
        pops (the same answers, without a Python call per file)."""
        if self._whole:
            return self._settled.pop, self._others.pop
        return self._pop_settled, self._pop_other

    def pop(self, relpath: str, default=None):
        """The row of `relpath` as QUICK_COLUMNS, once; `default` if none."""
        pop_settled, pop_other = self.poppers()
        if pop_settled(relpath, None) is not None:
            return self.full(relpath)
        return pop_other(relpath, default)

    def full(self, relpath: str) -> tuple | None:
        """The row of `relpath` as QUICK_COLUMNS (a settled row that changed, for the
        planner's slower path)."""
        with self._manifest.lock:
            return self._manifest.conn.execute(
                f"SELECT {QUICK_COLUMNS} FROM files WHERE root = ? AND relpath = ?",
                (self._root, relpath)).fetchone()

    def _enter(self, relpath: str) -> None:
        folder = relpath[: relpath.rfind("/") + 1]
        if folder != self._folder:
            self._leave()
            self._folder = folder
            self._settled, self._others = self._rows(self._sql, (self._root, folder))

    def _pop_settled(self, relpath: str, default=None):
        self._enter(relpath)
        return self._settled.pop(relpath, default)

    def _pop_other(self, relpath: str, default=None):
        self._enter(relpath)
        return self._others.pop(relpath, default)

    def _leave(self) -> None:
        if self._folder is None:
            return
        left = {k: v[0] for k, v in self._others.items() if v[3] != UPLOADED}
        if self._folder in self._unseen:  # walked twice: unseen means unseen both times
            left = {k: i for k, i in self._unseen[self._folder].items() if k in left}
        self._unseen[self._folder] = left
        self._settled, self._others = {}, {}

    def gone(self) -> list[int]:
        if self._whole:
            return [row[0] for row in self._others.values() if row[3] != UPLOADED]
        self._leave()
        self._folder = None
        ids = [i for rows in self._unseen.values() for i in rows.values()]
        # Rows of folders the walk never entered (deleted folders).
        ids.extend(i for i, folder in self._unsettled_ids() if folder not in self._unseen)
        return ids

    def _rows(self, queries: tuple[str, str], params: tuple) -> tuple[dict, dict]:
        settled_sql, others_sql = queries
        with self._manifest.lock:
            conn = self._manifest.conn
            settled = conn.execute(settled_sql, params + self._dest).fetchall()
            others = conn.execute(others_sql, params + self._dest).fetchall()
        return {row[0]: row for row in settled}, {row[6]: row for row in others}

    def _unsettled_ids(self) -> list[tuple[int, str]]:
        with self._manifest.lock:
            return self._manifest.conn.execute(
                f"SELECT id, {DIR_SQL} FROM files WHERE root = ? AND status != ?",
                (self._root, UPLOADED),
            ).fetchall()


class Unsettled:
    """The manifest's rows of a folder's files still to be dealt with (neither uploaded
    nor skipped), by relative path: loaded at once when there are few, else read one by
    one (a first run cut after planning a million files leaves a million pending rows,
    too many to hold).

    Loaded when first asked for (a no-change tick never asks: ~9 ms per 20,000 rows
    spared). A file's row is only rewritten after the walk met it, so a row asked for
    later reads as it was before this planning started.
    """

    _NOT_LOADED = object()

    def __init__(self, manifest, root: str, at_once: int = 50_000):
        self.manifest, self.root, self.at_once = manifest, root, at_once
        self._rows = self._NOT_LOADED

    @property
    def rows(self) -> dict | None:
        if self._rows is self._NOT_LOADED:
            rows = self.manifest.known(self.root, unsettled_only=True, limit=self.at_once + 1)
            self._rows = rows if len(rows) <= self.at_once else None
        return self._rows

    def get(self, relpath: str, quick: tuple | None):
        """The row of `relpath` (its quick check's row: `quick`) if still to be dealt
        with, else None."""
        if quick is None or quick[3] in (UPLOADED, SKIPPED):
            return None
        rows = self.rows
        return rows.get(relpath) if rows is not None else self.manifest.known_by_id(quick[0])

    def known(self, relpath: str, quick: tuple):
        """The row of `relpath` whatever its status (its quick check's row: `quick`)."""
        return self.get(relpath, quick) or self.manifest.known_by_id(quick[0])
