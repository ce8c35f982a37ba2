"""A watched folder found empty: emptied on purpose, or a disk unmounted from it?"""

from __future__ import annotations

import os

from oort_lib.run.plan import Missing, Plan

# Said of a watched folder that looks emptied by an unmount (see emptied).
UNMOUNTED = "watched folder is missing (disk unmounted?)."


def emptied(plan: Plan, given: str, root: str, has_files: bool, known: bool,
             seen: dict | None) -> bool:
    """Whether a watched folder found empty is rather missing (an unmount leaves an empty
    mountpoint, on another device); records what a real run remembers of the folder.

    Empty on another device than when it last had files: missing at every run until the
    disk is back. Emptied on the same device (files archived away, or a bind mount gone):
    said once, then taken as empty. Files on a new device: a disk plugged back in.
    `known`: the manifest has rows for it (what tells, before the first remembered run).
    """
    try:
        dev = os.stat(root).st_dev
    except OSError:
        return False  # walk() found it a moment ago: nothing more to tell
    had_files = seen["files"] if seen else known
    if has_files or not had_files:
        plan.devices[given] = {"dev": dev, "files": has_files}
        return False
    if seen and seen.get("dev") not in (None, dev):
        plan.missing.append(Missing(root, f"{given}: {UNMOUNTED} It is empty, and on "
                                    "another device than when it had files."))
        return True
    plan.devices[given] = {"dev": dev, "files": False}
    plan.missing.append(Missing(root, f"{given}: {UNMOUNTED} It had files and is empty now "
                                "(said once: if they were moved away on purpose, all is "
                                "well)."))
    return True
