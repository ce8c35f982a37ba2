"""The decision the rules make for one dated file: its local time, night, kind and
dataset, from the header facts the manifest keeps (so that the planner, which must not
re-read an unchanged file, and `explain`, which reads it, decide alike).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, NamedTuple, Protocol

from oort_lib.local.localtime import LocalTime, local_time

__all__ = ["FACTS", "FRAME_FACTS", "Decision", "WatchedFolder", "decide", "header_facts"]

# The header facts kept in the manifest (columns of 0003_night_sources, less time_source).
FACTS = ("date_source", "date_raw", "date_loc", "site_longitude", "longitude_source",
         "frame_type", "frame_keyword")  # fmt: skip
# What the frame is, for `nights` (columns of 0009_frame_facts): seconds of exposure, the
# filter and the header's OBJECT, each None when the header does not say.
FRAME_FACTS = ("exposure", "filter_name", "object_name")


class WatchedFolder(Protocol):
    """What the rules read of a watched folder (state.config.Folder is one: the settings
    are above the local side, so they are described here, not imported)."""

    @property
    def name(self) -> str: ...
    @property
    def classify(self) -> str: ...
    @property
    def timezone(self) -> str | None: ...
    @property
    def longitude(self) -> float | None: ...
    @property
    def site_timezone(self) -> str | None: ...
    @property
    def telescope(self) -> str | None: ...
    @property
    def telescope_name(self) -> str | None: ...


class Decision(NamedTuple):
    """What the rules decide for one dated file, and why (for `explain`)."""

    local: LocalTime
    night: str
    kind: str
    kind_reason: str
    dataset: str
    # 2026: how the server dates the night ("night by the telescope's site at ..."); None
    # in 2021, where the client's own rules decide.
    night_by: str | None = None

    def target(self, obj: str | None) -> str:
        """The observation's target: the header's OBJECT, else the dataset name."""
        from oort_lib.local.rules import target_name

        return target_name(obj, self.dataset)


def decide(relpath: str, folder: WatchedFolder, header_date: str, facts: dict,
           generation: str | None = None) -> Decision:
    """Apply the rules to one file's header facts (as the manifest stores them).

    For a 2026 server (``generation``), the night is the one the server will give it
    (servernight.py: the telescope's site as the watch stored it, else the header clock);
    otherwise the client's own rules decide (localtime.py).
    Raises ValueError for an unknown folder time zone or classification mode.
    """
    from oort_lib.local import rules

    kind, why = rules.decide_kind(relpath, folder.classify, facts.get("frame_type"),
                                  facts.get("frame_keyword"))  # fmt: skip
    dataset = rules.dataset_name(relpath.rpartition("/")[0], folder.name)
    if generation == "2026":
        from oort_lib.local.servernight import server_night
        from oort_lib.local.site import Site

        by = server_night(datetime.fromisoformat(header_date),
                          Site(folder.longitude, folder.site_timezone))
        return Decision(LocalTime(by.local, by.source, by.detail), by.night.isoformat(),
                        kind, why, dataset, by.label)
    date_loc = facts.get("date_loc")
    longitude, source = facts.get("site_longitude"), facts.get("longitude_source")
    if longitude is None and folder.longitude is not None:
        # The header has no site: the telescope's coordinates, as the server gave them.
        longitude = folder.longitude
        source = f"telescope {folder.telescope_name or folder.telescope} on the server"
    local = local_time(
        datetime.fromisoformat(header_date),
        timezone=folder.timezone,
        date_loc=datetime.fromisoformat(date_loc) if date_loc else None,
        longitude=longitude,
        longitude_source=source,
    )
    return Decision(local, rules.night_date(local.when).isoformat(), kind, why, dataset)


def header_facts(info: Any) -> dict:
    """The manifest columns of a headers.HeaderInfo (see FACTS and FRAME_FACTS)."""
    return {
        "date_source": info.date_source,
        "date_raw": info.date_raw,
        "date_loc": info.date_loc.replace(tzinfo=None).isoformat() if info.date_loc else None,
        "site_longitude": info.longitude,
        "longitude_source": info.longitude_keyword,
        "frame_type": info.frame_type,
        "frame_keyword": info.frame_keyword,
        "exposure": info.exposure,
        "filter_name": info.filter,
        "object_name": info.target.strip() or None if info.target else None,
    }
