"""One file to upload, with everything its remote container needs, and its name there."""

from __future__ import annotations

import os
from typing import NamedTuple

from oort_lib.local.decision import FACTS
from oort_lib.local.scan import name_of_key
from oort_lib.state import manifest as mf
from oort_lib.state.config import Folder

# The manifest columns Item.from_row reads.
ROW_COLUMNS = ("root", "relpath", "size", "mtime_ns", "hash", "header_date", "night", "kind",
               "dataset", "target", "replacing", "attempts", "destination",
               "date_source", "time_source", "date_raw", *FACTS[2:], "dev", "ino",
               "exposure", "filter_name", "object_name")


def joined(root: str, relpath: str) -> str:
    """The path of `relpath` (with `/` separators) under the folder `root`."""
    return root.rstrip(os.sep) + os.sep + relpath.replace("/", os.sep)


def server_name(name: str) -> str:
    """The name on the server of a file called `name` (a basename): its non-UTF-8 bytes
    percent-encoded (a backslash escape would read as a path separator to some servers)."""
    if name.isascii():
        return name
    return "".join(f"%{ord(ch) - 0xDC00:02X}" if "\udc80" <= ch <= "\udcff" else ch
                   for ch in name)


class Item(NamedTuple):
    """One file to upload, with everything the remote chain needs."""

    folder: Folder
    # The file's path when it is not simply the folder's path joined with relpath (an
    # escaped non-UTF-8 name): not stored twice for a million files (see `path`).
    full_path: str | None
    relpath: str
    size: int
    mtime_ns: int
    hash: str | None  # None until the upload hashes it (a file never uploaded before)
    header_date: str
    night: str
    kind: str  # "observation" or "calibration"
    dataset: str
    target: str
    replace: bool = False  # uploaded before with another content: PATCH it
    attempts: int = 0
    destination: str | None = None  # destination.destination() of the folder

    date_source: str | None = None  # "DATE-OBS in HDU 1": the keyword that dated it
    time_source: str | None = None  # what gave the local time (localtime.LocalTime.source)
    date_raw: str | None = None  # the date value as the header wrote it
    # The other header facts the night came from (values of FACTS[2:]), None when the
    # header had none of them (most files: no tuple kept for each of them).
    facts: tuple | None = None
    # (st_dev, st_ino) of the file the walk saw: the upload sends only that file (0: unknown).
    dev: int = 0
    ino: int = 0
    # What the frame is (decision.FRAME_FACTS), for `nights`: fields of their own, not a
    # tuple, as nearly every frame has them (a slot costs 8 bytes, a tuple 60 and more).
    exposure: float | None = None  # seconds
    filter_name: str | None = None
    object_name: str | None = None  # OBJECT as written (`target` falls back to the dataset)

    @property
    def path(self) -> str:
        if self.full_path is not None:
            return self.full_path
        return joined(self.folder.path, self.relpath)

    @property
    def filename(self) -> str:
        """The name on the server (see server_name)."""
        return server_name(os.path.basename(self.path))

    def row(self) -> dict:
        """The manifest row of this file while it waits for its upload."""
        return {
            "relpath": self.relpath,
            "size": self.size,
            "mtime_ns": self.mtime_ns,
            "hash": self.hash,
            "header_date": self.header_date,
            "night": self.night,
            "kind": self.kind,
            "dataset": self.dataset,
            "target": self.target,
            "status": mf.PENDING,
            "reason": None,
            "organisation": self.folder.organisation,
            "telescope": self.folder.telescope,
            "destination": self.destination,
            # Not replacing means nothing of this file is known to be at this
            # destination: forget what another destination received.
            **({} if self.replace else {"uploaded_hash": None}),
            "date_source": self.date_source,
            "time_source": self.time_source,
            "date_raw": self.date_raw,
            **dict(zip(FACTS[2:], self.facts or (None,) * len(FACTS[2:]))),
            "exposure": self.exposure,
            "filter_name": self.filter_name,
            "object_name": self.object_name,
            "attempts": self.attempts,
            "replacing": int(self.replace),
            "dev": self.dev,
            "ino": self.ino,
        }

    @classmethod
    def from_row(cls, folder: Folder, row) -> Item:
        """The item a pending manifest row (row() written, read back with the columns of
        ROW_COLUMNS, by name) stands for; `folder` is its watched folder as planned."""
        relpath = row["relpath"]
        path = joined(folder.path, name_of_key(relpath))
        facts = tuple(row[key] for key in FACTS[2:])
        return cls(
            folder=folder,
            full_path=None if path == joined(folder.path, relpath) else path,
            relpath=relpath, size=row["size"], mtime_ns=row["mtime_ns"], hash=row["hash"],
            header_date=row["header_date"], night=row["night"], kind=row["kind"],
            dataset=row["dataset"], target=row["target"],
            replace=bool(row["replacing"]),
            attempts=row["attempts"] or 0, destination=row["destination"],
            date_source=row["date_source"], time_source=row["time_source"],
            date_raw=row["date_raw"],
            facts=None if all(value is None for value in facts) else facts,
            dev=row["dev"] or 0, ino=row["ino"] or 0, exposure=row["exposure"],
            filter_name=row["filter_name"], object_name=row["object_name"])

    @property
    def group(self) -> tuple:
        return (
            self.folder.organisation or "",
            self.folder.telescope or "",
            self.night,
            self.kind,
            self.dataset,
        )
