"""The order a run uploads its files in: night by night, the newest night first.

When a backlog builds (a first run over an archive, a week without network), last night's
frames are what the operator looks at in the morning: they go first, then the nights
before, back to the oldest (`upload_order = newest`, the default); `upload_order =
oldest` sends the archive in the order it was taken. Files without a night (none today:
an undated file is skipped when planned) go last in either order.

Within a night: calibrations before observations, then by dataset, path and watched
folder, so each dataset's files follow each other and its remote container is made
once. In the 2026 generation every file of a dataset carries the night the dataset is
filed under (filing.py), so a dataset is never split across the order either.

This module states the order; a run reads its queue in it from the manifest's index
(queue.py, migration 0010_queue, whose QUEUE_ORDER is within_night's key), and a test
holds the two to one another.
"""

from __future__ import annotations

from collections.abc import Iterable

from oort_lib.run.item import Item
from oort_lib.state.configvalues import ORDERS

NEWEST, OLDEST = ORDERS


def within_night(item: Item) -> tuple:
    """The key of an item's place within its night: kind, dataset, path, folder (the
    columns of migrations.QUEUE_ORDER)."""
    return (item.kind, item.dataset, item.relpath, item.folder.path)


def upload_order(items: Iterable[Item], order: str = NEWEST) -> list[Item]:
    """The items in the order they are uploaded: grouped by night, the newest night
    first (`order` NEWEST) or the oldest (OLDEST); undated items last; within a night
    by within_night(). Raises ValueError for another `order` (the settings
    checked it: a caller's bug)."""
    if order not in ORDERS:
        raise ValueError(f"upload order {order!r}: not one of {', '.join(ORDERS)}")
    ordered = sorted(items, key=within_night)
    # A second stable sort keeps the first's order among the items of one night
    # (reverse=True keeps it too). ISO dates sort as strings; "" (no night) sorts before
    # every date, so after them once reversed.
    if order == NEWEST:
        ordered.sort(key=lambda item: item.night or "", reverse=True)
    else:
        ordered.sort(key=lambda item: (not item.night, item.night or ""))
    return ordered
