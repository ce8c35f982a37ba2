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

from helpers import ROOT


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
    while data := _shown_next(leader, 60):
        chunks.append(data)
    proc.wait(30)
    os.close(leader)
    return proc.returncode, b"".join(chunks).decode(errors="replace")


def converse(args, replies: list[tuple[str, bytes]], env: dict | None = None,
             timeout: float = 60, stdin=None) -> tuple[int, str]:
    """(exit code, everything the terminal showed) of oort-sync run in a terminal of its
    own (stdin included, and its controlling terminal: what getpass opens as /dev/tty).
    `replies`: (text to wait for, bytes to type then), in order; b"\\x04" is Ctrl-D.
    `stdin` replaces the terminal as standard input (subprocess.DEVNULL)."""
    leader, follower = pty.openpty()

    def own_terminal():  # runs after setsid (start_new_session): the pty becomes /dev/tty
        fcntl.ioctl(1, termios.TIOCSCTTY, 0)

    proc = subprocess.Popen([sys.executable, str(ROOT / "oort_sync.py"), *args],
                            stdin=follower if stdin is None else stdin, stdout=follower,
                            stderr=follower, start_new_session=True, preexec_fn=own_terminal,
                            env={**os.environ, **(env or {})})
    os.close(follower)
    shown, waiting, seen = b"", list(replies), 0  # replies wait for text after `seen`
    while data := _shown_next(leader, timeout):
        shown += data
        while waiting and shown.find(waiting[0][0].encode(), seen) >= 0:
            text, typed = waiting.pop(0)
            seen = shown.find(text.encode(), seen) + len(text.encode())
            os.write(leader, typed)
    proc.wait(30)
    os.close(leader)
    return proc.returncode, shown.decode(errors="replace")


def _shown_next(leader: int, timeout: float) -> bytes:
    """What the terminal shows next; b"" at its end, or after `timeout` s of silence."""
    ready, _, _ = select.select([leader], [], [], timeout)
    if not ready:
        return b""
    try:
        return os.read(leader, 65536)
    except OSError:  # EIO: the program ended and closed its side
        return b""
