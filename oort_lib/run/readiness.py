"""Whether a file is ready to be sent: settled (not modified too recently, nor in the
future without holding still) and whole. Each verdict goes into the plan and the rows a
real run records; nothing here reads the manifest or writes.
"""

from __future__ import annotations

from oort_lib.errors import NotWhole
from oort_lib.run.plan import Deferred, Listed, Plan
from oort_lib.state import manifest as mf

STILL_WRITTEN = "still being written"
AHEAD = "modified in the future (a clock ahead?)"


def defer_young(plan: Plan, root: str, entry, same, min_age: float, rows: list) -> None:
    """A file modified less than `min_age` ago may still be written: it waits. Its row
    is written unless `same` (its manifest row at this size and mtime) says so already."""
    mtime = entry.mtime_ns / 1e9
    plan.deferred.append(Deferred(root, entry.relpath))
    plan.min_age = min_age
    plan.deferred_due = max(plan.deferred_due or 0.0, mtime + min_age)
    if same is None or same.status != mf.DEFERRED:
        rows.append({"relpath": entry.relpath, "size": entry.size,
                     "mtime_ns": entry.mtime_ns, "status": mf.DEFERRED,
                     "reason": STILL_WRITTEN})


def settled_ahead(plan: Plan, root: str, entry, same, now: float, min_age: float,
                  rows: list, dest: str | None) -> bool:
    """Whether a file modified "in the future" has settled.

    Its mtime says nothing of its age: a capture PC whose clock runs ahead writes
    through a share with mtimes in the future, and waiting for that time could take
    years. It has settled once its size and mtime held still between two looks
    `min_age` apart: the first look records the time of the second (retry_at of its
    deferred row); a move in between starts again. The whole-file check after this
    still stops a frame that is half written.
    """
    ahead_by = duration(entry.mtime_ns / 1e9 - now)
    looking = same is not None and same.status == mf.DEFERRED
    if same is not None and (not looking or (same.retry_at is not None and (
            now >= same.retry_at or same.retry_at > now + min_age))):
        # Recorded before at this size and mtime as anything but a first look (planned,
        # failed: it held still since), or its second look is due. (One due further than
        # min_age away: this machine's clock went back since; the first look is not
        # believed.)
        plan.notes.append(f"{root}/{entry.relpath}: modified {ahead_by} in the future (a "
                          "clock is ahead?); it held still for min_age, so it is uploaded.")
        return True
    if min_age <= 0:
        return True
    plan.deferred.append(Deferred(root, entry.relpath))
    plan.min_age = min_age
    due = same.retry_at if looking and same.retry_at else now + min_age
    plan.deferred_due = max(plan.deferred_due or 0.0, due)
    if not looking or not same.retry_at:
        rows.append({"relpath": entry.relpath, "size": entry.size,
                     "mtime_ns": entry.mtime_ns, "status": mf.DEFERRED,
                     "reason": f"{AHEAD}: waits until it holds still for min_age",
                     "retry_at": due, "destination": dest})
    plan.notes.append(f"{root}/{entry.relpath}: modified {ahead_by} in the future (a clock "
                      "is ahead?); it waits until its size and time hold still for "
                      f"{min_age:g} s (min_age).")
    return False


def not_whole(plan: Plan, root: str, entry, problem: NotWhole, now: float,
               rows: list, dest: str | None) -> None:
    """A file that is not a whole frame is never planned for upload.

    One that ends early may still be arriving (capture programs write straight to the
    final name; a copy may be under way): it is deferred while it was modified within
    `partial_wait`, then it is a problem (listed until it changes). One whose content
    contradicts itself (a check value, a DATASUM) is a problem at once. A problem is
    said by one run (exit 1) and then waits quietly like other known failures; once the
    file is complete (copied again: another size or mtime) it is read and sent anew.
    """
    if problem.short and now - entry.mtime_ns / 1e9 <= plan.partial_wait:
        reason = f"not whole yet: {problem.reason}: still being written?"
        plan.incomplete.append(Listed(root, entry.relpath, reason))
        status, fields = mf.DEFERRED, {}
    else:
        reason = f"not a whole file: {problem.reason}"
        plan.problems.append(Listed(root, entry.relpath, reason))
        status, fields = mf.FAILED, {"transient": 0, "retry_at": None}
    rows.append({"relpath": entry.relpath, "size": entry.size, "mtime_ns": entry.mtime_ns,
                 "status": status, "reason": reason, "hash": None, "header_date": None,
                 "destination": dest, **fields})


def duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    if seconds < 172800:
        return f"{seconds / 3600:.0f} h"
    return f"{seconds / 86400:.0f} days"
