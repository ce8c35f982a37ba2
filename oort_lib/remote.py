"""The remote objects of a file: night log, observation or calibration, dataset.

Each is resolved once per run (the manifest's cache of UUIDs first, then a list, then a
create), even when several upload workers need it at the same moment.
"""

from __future__ import annotations

import threading

from . import manifest as mf
from .errors import TransientError
from .plan import Item


class Resolver:
    """Finds or creates night logs, observations, calibrations and datasets, once each."""

    def __init__(self, client, manifest: mf.Manifest, api: str):
        self.client = client
        self.manifest = manifest
        self.api = api
        self._guard = threading.Lock()
        self._locks: dict[str, threading.Lock] = {}
        self._memo: dict[str, str] = {}
        self.created: set[str] = set()  # uuids created by this run (known to be empty)

    def _lock(self, key: str) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(key, threading.Lock())

    def chain(self, item: Item) -> tuple[str, str, str]:
        """(night log, observation or calibration, dataset) UUIDs for an item."""
        org = item.folder.organisation
        telescope = item.folder.telescope
        base = f"{self.api}|{org or ''}|{telescope or ''}|{item.night}"
        filters = {"date": item.night}
        body = {"date": item.night}
        if telescope:
            filters["telescope"] = body["telescope"] = telescope
        nightlog = self._one(f"{base}|nightlog", org, "nightlogs", filters, body)
        kind = "observations" if item.kind == "observation" else "calibrations"
        body = {"night_log": nightlog, "name": item.dataset}
        if item.kind == "observation":
            body["target_name"] = item.target
        parent = self._one(
            f"{base}|{item.kind}|{item.dataset}",
            org,
            kind,
            {"night_log": nightlog, "name": item.dataset},
            body,
        )
        link = {item.kind: parent, "name": item.dataset}
        key = f"{base}|dataset|{item.kind}|{item.dataset}"
        dataset = self._one(key, org, "datasets", link, link)
        return nightlog, parent, dataset

    def forget(self, item: Item) -> None:
        """Drop cached UUIDs of an item's chain (the server no longer knows one of them)."""
        base = f"{self.api}|{item.folder.organisation or ''}|{item.folder.telescope or ''}|"
        with self._guard:
            for key in [k for k in self._memo if k.startswith(base + item.night)]:
                self._memo.pop(key, None)
                self.manifest.forget_remote(key)

    def _one(self, key: str, org: str | None, kind: str, filters: dict, body: dict) -> str:
        if key in self._memo:
            return self._memo[key]
        with self._lock(key):
            if key in self._memo:
                return self._memo[key]
            uuid = self.manifest.remote(key)
            if uuid is None:
                uuid = self._find_or_create(org, kind, filters, body)
                self.manifest.set_remote(key, kind, uuid)
            self._memo[key] = uuid
            return uuid

    def _find_or_create(self, org, kind, filters, body) -> str:
        last: Exception | None = None
        for _attempt in range(3):
            matches = [
                obj
                for obj in self.client.find(org, kind, filters)
                if all(str(obj.get(k)) == str(v) for k, v in filters.items())
            ]
            if matches:
                return str(matches[0]["uuid"])  # the oldest: the server lists by creation
            try:
                created = self.client.create(org, kind, body)
            except TransientError as exc:
                # The create may have worked even though its answer was lost: look again
                # rather than creating blindly a second time.
                last = exc
                continue
            self.created.add(str(created["uuid"]))
            return str(created["uuid"])
        raise last
