"""The API generations a server may speak, each by the Remote that speaks it.

The one module that knows both: remote.py defines what a generation answers and knows
neither, gen2021 and gen2026 build on it; whoever opens a destination asks here.
"""

from __future__ import annotations

from oort_lib.arcsecond.gen2021 import Gen2021
from oort_lib.arcsecond.gen2026 import Gen2026
from oort_lib.arcsecond.remote import Cache, Remote

# Each generation names itself (Remote.generation): "2021", "2026".
REMOTES: dict[str, type[Remote]] = {kind.generation: kind for kind in (Gen2021, Gen2026)}


def open_remote(generation: str, client, cache: Cache, destination: str) -> Remote:
    """The Remote of a generation ("2021" or "2026"; any other is taken for 2021)."""
    return REMOTES.get(generation, Gen2021)(client, cache, destination)
