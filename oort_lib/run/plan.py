"""The plan of a run: which files to upload where, and why the others wait or are skipped.

The planner (planner.make_plan) fills a Plan from the folders, the manifest and the files
themselves. A Plan keeps counts, per dataset totals and the files not to upload with
why; the files to upload go to its queue (queue.py: pending rows of the manifest in a
real run, of a scratch one for a dry run's listing), never into a list in memory.
`run --dry-run` shows a plan; a real run records it and then executes it, so both use
this same code.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import NamedTuple

from oort_lib.run.item import Item
from oort_lib.run.queue import Queue
from oort_lib.state.config import Folder


class Listed(NamedTuple):
    """A file of one of the plan's lists (skipped, failed, waiting...), and why there."""

    root: str
    relpath: str
    reason: str


class Tally:
    """A list that only counts (append, len, an empty iteration): what a real run keeps of
    the files it skips or excludes. The manifest records the skipped ones (status and the
    report list them), so a run needs how many, not which: a million JPEG previews beside
    a million frames would otherwise hold 150 MB of names."""

    __slots__ = ("count",)

    def __init__(self):
        self.count = 0

    def append(self, _listed: Listed) -> None:
        self.count += 1

    def __len__(self) -> int:
        return self.count

    def __iter__(self) -> Iterator[Listed]:
        return iter(())


class Deferred(NamedTuple):
    """A file that waits for a later run: modified too recently, or still changing."""

    root: str
    relpath: str


class Missing(NamedTuple):
    """A watched folder not scanned (missing, unmounted, inside another), and why."""

    root: str
    reason: str


class Refiled(NamedTuple):
    """2026: a dataset filed before that the server files under an earlier night now
    (the arguments of Manifest.refile)."""

    destination: str
    organisation: str
    telescope: str
    dataset: str
    night: str


class Totals:
    """A dataset's share of the plan: its files, their bytes, the first of them by path
    and that file's target, and how many replace an earlier upload. (A plain class, not
    a dataclass: see the note in state/config.py on the no-change path.)"""

    __slots__ = ("files", "bytes", "first", "target", "replacements")

    def __init__(self, files: int, size: int, first: str, target: str, replacements: int):
        self.files, self.bytes, self.replacements = files, size, replacements
        self.first, self.target = first, target

    def add(self, files: int, size: int, first: str, target: str, replacements: int) -> None:
        """Count more files of the dataset (the first of them by path: `first`)."""
        self.files += files
        self.bytes += size
        self.replacements += replacements
        if first < self.first:
            self.first, self.target = first, target


class Plan:
    """What a run will do; filled in by planner.make_plan()."""

    def __init__(self, folders: list[Folder], *, queue: Queue | None = None):
        self.folders = folders
        # Where the planned items go (queue.py): pending rows of the manifest for a run,
        # of a scratch one for a dry run's listing; None for a dry run that only prints
        # totals per dataset (`summary` has them). Never a list in memory: a first run
        # over a million files must not hold them all.
        self.queue = queue
        self.files = 0
        self.bytes = 0
        self.assumed_local = 0  # files dated with header times taken as local time
        self.summary: dict[tuple, Totals] = {}  # by Item.group
        # Planning's own progress (make_plan's `reading`): files read of `to_read`.
        self.reading: Callable[[int, int], None] | None = None
        self.to_read = 0
        self.read = 0
        self.skipped: list[Listed] | Tally = []
        self.deferred: list[Deferred] = []
        self.min_age = 0.0  # the min_age that deferred them
        self.deferred_due: float | None = None  # when the last deferred file is due
        self.waiting: list[Listed] = []  # failed, retried later
        # Those of `waiting` that failed for a transient reason: failing still, as far as
        # anyone knows, so the run exits 1 while they wait (permanent ones are said once).
        self.retrying: list[Listed] = []
        self.retry_due: float | None = None  # the first of their retries
        self.excluded: list[Listed] | Tally = []  # reason: "excluded by P"
        # Failed while planning (read error, vanished, permission denied). Transient ones
        # are retried by later runs; the run exits 1.
        self.failed: list[Listed] = []
        # Not whole frames (wholeness.check): ending early but modified within
        # `partial_wait`, deferred; and problems, never uploaded until they change (a
        # run that finds them exits 1).
        self.partial_wait = 86400.0
        self.incomplete: list[Listed] = []
        self.problems: list[Listed] = []
        self.unchanged = 0
        self.missing: list[Missing] = []
        self.notes: list[str] = []  # warnings for a person (clock skew...)
        self.bytes_read = 0
        # What a real run remembers of each watched folder (see unmount.emptied): path as
        # given -> {"dev": device, "files": whether it had files}.
        self.devices: dict[str, dict] = {}
        # Where a real run records the rows of the files not queued, a batch at a time
        # as planning goes (planner.flush): (root, rows); None in a dry run.
        self.record: Callable[[str, list[dict]], None] | None = None
        self.gone: list[int] = []
        # The API generation the nights are shown for ("2026": as that server files
        # them, see filing.py; else the client's own rules), and for 2026: each
        # dataset's files' nights, how each telescope's nights are dated, the datasets
        # spanning several nights, the moves of filed datasets, notes for a dry run.
        self.generation: str | None = None
        self.file_nights: dict[tuple, set[str]] = {}
        self.night_by: dict[tuple, str] = {}
        self.spans: dict[tuple, list[str]] = {}
        self.refiled: list[Refiled] = []
        self.night_notes: list[str] = []

    def retry(self, root: str, relpath: str, reason: str, due: float | None) -> None:
        """Note a file that failed for a transient reason and waits for its retry."""
        self.retrying.append(Listed(root, relpath, reason))
        if due is not None and (self.retry_due is None or due < self.retry_due):
            self.retry_due = due

    @property
    def total_bytes(self) -> int:
        return self.bytes

    def add(self, item: Item) -> None:
        """Count an item in its group (and queue it, unless the plan only summarises)."""
        if self.queue is not None:
            self.queue.add(item)
        self.count(item)

    def count(self, item: Item) -> None:
        """Count an item in its group (the totals, the summary, 2026's nights)."""
        self.files += 1
        self.bytes += item.size
        if item.time_source == "assumed local":
            self.assumed_local += 1
        if self.generation == "2026":
            self.file_nights.setdefault((item.folder.organisation or "",
                                         item.folder.telescope or "", item.dataset),
                                        set()).add(item.night)
        totals = self.summary.get(item.group)
        if totals is None:
            self.summary[item.group] = Totals(1, item.size, item.relpath, item.target,
                                              int(item.replace))
        else:
            totals.add(1, item.size, item.relpath, item.target, int(item.replace))

    def listed(self, group: tuple) -> Iterator[Item]:
        """The queued items of a dataset's `group` (Item.group), by path."""
        return self.queue.dataset_items(group) if self.queue is not None else iter(())

    def to_dict(self, *, lists: bool = True) -> dict:
        """The plan as plain data (the --json output of a dry run). Each dataset's
        `paths`, `dated_by` and `local_time_from` are there only if items were queued
        (and `lists`: without, json_chunks() streams them)."""
        nights: dict[tuple, dict] = {}
        for group in sorted(self.summary):
            org, telescope, night, kind, dataset = group
            totals = self.summary[group]
            log = nights.setdefault(
                (org, telescope, night),
                {
                    "organisation": org or None,
                    "telescope": telescope or None,
                    "night": night,
                    **({"night_by": self.night_by[(org, telescope)]}
                       if (org, telescope) in self.night_by else {}),
                    "observations": [],
                    "calibrations": [],
                },
            )
            entry = {
                "name": dataset,
                "dataset": dataset,
                "target_name": totals.target if kind == "observation" else None,
                "files": totals.files,
                "bytes": totals.bytes,
                "replacements": totals.replacements,
            }
            if (org, telescope, dataset) in self.spans:
                # 2026: its files' nights; the whole dataset is filed under the first.
                entry["file_nights"] = self.spans[(org, telescope, dataset)]
            if self.queue is not None:
                for key in LISTS:
                    entry[key] = [getattr(i, LISTS[key]) for i in self.listed(group)] \
                        if lists else Listing(group, key)
            log["observations" if kind == "observation" else "calibrations"].append(entry)
        return {
            "folders": [f.path for f in self.folders],
            "night_logs": list(nights.values()),
            "totals": {
                "files": self.files,
                "bytes": self.bytes,
                "assumed_local_time": self.assumed_local,
                "unchanged": self.unchanged,
                "deferred": len(self.deferred),
                "skipped": len(self.skipped),
                "waiting": len(self.waiting),
                "failed": len(self.failed),
                "incomplete": len(self.incomplete),
                "problems": len(self.problems),
            },
            "skipped": _listed(self.skipped),
            "deferred": [{"folder": f.root, "path": f.relpath} for f in self.deferred],
            "waiting": _listed(self.waiting),
            "failed": _listed(self.failed),
            "incomplete": _listed(self.incomplete),
            "problems": _listed(self.problems),
            "missing_folders": [{"folder": m.root, "reason": m.reason} for m in self.missing],
            "excluded": _listed(self.excluded),
            "notes": [*self.notes, *self.night_notes],
        }


# The lists a dataset of a listing has: JSON key -> Item attribute.
LISTS = {"paths": "relpath", "dated_by": "date_source", "local_time_from": "time_source"}


class Listing:
    """A dataset's list in to_dict(lists=False): its files' LISTS[key] attribute, read
    from the queue while it is written (render.plan_json). Not a tuple: json.dumps must
    not write it as a list of its fields."""

    __slots__ = ("group", "key")

    def __init__(self, group: tuple, key: str):
        self.group, self.key = group, key


def _listed(files: list[Listed]) -> list[dict]:
    return [{"folder": f.root, "path": f.relpath, "reason": f.reason} for f in files]
