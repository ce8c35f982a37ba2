"""The progress total of a plan, known before any file is opened: how many files
planning will read, from the walk and the quick check alone."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable

from oort_lib.errors import FileProblem
from oort_lib.local.exclude import matcher
from oort_lib.local.scan import Skipped, walk
from oort_lib.state import manifest as mf
from oort_lib.state.config import Folder


def count_to_read(folders: Iterable[Folder], manifest: mf.Manifest,
                  destination: Callable[[Folder], str] | None = None) -> int:
    """How many files planning will read (new, changed, or recorded elsewhere): the
    walk and the quick check only, no file opened. An estimate for progress displays."""
    count = 0
    for folder in folders:
        root = resolve(folder.path)
        dest = destination(folder) if destination else None
        quick = manifest.quick_index(root, dest)
        pop_settled, pop_other = quick.poppers()
        try:
            for entry in walk(root, matcher(folder.exclude) if folder.exclude else None):
                if type(entry) is Skipped:
                    continue
                settled = pop_settled(entry.relpath, None)
                if settled is not None:
                    count += settled[1:] != (entry.size, entry.mtime_ns)
                    continue
                old = pop_other(entry.relpath, None)
                if (old is None or old[1:3] != (entry.size, entry.mtime_ns)
                        or old[3] not in (mf.UPLOADED, mf.SKIPPED)
                        or (dest is not None and old[3] == mf.UPLOADED and old[5] != dest)):
                    count += 1
        except FileProblem:
            continue  # a missing folder: planning reports it
    return count


def resolve(path: str) -> str:
    """A watched folder's real path, which its manifest rows are keyed by (the path as
    given when it cannot be resolved: planning then reports it missing)."""
    try:
        return os.path.realpath(path)
    except (OSError, ValueError):
        return path
