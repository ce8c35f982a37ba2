"""The quick check's view of a watched folder's manifest rows, one directory at a time,
and the rows of its files still to be dealt with."""

from __future__ import annotations

from oort_lib.state.migrations import DIR_SQL
from oort_lib.state.status import Status

# A file's row for the quick check, by position: id, size, mtime_ns, status, reason,
# destination (as the planner reads them), then the relpath it is found by, kept in the
# tuple SQLite made rather than sliced off (a copy of every row).
QUICK_COLUMNS = "id, size, mtime_ns, status, reason, destination, relpath"

# One directory's rows, by the folder index, named: SQLite would otherwise take the
# covering files_quick (root only) and read the whole folder for each directory.
FOLDER_SQL = (f"SELECT {QUICK_COLUMNS} FROM files INDEXED BY files_by_folder "
              f"WHERE root = ? AND {DIR_SQL} = ?")

# Looked up once: the loops below compare it with every row (see manifest.UPLOADED).
UPLOADED, SKIPPED = Status.UPLOADED, Status.SKIPPED


class QuickIndex:
    """A watched folder's manifest rows as the walk meets them, one directory at a time.

    The walk yields the files of a directory together, so only that directory's rows
    need to be in memory: a tree of a million files costs what its largest directory
    costs. `pop(relpath)` gives a row (see Manifest.quick) once; `gone()` lists the ids
    of rows the walk never met that are not uploaded (uploaded rows stay as history).
    `known`: the folder had rows when the index was made (it had files once);
    `manifest`: the Manifest read (its `lock` and `conn`).
    """

    def __init__(self, manifest, root: str, whole: dict[str, tuple] | None = None,
                 known: bool = True):
        self.known = known
        self._manifest = manifest
        self._root = root
        self._whole = whole  # small folders: every row, loaded by one query
        self._folder: str | None = None
        self._rows: dict[str, tuple] = {}
        self._unseen: dict[str, dict[str, int]] = {}  # folder -> relpath -> id (unsettled)

    def popper(self):
        """`pop`, or for a folder loaded whole the dict's own pop (the same answers,
        without a Python call per file)."""
        return self._whole.pop if self._whole is not None else self.pop

    def pop(self, relpath: str, default=None):
        if self._whole is not None:
            return self._whole.pop(relpath, default)
        folder = relpath[: relpath.rfind("/") + 1]
        if folder != self._folder:
            self._leave()
            self._folder = folder
            self._rows = self._folder_rows(folder)
        return self._rows.pop(relpath, default)

    def _leave(self) -> None:
        if self._folder is None:
            return
        left = {k: v[0] for k, v in self._rows.items() if v[3] != UPLOADED}
        if self._folder in self._unseen:  # walked twice: unseen means unseen both times
            left = {k: i for k, i in self._unseen[self._folder].items() if k in left}
        self._unseen[self._folder] = left
        self._rows = {}

    def gone(self) -> list[int]:
        if self._whole is not None:
            return [row[0] for row in self._whole.values() if row[3] != UPLOADED]
        self._leave()
        self._folder = None
        ids = [i for rows in self._unseen.values() for i in rows.values()]
        # Rows of folders the walk never entered (deleted folders).
        ids.extend(i for i, folder in self._unsettled_ids() if folder not in self._unseen)
        return ids

    def _folder_rows(self, folder: str) -> dict[str, tuple]:
        with self._manifest.lock:
            rows = self._manifest.conn.execute(FOLDER_SQL, (self._root, folder)).fetchall()
        return {row[6]: row for row in rows}

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
