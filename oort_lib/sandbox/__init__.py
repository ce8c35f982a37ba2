"""The sandbox: a small Arcsecond-compatible server, for tests, the demo and benchmarks.

    from oort_lib.sandbox import Sandbox
    with Sandbox(tmp_dir, dialect="both") as sb:
        ...  # sb.url, sb.seed.upload_key, sb.faults.error_rate = 0.2, sb.datafiles()

It implements the API contract of docs/arcsecond-api.md over real HTTP on loopback, in the
2021 generation, the 2026 one, or both (the default), every path also under ``/api`` as
Arcsecond.local serves it. It keeps its metadata in SQLite and the uploaded files on disk
under ``data_dir``, starts with the seeded accounts of ``Seed``, files 2026 uploads into
night logs itself, and injects the faults of ``Faults`` on demand.
"""

from __future__ import annotations

from oort_lib.sandbox.faults import Faults
from oort_lib.sandbox.seed import Seed
from oort_lib.sandbox.service import Sandbox

__all__ = ["Faults", "Sandbox", "Seed"]
