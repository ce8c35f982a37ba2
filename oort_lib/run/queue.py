"""The run's queue: the files it will upload, kept as pending rows of a manifest rather
than in memory.

Planning writes each planned file's row (Item.row()) as it goes, a batch at a time; the
uploader reads them back a page at a time, night by night (ordering.py), through the
partial index of migration 0010_queue. So a first run over a million new files holds a
batch and a page, never the million (issue 24). A dry run that lists its files does the
same in a scratch manifest of its own (scratch()), the real one left untouched.

Which rows are the queue: the pending rows of the folders this run planned (each
folder's rows are all re-planned by every run that plans it, so a pending row there is
one this run planned).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from pathlib import Path

from oort_lib.run.item import ROW_COLUMNS, Item
from oort_lib.state import manifest as mf
from oort_lib.state.config import Folder
from oort_lib.state.lock import process_alive
from oort_lib.state.migrations import QUEUE_ORDER

NEWEST, OLDEST = "newest", "oldest"  # configvalues.ORDERS

# Rows written per transaction while planning, and read per page while uploading.
BATCH = 2000

_COLUMNS = ", ".join(ROW_COLUMNS)
_KEY = f"({', '.join(QUEUE_ORDER)})"


class Queue:
    """The pending rows of the planned folders of one manifest (see the module's
    docstring). Raises what Manifest raises (ManifestError, ManifestBusy)."""

    def __init__(self, manifest: mf.Manifest, *, batch: int | None = None):
        self.manifest = manifest
        self.folders: dict[str, Folder] = {}  # root (resolved path) -> folder as planned
        self.batch = batch or BATCH
        self._rows: dict[str, list[dict]] = {}
        self._buffered = 0

    def watch(self, folder: Folder) -> None:
        """Count `folder` (its path resolved) among the planned ones."""
        self.folders[folder.path] = folder

    def add(self, item: Item) -> None:
        """Queue an item (written with the next batch)."""
        self._rows.setdefault(item.folder.path, []).append(item.row())
        self._buffered += 1
        if self._buffered >= self.batch:
            self.flush()

    def flush(self) -> None:
        """Write the items added since the last flush."""
        for root, rows in self._rows.items():
            self.manifest.upsert_files(root, rows)
        self._rows, self._buffered = {}, 0

    def _where(self) -> tuple[str, list]:
        roots = sorted(self.folders)
        return (f"status = '{mf.PENDING}' AND root IN ({', '.join('?' * len(roots))})", roots)

    def count(self) -> int:
        where, params = self._where()
        return self.manifest.rows(f"SELECT count(*) AS n FROM files WHERE {where}",
                                  params)[0]["n"]

    def nights(self) -> list[str | None]:
        """The nights of the queue's files, oldest first (None, if any, first)."""
        where, params = self._where()
        return [row["night"] for row in self.manifest.rows(
            f"SELECT DISTINCT night FROM files INDEXED BY files_queue WHERE {where} "
            "ORDER BY night", params)]

    def items(self, order: str = NEWEST, skip: Iterable[tuple[str, str]] = ()) -> Iterator[Item]:
        """The queue's items in upload order (ordering.upload_order's: by night, the
        newest first or the oldest; files without a night last), read a page at a time.
        Items of (root, relpath) in `skip` are left out. A row that stops being pending
        before its page is read (uploaded by then) is not given."""
        skip = set(skip)
        nights = self.nights()
        dated = [night for night in nights if night]
        ordered = dated[::-1] if order == NEWEST else dated
        ordered += [night for night in nights if not night]
        for night in ordered:
            for row in self._pages(night):
                if (row["root"], row["relpath"]) not in skip:
                    yield Item.from_row(self.folders[row["root"]], row)

    def _pages(self, night: str | None) -> Iterator[dict]:
        where, params = self._where()
        after: tuple | None = None
        while True:
            since = f" AND {_KEY} > ({', '.join('?' * len(QUEUE_ORDER))})" if after else ""
            page = self.manifest.rows(
                f"SELECT {_COLUMNS}, {', '.join(QUEUE_ORDER)} FROM files INDEXED BY "
                f"files_queue WHERE {where} "
                f"AND night IS ?{since} ORDER BY {', '.join(QUEUE_ORDER)} LIMIT ?",
                [*params, night, *(after or ()), self.batch])
            yield from page
            if len(page) < self.batch:
                return
            last = page[-1]
            after = tuple(last[key] for key in QUEUE_ORDER)

    def rows(self, columns: str) -> Iterator[dict]:
        """`columns` of the queue's rows (SQL), a page at a time in the order of their ids."""
        where, params = self._where()
        after = 0
        while True:
            page = self.manifest.rows(
                f"SELECT id, {columns} FROM files WHERE {where} AND id > ? ORDER BY id LIMIT ?",
                [*params, after, self.batch])
            yield from page
            if len(page) < self.batch:
                return
            after = page[-1]["id"]

    def all_items(self) -> Iterator[tuple[int, Item]]:
        """(row id, item) of every queued item, in the order of their ids, a page at a time."""
        for row in self.rows(_COLUMNS):
            yield row["id"], Item.from_row(self.folders[row["root"]], row)

    def dataset_items(self, group: tuple) -> Iterator[Item]:
        """The queued items of one dataset (its Item.group), by path, read as they are
        given (the index of 0010_queue has them in this order)."""
        org, telescope, night, kind, dataset = group
        where, params = self._where()
        for row in self.manifest.stream(
                f"SELECT {_COLUMNS} FROM files INDEXED BY files_queue WHERE {where} AND "
                "night IS ? AND kind = ? AND dataset = ? AND COALESCE(organisation, '') = ? "
                "AND COALESCE(telescope, '') = ? ORDER BY relpath, root",
                [*params, night, kind, dataset, org, telescope]):
            yield Item.from_row(self.folders[row["root"]], row)

    def set_nights(self, nights: dict[int, str | tuple[str, str]]) -> None:
        """Give rows (by id) another night, or (night, time_source): the dataset's filing
        night, or the nights of the generation the server turned out to speak."""
        pairs = [(value, None) if isinstance(value, str) else value for value in nights.values()]
        with self.manifest.transaction() as conn:
            conn.executemany(
                "UPDATE files SET night = ?, time_source = COALESCE(?, time_source) "
                "WHERE id = ?", [(night, source, file_id)
                                 for (night, source), file_id in zip(pairs, nights)])


class Scratch:
    """A manifest of its own in a temporary folder, for a dry run's listing (its queue);
    removed when closed, and by the next Scratch in the same folder if its process was
    killed first (a million rows are some 300 MB of disk)."""

    def __init__(self, parent: str | None = None):
        import shutil  # only for a listing: the no-change run does not pay for them
        import tempfile

        where = Path(parent or tempfile.gettempdir())
        for left in where.glob(f"{_SCRATCH}*"):
            pid = left.name[len(_SCRATCH):].partition("-")[0]
            if pid.isdigit() and not process_alive(int(pid)):
                shutil.rmtree(left, ignore_errors=True)
        self.folder = Path(tempfile.mkdtemp(prefix=f"{_SCRATCH}{os.getpid()}-", dir=where))
        self.manifest = mf.Manifest(self.folder / "plan.sqlite")

    def close(self) -> None:
        import shutil

        self.manifest.close()
        shutil.rmtree(self.folder, ignore_errors=True)

    def __enter__(self) -> Scratch:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


_SCRATCH = "oort-sync-plan-"  # then the pid of the process that made it
