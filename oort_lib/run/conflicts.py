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

from collections.abc import Callable
from typing import NamedTuple

from oort_lib.errors import LocalTransient
from oort_lib.local.scan import name_of_key
from oort_lib.run.item import Item, joined, server_name
from oort_lib.run.result import Outcome
from oort_lib.state import manifest as mf


class Verdict(NamedTuple):
    """The outcome of a file found in a shared slot (the uploader records it)."""

    item: Item
    outcome: Outcome  # CONFLICT, ALREADY (same content), WAIT or FAILED_TRANSIENT
    reason: str
    digest: str | None


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


def check(items: list[Item], remote, manifest,
          content_hash: Callable[[Item], str]) -> tuple[list[Item], list[Verdict]]:
    """(the items to upload, the verdicts of the others) for `items` going to `remote`.

    `content_hash(item)` reads a file's hash (raises LocalTransient): only the files
    that share a slot are read.
    """
    if not items:
        return items, []
    holders = _uploaded(manifest, remote, {i.dataset for i in items},
                        {i.destination for i in items})
    slots = _shared_slots(remote, items, holders)
    verdicts: list[Verdict] = []
    held: set[int] = set()
    hashes: dict[int, str] = {}

    def digest(item: Item) -> str | None:
        if id(item) not in hashes:
            try:
                hashes[id(item)] = item.hash or content_hash(item)
            except LocalTransient as exc:
                verdicts.append(Verdict(item, Outcome.FAILED_TRANSIENT, exc.reason, None))
                held.add(id(item))
                return None
        return hashes[id(item)]

    for slot, members in slots.items():
        own = {(m.folder.path, m.relpath) for m in members}
        holder = next((h for h in holders.get(slot, ()) if (h["root"], h["relpath"]) not in own),
                      None)
        if holder is None and len(members) == 1:
            continue
        where = f"{members[0].dataset}/{members[0].filename}"
        if holder is not None:
            other = joined(holder["root"], holder["relpath"])
            for item in members:
                mine = digest(item)
                if mine is None:
                    continue
                held.add(id(item))
                if mine == holder["uploaded_hash"]:
                    verdicts.append(Verdict(item, Outcome.ALREADY,
                                            f"already on the server (same content as {other})",
                                            mine))
                else:
                    verdicts.append(Verdict(item, Outcome.CONFLICT, conflict_reason(other, where),
                                            mine))
            continue
        # New files sharing a slot: the first (folder order, then path) goes.
        keeper = None
        for item in members:
            mine = digest(item)
            if mine is None:
                continue
            if keeper is None:
                keeper = (item, mine)
                continue
            held.add(id(item))
            first = joined(keeper[0].folder.path, keeper[0].relpath)
            if mine == keeper[1]:
                verdicts.append(Verdict(item, Outcome.WAIT, f"same content as {first}, which is "
                                        "uploaded first", mine))
            else:
                verdicts.append(Verdict(item, Outcome.CONFLICT, conflict_reason(first, where),
                                        mine))
    return [i for i in items if id(i) not in held], verdicts


def _shared_slots(remote, items: list[Item], holders: dict) -> dict[tuple, list[Item]]:
    """The slots that hold more than one of `items`, or one of them and an uploaded row.

    A first run over 100,000 files must not keep a tuple key for each (memory): the
    slots are first told apart by their hashes, and only those met twice are rebuilt.
    """
    by_hash: dict[int, Item | list[Item]] = {}
    for item in items:
        key = hash(item_slot(remote, item))
        seen = by_hash.get(key)
        if seen is None:
            by_hash[key] = item
        elif type(seen) is list:
            seen.append(item)
        else:
            by_hash[key] = [seen, item]
    slots: dict[tuple, list[Item]] = {}
    for found in by_hash.values():
        if type(found) is list:
            for item in found:  # equal hashes, maybe not equal slots: sorted out here
                slots.setdefault(item_slot(remote, item), []).append(item)
        elif holders:
            slot = item_slot(remote, found)
            if slot in holders:
                slots[slot] = [found]
    return slots


def _uploaded(manifest, remote, datasets: set[str], destinations: set) -> dict[tuple, list]:
    """Slot -> uploaded rows of these datasets at these destinations."""
    found: dict[tuple, list] = {}
    names = sorted(datasets)
    for start in range(0, len(names), 500):
        chunk = names[start:start + 500]
        rows = manifest.rows(
            "SELECT root, relpath, night, kind, dataset, telescope, destination, "
            f"uploaded_hash FROM files WHERE status = '{mf.UPLOADED}' AND dataset IN "
            f"({', '.join('?' for _ in chunk)})", chunk)
        for row in rows:
            if row["destination"] in destinations:
                found.setdefault(row_slot(remote, row), []).append(row)
    return found
