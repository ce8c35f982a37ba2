"""The order a run uploads its files in: night by night, the newest night first.

When a backlog builds (a first run over an archive, a week without network), last night's
frames are what the operator looks at in the morning: they go first, then the nights
before, back to the oldest (`upload_order = newest`, the default); `upload_order =
oldest` sends the archive in the order it was taken. Files without a night (none today:
an undated file is skipped when planned) go last in either order.

Within a night the order is the one runs always had: by organisation, telescope,
observation or calibration, dataset, then path, so each remote container is made once
and its files follow each other. The sort is stable: of two files with the same path in
two folders, the one given first stays first (conflicts.check kept that one). In the
2026 generation every file of a dataset carries the night the dataset is filed under
(filing.py), so a dataset is never split across the order either.
"""

from __future__ import annotations

from collections.abc import Iterable

from oort_lib.run.item import Item
from oort_lib.state.configvalues import ORDERS

NEWEST, OLDEST = ORDERS


def within_night(item: Item) -> tuple:
    """The key of an item's place within its night (the runs' order before nights
    were ordered: the item's group without its night, then its path)."""
    org, telescope, _night, kind, dataset = item.group
    return (org, telescope, kind, dataset, item.relpath)


def upload_order(items: Iterable[Item], order: str = NEWEST) -> list[Item]:
    """The items in the order they are uploaded: grouped by night, the newest night
    first (`order` NEWEST) or the oldest (OLDEST); undated items last; within a night
    by within_night(), stably. Raises ValueError for another `order` (the settings
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
