"""A graceful stop of a run on SIGTERM (systemd, kill), SIGINT (Ctrl-C) or, on Windows,
SIGBREAK (Ctrl-Break)."""

from __future__ import annotations

import signal
import threading

from oort_lib.errors import EXIT_SIGINT, EXIT_SIGTERM


class GracefulStop:
    """While active (a with-block), SIGTERM/SIGINT set `stop`: no new upload starts.
    After `GRACE` seconds, or at a second signal, `abort` is set too and the uploads in
    flight are cut. The run then ends normally, its manifest consistent; `exit_code` is
    130 or 143 (0 when no signal came)."""

    GRACE = 20.0

    def __init__(self):
        self.stop = threading.Event()
        self.abort = threading.Event()
        self.exit_code = 0
        self.signal_name = ""
        self._previous: dict = {}

    def _handle(self, signum, frame) -> None:
        if self.stop.is_set():
            self.abort.set()
            return
        self.signal_name = signal.Signals(signum).name
        # Ctrl-Break is Windows' other Ctrl-C: a person at the console, like SIGINT.
        self.exit_code = EXIT_SIGTERM if signum == signal.SIGTERM else EXIT_SIGINT
        self.stop.set()
        timer = threading.Timer(self.GRACE, self.abort.set)
        timer.daemon = True
        timer.start()

    def __enter__(self) -> GracefulStop:
        from oort_lib.host import interrupt_signals

        for signum in interrupt_signals():
            self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
