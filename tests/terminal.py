"""oort-sync run as a person runs it: with a pseudo-terminal as stdout and stderr."""

from __future__ import annotations

import fcntl
import os
import pty
import select
import struct
import subprocess
import sys
import termios

from conftest import ROOT


def run_in_terminal(args, env: dict | None = None, columns: int | None = None
                    ) -> tuple[int, str]:
    """(exit code, everything the terminal received); `columns` x 24 if given."""
    leader, follower = pty.openpty()
    if columns:
        fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, columns, 0, 0))
    proc = subprocess.Popen([sys.executable, str(ROOT / "oort_sync.py"), *args],
                            stdin=subprocess.DEVNULL, stdout=follower, stderr=follower,
                            env={**os.environ, **(env or {})})
    os.close(follower)
    chunks = []
    while True:
        ready, _, _ = select.select([leader], [], [], 60)
        if not ready:
            break
        try:
            data = os.read(leader, 65536)
        except OSError:
            break
        if not data:
            break
        chunks.append(data)
    proc.wait(30)
    os.close(leader)
    return proc.returncode, b"".join(chunks).decode(errors="replace")
