"""Content hashes of files, streamed in constant memory.

BLAKE2b: in the standard library (no dependency), faster than SHA-256 on 64-bit CPUs
without SHA instructions (the mini PCs and Raspberry Pis oort-sync runs on), and
collision-resistant, so "same hash" safely means "same content". It is also the hash of
`b2sum`, the floor the planning benchmark compares with.

A file never uploaded before is hashed while its upload streams it (body.FileBody), so it
is read once in all; only a file that was uploaded before is hashed when planning, to
tell a real change (re-upload) from a mere touch (nothing to do).
"""

from __future__ import annotations

import hashlib
import os

from oort_lib.errors import local_problem

_BUFFER = 1 << 20


def new_hash():
    """The hash object of the manifest (also fed by uploads as they stream a file)."""
    return hashlib.blake2b(digest_size=32)


def file_hash(path: str) -> tuple[str, int]:
    """(hex digest, bytes read) of a file, read once in 1 MiB blocks.

    Raises LocalTransient when the file cannot be opened or read (retried later).
    """
    digest = new_hash()
    buffer = bytearray(_BUFFER)
    view = memoryview(buffer)
    total = 0
    try:
        with open(path, "rb", buffering=0) as handle:
            try:
                os.posix_fadvise(handle.fileno(), 0, 0, os.POSIX_FADV_SEQUENTIAL)
            except (AttributeError, OSError):
                pass
            while True:
                count = handle.readinto(buffer)
                if not count:
                    break
                digest.update(view[:count])
                total += count
    except OSError as exc:
        raise local_problem(exc, "hash") from None
    return digest.hexdigest(), total
