"""The sandbox: a small Arcsecond-compatible server, for tests, the demo and benchmarks.

    from oort_lib.sandbox import Sandbox
    with Sandbox(tmp_dir) as sb:
        ...  # sb.url, sb.seed.upload_key, sb.faults.error_rate = 0.2, sb.objects("datafiles")

It implements the API contract of arcsecond-api.md over real HTTP on loopback, keeps its
metadata in SQLite and the uploaded files on disk under ``data_dir``, starts with the
seeded accounts of ``Seed``, and injects the faults of ``Faults`` on demand.
"""

from __future__ import annotations

from .faults import Faults
from .seed import Seed
from .service import Sandbox

__all__ = ["Faults", "Sandbox", "Seed"]
