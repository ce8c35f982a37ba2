"""Where a 2026 server files the plan's files: which night log each dataset goes under.

In the 2026 generation the server builds night logs itself (local/servernight.py gives
each file's night) and a dataset is one per (telescope, name) whatever the night. A
dataset is filed whole under one night log: the earliest night among its dated files,
those uploaded before included (inferred; the sandbox does the same, see
sandbox/organise.py). So the plan, the manifest and the report show every file of a
dataset under that night, and a dataset whose files span several nights is said.

The 2021 generation is left alone: there the client builds each file's night log.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from datetime import timezone as dt_timezone

from oort_lib.run.plan import Plan, Refiled, Totals
from oort_lib.state import manifest as mf
from oort_lib.state.config import Folder

Key = tuple[str, str, str]  # organisation ("" personal), telescope, dataset name


def filing_nights(file_nights: Mapping[Key, Iterable[str]],
                  filed: Mapping[Key, str]) -> dict[Key, str]:
    """The night each dataset is filed under: the earliest of its files' nights (ISO
    dates) and of the night it is already filed under (``filed``, where known)."""
    result = {}
    for key, nights in file_nights.items():
        known = [filed[key]] if key in filed else []
        result[key] = min([*nights, *known])
    return result


def spans(file_nights: Mapping[Key, Iterable[str]], nights: Mapping[Key, str],
          filed: Mapping[Key, str] | None = None) -> dict[Key, list[str]]:
    """The datasets whose files, with the night they are filed under now (``filed``,
    where known) and will be (``nights``), span more than one night; those nights in
    order."""
    result = {}
    for key, found in file_nights.items():
        every = sorted({*found, nights[key], *([filed[key]] if filed and key in filed
                                               else [])})
        if len(every) > 1:
            result[key] = every
    return result


def known_filings(manifest: mf.Manifest, destinations: Iterable[str]) -> dict[Key, str]:
    """The night each dataset is already filed under, as far as this manifest knows: the
    earliest night of its uploaded files at these destinations. Raises sqlite3.Error
    only when the manifest cannot be read."""
    destinations = sorted(set(destinations))
    if not destinations:
        return {}
    marks = ", ".join("?" * len(destinations))
    rows = manifest.rows(
        "SELECT organisation, telescope, dataset, MIN(night) AS night FROM files "
        f"WHERE status = ? AND night IS NOT NULL AND destination IN ({marks}) "
        "GROUP BY organisation, telescope, dataset", (mf.UPLOADED, *destinations))
    return {(r["organisation"] or "", r["telescope"] or "", r["dataset"]): r["night"]
            for r in rows if r["dataset"]}


def describe_folders(plan: Plan, folders: Iterable[Folder], now: float) -> None:
    """Note how the server dates each folder's nights (plan.night_by, per organisation
    and telescope) and what a person should know of it (plan.night_notes). Raises
    ValueError for a folder time zone that is no zone (the settings checked them)."""
    from oort_lib.local.servernight import night_label
    from oort_lib.local.site import Site, site_warnings

    at = datetime.fromtimestamp(now, dt_timezone.utc)
    for folder in folders:
        site = Site(folder.longitude, folder.site_timezone)
        plan.night_by.setdefault((folder.organisation or "", folder.telescope or ""),
                                 night_label(site))
        if not folder.telescope:
            continue  # the run says what is missing (gen2026.NEEDS_TELESCOPE)
        name = folder.telescope_name or folder.telescope
        plan.night_notes.extend(f"{folder.path}: {note}" for note in site_warnings(
            site, telescope=name, timezone=folder.timezone, at=at))


def file_datasets(plan: Plan, manifest: mf.Manifest,
                  destination: Callable[[Folder], str] | None) -> None:
    """Put each of the plan's files under the night its dataset is filed under (its
    queue's rows, the summary), note the datasets that span several nights (plan.spans) and those
    the server will move to an earlier night (plan.refiled, for the manifest). Raises
    sqlite3.Error only when the manifest cannot be read."""
    if not plan.file_nights:
        return
    dests = {(f.organisation or ""): destination(f) for f in plan.folders} if destination \
        else {}  # fmt: skip
    filed = known_filings(manifest, dests.values())
    nights = filing_nights(plan.file_nights, filed)
    plan.spans = spans(plan.file_nights, nights, filed)
    plan.refiled = [Refiled(dests[key[0]], *key, night) for key, night in nights.items()
                    if key in filed and night < filed[key] and key[0] in dests]
    summary: dict[tuple, Totals] = {}
    for (org, telescope, night, kind, dataset), totals in plan.summary.items():
        group = (org, telescope, nights.get((org, telescope, dataset), night), kind, dataset)
        merged = summary.get(group)
        if merged is None:
            summary[group] = totals  # taken over: the old summary is dropped
        else:
            merged.add(totals.files, totals.bytes, totals.first, totals.target,
                       totals.replacements)
    plan.summary = summary
    if plan.queue is not None and any(set(found) != {nights[key]}
                                      for key, found in plan.file_nights.items()):
        _move(plan.queue, nights)


def _move(queue, nights: dict[Key, str]) -> None:
    """Give each queued file the night its dataset is filed under, a batch at a time."""
    moved: dict[int, str] = {}
    for row in queue.rows("organisation, telescope, dataset, night"):
        night = nights.get((row["organisation"] or "", row["telescope"] or "", row["dataset"]))
        if night is not None and night != row["night"]:
            moved[row["id"]] = night
        if len(moved) >= queue.batch:
            queue.set_nights(moved)
            moved = {}
    if moved:
        queue.set_nights(moved)


def renight(plan: Plan, generation: str, manifest: mf.Manifest,
            destination: Callable[[Folder], str] | None) -> None:
    """Decide the plan's nights again for the generation the server turned out to speak
    (planning did not know it: a key from the environment, a server never asked).
    Raises sqlite3.Error only when the manifest cannot be read."""
    from oort_lib.local.decision import FACTS, decide

    plan.generation = generation
    plan.summary, plan.file_nights = {}, {}
    plan.files = plan.bytes = plan.assumed_local = 0
    blank = (None,) * (len(FACTS) - 2)
    queue = plan.queue
    if queue is None:
        return
    changed: dict[int, tuple[str, str]] = {}
    for row_id, item in queue.all_items():
        try:
            decided = decide(item.relpath, item.folder, item.header_date,
                             dict(zip(FACTS[2:], item.facts or blank)), generation)
        except ValueError:  # checked when planned: cannot happen, and must not stop a run
            plan.count(item)
            continue
        now = (sys.intern(decided.night), sys.intern(decided.local.source))
        if now != (item.night, item.time_source):
            changed[row_id] = now
            item = item._replace(night=now[0], time_source=now[1])
        plan.count(item)
        if len(changed) >= queue.batch:
            queue.set_nights(changed)
            changed = {}
    if changed:
        queue.set_nights(changed)
    if generation == "2026":
        file_datasets(plan, manifest, destination)
