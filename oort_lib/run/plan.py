"""The plan of a run: which files to upload where, and why the others wait or are skipped.

Planning reads the folders, the manifest and (for new or changed files only) the files
themselves; it writes nothing. `run --dry-run` shows a plan; a real run records the plan
in the manifest and then executes it, so both use this same code.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

from oort_lib.run.item import Item
from oort_lib.run.planner import count_to_read, nested_in, plan_folder, resolve
from oort_lib.state import manifest as mf
from oort_lib.state.config import Folder


class Plan:
    """What a run will do; filled in by make_plan()."""

    def __init__(self, folders: list[Folder], *, keep_items: bool = True):
        self.folders = folders
        # A dry run that only prints totals per dataset need not keep a million items:
        # `summary` has them.
        self.keep_items = keep_items
        self.items: list[Item] = []
        self.files = 0
        self.bytes = 0
        self.assumed_local = 0  # files dated with header times taken as local time
        # group -> [files, bytes, first relpath, its target, replacements]
        self.summary: dict[tuple, list] = {}
        # Planning's own progress (make_plan's `reading`): files read of `to_read`.
        self.reading: Callable[[int, int], None] | None = None
        self.to_read = 0
        self.read = 0
        self.skipped: list[tuple[str, str, str]] = []  # root, relpath, reason
        self.deferred: list[tuple[str, str]] = []
        self.min_age = 0.0  # the min_age that deferred them
        self.deferred_due: float | None = None  # when the last deferred file is due
        self.waiting: list[tuple[str, str, str]] = []  # failed, retried later
        # Those of `waiting` that failed for a transient reason: failing still, as far as
        # anyone knows, so the run exits 1 while they wait (permanent ones are said once).
        self.retrying: list[tuple[str, str, str]] = []
        self.retry_due: float | None = None  # the first of their retries
        self.excluded: list[tuple[str, str, str]] = []  # root, relpath, "excluded by P"
        # Failed while planning (read error, vanished, permission denied): root, relpath,
        # reason. Transient ones are retried by later runs; the run exits 1.
        self.failed: list[tuple[str, str, str]] = []
        # Not whole frames (wholeness.check): ending early but modified within
        # `partial_wait`, deferred (root, relpath, reason); and problems, never uploaded
        # until they change (a run that finds them exits 1).
        self.partial_wait = 86400.0
        self.incomplete: list[tuple[str, str, str]] = []
        self.problems: list[tuple[str, str, str]] = []
        self.unchanged = 0
        self.missing: list[tuple[str, str]] = []  # root, message
        self.notes: list[str] = []  # warnings for a person (clock skew...)
        self.bytes_read = 0
        # What a real run remembers of each watched folder (see _emptied): path as
        # given -> {"dev": device, "files": whether it had files}.
        self.devices: dict[str, dict] = {}
        # What a real run records before uploading (dry runs never apply them).
        self.rows: dict[str, list[dict]] = {}
        self.gone: list[int] = []
        # The API generation the nights are shown for ("2026": as that server files
        # them, see filing.py; else the client's own rules), and for 2026: each
        # dataset's files' nights, how each telescope's nights are dated, the datasets
        # spanning several nights, the moves of filed datasets, notes for a dry run.
        self.generation: str | None = None
        self.file_nights: dict[tuple, set[str]] = {}
        self.night_by: dict[tuple, str] = {}
        self.spans: dict[tuple, list[str]] = {}
        self.refiled: list[tuple] = []
        self.night_notes: list[str] = []

    def retry(self, root: str, relpath: str, reason: str, due: float | None) -> None:
        """Note a file that failed for a transient reason and waits for its retry."""
        self.retrying.append((root, relpath, reason))
        if due is not None and (self.retry_due is None or due < self.retry_due):
            self.retry_due = due

    @property
    def total_bytes(self) -> int:
        return self.bytes

    def add(self, item: Item) -> None:
        """Count an item in its group (and keep it, unless the plan only summarises)."""
        if self.keep_items:
            self.items.append(item)
        self.files += 1
        self.bytes += item.size
        if item.time_source == "assumed local":
            self.assumed_local += 1
        if self.generation == "2026":
            self.file_nights.setdefault((item.folder.organisation or "",
                                         item.folder.telescope or "", item.dataset),
                                        set()).add(item.night)
        group = self.summary.get(item.group)
        if group is None:
            self.summary[item.group] = [1, item.size, item.relpath, item.target,
                                        int(item.replace)]
            return
        group[0] += 1
        group[1] += item.size
        group[4] += item.replace
        if item.relpath < group[2]:
            group[2], group[3] = item.relpath, item.target

    def groups(self) -> dict[tuple, list[Item]]:
        grouped: dict[tuple, list[Item]] = {}
        for item in sorted(self.items, key=lambda i: (i.group, i.relpath)):
            grouped.setdefault(item.group, []).append(item)
        return grouped

    def to_dict(self) -> dict:
        """The plan as plain data (the --json output of a dry run). Each dataset's
        `paths`, `dated_by` and `local_time_from` are there only if items were kept."""
        nights: dict[tuple, dict] = {}
        listed = self.groups() if self.keep_items else {}
        for group in sorted(self.summary):
            org, telescope, night, kind, dataset = group
            files, size, _first, target, replacements = self.summary[group]
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
                "target_name": target if kind == "observation" else None,
                "files": files,
                "bytes": size,
                "replacements": replacements,
            }
            if (org, telescope, dataset) in self.spans:
                # 2026: its files' nights; the whole dataset is filed under the first.
                entry["file_nights"] = self.spans[(org, telescope, dataset)]
            if self.keep_items:
                items = listed[group]
                entry["paths"] = [i.relpath for i in items]
                entry["dated_by"] = [i.date_source for i in items]
                entry["local_time_from"] = [i.time_source for i in items]
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
            "skipped": [
                {"folder": r, "path": p, "reason": reason} for r, p, reason in self.skipped
            ],
            "deferred": [{"folder": r, "path": p} for r, p in self.deferred],
            "waiting": [{"folder": r, "path": p, "reason": why} for r, p, why in self.waiting],
            "failed": [{"folder": r, "path": p, "reason": why} for r, p, why in self.failed],
            "incomplete": [{"folder": r, "path": p, "reason": why}
                           for r, p, why in self.incomplete],
            "problems": [{"folder": r, "path": p, "reason": why}
                         for r, p, why in self.problems],
            "missing_folders": [{"folder": r, "reason": why} for r, why in self.missing],
            "excluded": [{"folder": r, "path": p, "reason": why}
                         for r, p, why in self.excluded],
            "notes": [*self.notes, *self.night_notes],
        }


def make_plan(
    folders: Iterable[Folder],
    manifest: mf.Manifest,
    *,
    now: float | None = None,
    min_age: float = 60.0,
    retry_failed: bool = False,
    destination: Callable[[Folder], str] | None = None,
    keep_items: bool = True,
    retry_delay: float = 60.0,
    devices: dict[str, dict] | None = None,
    reading: Callable[[int, int], None] | None = None,
    partial_wait: float = 86400.0,
    generation: str | None = None,
) -> Plan:
    """Compare the folders with the manifest and describe what a run must do.

    `destination(folder)` names where the folder's files go (server, account,
    organisation): a file uploaded to another destination is new there.
    Each folder's path is resolved now (a watched symlink may point elsewhere since the
    last run); its files are keyed in the manifest under the resolved path.
    Per-file problems become skipped entries (permanent: the content) or failed ones
    (transient: an I/O error, a file that vanished, permission denied; retried after
    `retry_delay`, doubled per failure). A missing watched folder, or one that looks
    emptied by an unmount (`devices`: what the last runs saw, see _emptied), is reported
    in `missing` and its manifest rows are left alone (an unmounted disk is not a deletion).
    A file that is not a whole frame is deferred while it was modified within
    `partial_wait` seconds, then a problem (planner._not_whole).
    `generation` is the server's API generation where known: for "2026" every night is
    the one that server will file the file under (filing.py).
    """
    now = time.time() if now is None else now
    folders = list(folders)
    plan = Plan(folders=folders, keep_items=keep_items)
    plan.partial_wait = partial_wait
    plan.generation = generation
    if reading is not None:
        # A progress display wants its total at once, not after the slow part: the walk
        # and quick check alone take seconds where reading a million headers takes minutes.
        plan.reading, plan.to_read = reading, count_to_read(folders, manifest, destination)
        reading(0, plan.to_read)
    taken: list[tuple[str, str]] = []  # (resolved path, path as given) of planned folders
    for folder in folders:
        real = resolve(folder.path)
        clash = nested_in(real, taken)
        if clash is not None:
            plan.missing.append((folder.path, f"{folder.path} (now {real}) is inside the "
                                 f"watched folder {clash}, or holds it: not scanned twice."))
            continue
        taken.append((real, folder.path))
        dest = destination(folder) if destination else None
        resolved = folder if real == folder.path else folder._replace(path=real)
        plan_folder(plan, resolved, manifest, now, min_age, retry_failed, dest,
                     retry_delay, folder.path, (devices or {}).get(folder.path))
    if generation == "2026":
        from oort_lib.run import filing

        filing.describe_folders(plan, folders, now)
        filing.file_datasets(plan, manifest, destination)
    return plan
