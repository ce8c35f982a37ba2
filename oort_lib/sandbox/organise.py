"""Server-side organisation of 2026 uploads: night log, then observation or calibration.

A 2026 client only posts files into a dataset; the server reads each file and files it
under a night log (local noon to local noon at the telescope's site) and an observation or
calibration, which is what the sandbox's page shows. The rules are the project's own,
used as they are: the point is that both generations end up organised the same way.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta, timezone
from pathlib import Path

from oort_lib.local.headers import read_header
from oort_lib.local.rules import is_calibration, night_date
from oort_lib.sandbox.store import Store

log = logging.getLogger("oort_lib.sandbox")


def organise(store: Store, dataset: dict, path: Path) -> None:
    """File the dataset under a night log from the header of the file stored at ``path``.

    Does nothing for a dataset already placed (its first dated file decides, as a 2021
    client's chain would) or for a file without a date. Never raises: an upload has
    already succeeded when this runs, and a header the rules cannot read must not turn
    it into a failure.
    """
    if dataset.get("observation") or dataset.get("calibration"):
        return
    try:
        _organise(store, dataset, path)
    except Exception as exc:  # an unreadable header included: the upload stands
        log.warning("sandbox: %s stays out of the night logs: %s", path.name, exc)


def local_time(when: datetime, telescope: dict | None) -> datetime:
    """The local mean solar time at the telescope of a header time (UTC when naive).

    Without coordinates the header's wall clock is taken as it is.
    """
    longitude = ((telescope or {}).get("coordinates") or {}).get("longitude")
    if when.tzinfo is not None:
        when = when.astimezone(timezone.utc).replace(tzinfo=None)
    if longitude is None:
        return when
    # East is positive: 15 degrees of longitude per hour ahead of Greenwich.
    return when + timedelta(hours=float(longitude) / 15)


def _organise(store: Store, dataset: dict, path: Path) -> None:
    info = read_header(str(path))
    if info.date is None:
        return
    space = (dataset["org"], dataset["owner"])
    telescope = store.telescope(space, dataset["telescope"]) if dataset.get("telescope") else None
    night = night_date(local_time(info.date, telescope), None)
    nightlog = store.first_or_create(
        "nightlogs", space, {"date": night.isoformat(), "telescope": dataset.get("telescope")})
    name = dataset["name"]
    match = {"night_log": nightlog["uuid"], "name": name}
    if is_calibration(name):
        parent = store.first_or_create("calibrations", space, match)
        store.link_dataset(dataset["uuid"], "calibration", parent["uuid"])
        return
    target = (info.target or "").strip() or name
    parent = store.first_or_create("observations", space, match, {"target_name": target})
    store.link_dataset(dataset["uuid"], "observation", parent["uuid"])
