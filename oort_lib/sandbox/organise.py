"""Server-side organisation of 2026 uploads: night log, then observation or calibration.

A 2026 client only posts files into a dataset; the server reads each file and files it
under a night log and an observation or calibration, which is what the sandbox's page
shows. The night is the one local/servernight.py gives (the telescope's site, else the
header clock): the client's prediction uses the same function, so the two cannot drift.

A dataset is one per (telescope, name) whatever the night, and is filed whole under one
night log: the earliest night among its dated files (a file of an earlier night moves
it there). What the real server does with a dataset whose files span nights is not
known; this is the sandbox's choice, and the client shows the same (run/filing.py).
"""

from __future__ import annotations

import logging
from pathlib import Path

from oort_lib.local.headers import read_header
from oort_lib.local.rules import is_calibration
from oort_lib.local.servernight import server_night
from oort_lib.local.site import site_of
from oort_lib.sandbox.store import Store

log = logging.getLogger("oort_lib.sandbox")


def organise(store: Store, dataset: dict, path: Path) -> None:
    """File the dataset under a night log from the header of the file stored at ``path``.

    Does nothing for a file without a date, or for a dataset already filed under this
    night or an earlier one. Never raises: an upload has already succeeded when this
    runs, and a header the rules cannot read must not turn it into a failure.
    """
    try:
        _organise(store, dataset, path)
    except Exception as exc:  # an unreadable header included: the upload stands
        log.warning("sandbox: %s stays out of the night logs: %s", path.name, exc)


def _organise(store: Store, dataset: dict, path: Path) -> None:
    info = read_header(str(path))
    if info.date is None:
        return
    space = (dataset["org"], dataset["owner"])
    telescope = store.telescope(space, dataset["telescope"]) if dataset.get("telescope") else None
    night = server_night(info.date, site_of(telescope)).night.isoformat()
    with store.lock:  # two uploads to one dataset: one decides at a time
        dataset = store.get("datasets", space, dataset["uuid"]) or dataset
        column = "observation" if dataset.get("observation") else "calibration"
        old_parent = dataset.get(column)
        if old_parent:
            if not dataset.get("telescope"):
                return  # placed by a 2021 client's chain: the server leaves it there
            filed = store.night_of(column, space, old_parent)
            if filed is not None and filed <= night:
                return
        nightlog = store.first_or_create(
            "nightlogs", space, {"date": night, "telescope": dataset.get("telescope")})
        name = dataset["name"]
        match = {"night_log": nightlog["uuid"], "name": name}
        if is_calibration(name):
            column = "calibration"
            parent = store.first_or_create("calibrations", space, match)
        else:
            column = "observation"
            target = (info.target or "").strip() or name
            parent = store.first_or_create("observations", space, match, {"target_name": target})
        store.link_dataset(dataset["uuid"], column, parent["uuid"], replace=True)
        if old_parent:
            store.drop_unused(space, old_parent)
