"""Two different files must never become one file on the server.

Each file lands in a *slot* of the server: its destination, its dataset (and, in the 2021
generation, its night log and kind) and its name there (Remote.slot). Two watched
folders that both hold `M31/light_001.fits` of one night, a root file next to a
subfolder literally named `(folder X)`, or `caf\\xe9.fits` next to a literal
`caf%E9.fits`, all share a slot. Before anything is sent, a run looks for such files,
among those it is about to upload and against what the manifest knows is uploaded there,
and compares their contents:

- same content: the second file is already on the server (it waits for the first one's
  upload when both are new);
- different content: a **conflict**, recorded with both paths, listed by `status` and the
  report, and the run exits 1 until one file is renamed or moved. Never "already on the
  server".
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import NamedTuple

from oort_lib.errors import LocalTransient
from oort_lib.local.scan import name_of_key
from oort_lib.run.item import ROW_COLUMNS, Item, joined, server_name
from oort_lib.run.queue import Queue
from oort_lib.run.result import Outcome
from oort_lib.state import manifest as mf


class Verdict(NamedTuple):
    """The outcome of a file found in a shared slot (the uploader records it)."""

    item: Item
    outcome: Outcome  # CONFLICT, ALREADY (same content), WAIT or FAILED_TRANSIENT
    reason: str
    digest: str | None


ROWS = ", ".join(("id", "status", "uploaded_hash", "telescope", *ROW_COLUMNS))


def conflict_reason(other: str, where: str) -> str:
    return (f"conflict: {other} is another file with the same name on the server ({where}); "
            "rename or move one of them")


def item_slot(remote, item: Item) -> tuple:
    return remote.slot(item.destination, item.folder.telescope, item.night, item.kind,
                       item.dataset, item.filename)


def row_slot(remote, row: dict) -> tuple:
    name = name_of_key(row["relpath"].rpartition("/")[2])
    return remote.slot(row["destination"], row["telescope"], row["night"], row["kind"],
                       row["dataset"], server_name(name))


def check(queue: Queue, remote, manifest,
          content_hash: Callable[[Item], str]) -> list[Verdict]:
    """The verdicts of the queued files that share a slot of `remote` with another file
    (queued, or uploaded there as the manifest knows); the other queued files go.

    The slots are compared by SQLite (a million queued files are never held here): only
    the files that share one are read back, and only their hashes read
    (`content_hash(item)`, raises LocalTransient).
    """
    verdicts: list[Verdict] = []
    order = {root: index for index, root in enumerate(queue.folders)}
    for members, holders in _shared(queue, remote, manifest):
        # In the order they were planned: folder by folder, each in walk order (the ids
        # of new rows follow it).
        members.sort(key=lambda row: (order[row["root"]], row["id"]))
        items = [Item.from_row(queue.folders[row["root"]], row) for row in members]
        verdicts.extend(_judge(items, holders, content_hash))
    return verdicts


def _judge(members: list[Item], holders: list[dict],
           content_hash: Callable[[Item], str]) -> list[Verdict]:
    """The verdicts of the queued files `members` of one slot, `holders` the uploaded
    files there (none, or a first member, and the others are judged against it)."""
    verdicts: list[Verdict] = []

    def digest(item: Item) -> str | None:
        try:
            return item.hash or content_hash(item)
        except LocalTransient as exc:
            verdicts.append(Verdict(item, Outcome.FAILED_TRANSIENT, exc.reason, None))
            return None

    where = f"{members[0].dataset}/{members[0].filename}"
    if holders:
        holder = holders[0]
        other = joined(holder["root"], holder["relpath"])
        for item in members:
            mine = digest(item)
            if mine is None:
                continue
            if mine == holder["uploaded_hash"]:
                verdicts.append(Verdict(item, Outcome.ALREADY,
                                        f"already on the server (same content as {other})",
                                        mine))
            else:
                verdicts.append(Verdict(item, Outcome.CONFLICT, conflict_reason(other, where),
                                        mine))
        return verdicts
    # New files sharing a slot: the first (folder order, then path) goes.
    keeper = None
    for item in members:
        mine = digest(item)
        if mine is None:
            continue
        if keeper is None:
            keeper = (item, mine)
            continue
        first = joined(keeper[0].folder.path, keeper[0].relpath)
        if mine == keeper[1]:
            verdicts.append(Verdict(item, Outcome.WAIT, f"same content as {first}, which is "
                                    "uploaded first", mine))
        else:
            verdicts.append(Verdict(item, Outcome.CONFLICT, conflict_reason(first, where),
                                    mine))
    return verdicts


# How SQLite tells slots apart first (a test makes every slot hash alike).
slot_hash = hash


def _shared(queue: Queue, remote, manifest) -> Iterator[tuple[list[dict], list[dict]]]:
    """(queued rows, uploaded rows) of each slot that holds more than one queued file,
    or one and a file uploaded there (at the destinations of the queue).

    SQLite groups the rows by a hash of their slot (remote.slot, called back: eight
    bytes a row through its sorter, which spills to disk, rather than a dict of a
    million keys here); only the rows of hashes met twice are read back, and grouped by
    their real slots here (two slots may share a hash).
    """
    roots = sorted(queue.folders)
    if not roots:
        return
    marks = ", ".join("?" * len(roots))
    queued = f"status = '{mf.PENDING}' AND root IN ({marks})"
    rows = (f"FROM files WHERE (({queued}) OR (status = '{mf.UPLOADED}' AND destination IN "
            f"(SELECT DISTINCT destination FROM files WHERE {queued}) AND dataset IN "
            f"(SELECT DISTINCT dataset FROM files WHERE {queued})))")

    def slot(dest, telescope, night, kind, dataset, relpath) -> tuple:
        return remote.slot(dest, telescope, night, kind, dataset,
                           server_name(name_of_key(relpath.rpartition("/")[2])))

    manifest.function("oort_slot", 6, lambda *row: slot_hash(slot(*row)))
    hashed = "oort_slot(destination, telescope, night, kind, dataset, relpath)"
    met = {row["h"] for row in manifest.rows(
        f"SELECT {hashed} AS h {rows} GROUP BY h HAVING count(*) > 1 AND "
        f"sum(status = '{mf.PENDING}') > 0", roots * 3)}
    if not met:
        return
    manifest.function("oort_met", 1, lambda value: value in met)
    slots: dict[tuple, tuple[list[dict], list[dict]]] = {}
    for row in manifest.rows(f"SELECT {ROWS} {rows} AND oort_met({hashed})", roots * 3):
        members, holders = slots.setdefault(
            slot(row["destination"], row["telescope"], row["night"], row["kind"],
                 row["dataset"], row["relpath"]), ([], []))
        (members if row["status"] == mf.PENDING else holders).append(row)
    for members, holders in slots.values():
        if members and len(members) + len(holders) > 1:
            yield members, holders
