"""What a run shows while it goes: a progress bar that fits the terminal, or plain lines.

The bar is drawn by tqdm, imported only once a run has files to send: the no-change path
of a cron tick never pays for it. It is sized to the terminal at every redraw (a window
resized mid-run, an 80-column SSH session on a Raspberry Pi) and redrawn in place.
"""

from __future__ import annotations

import sys
import threading

from oort_lib.views.terminal import width as terminal_width


class PlainLines:
    """-v without a terminal (cron, a pipe): one line per file as it is done, on stderr."""

    def planned(self, plan) -> None: ...

    def sent(self, nbytes: int) -> None: ...

    def done(self, item, outcome, reason) -> None:
        from oort_lib.views.render import file_line

        sys.stderr.write(file_line(item, outcome, reason) + "\n")
        sys.stderr.flush()

    def finish(self) -> None: ...


# Files done/total, then percent, bar, bytes, rate and time left; tqdm shrinks the bar to
# what the terminal leaves.
BAR_FORMAT = ("{desc}{percentage:3.0f}%|{bar}| {n_fmt}B/{total_fmt}B "
              "{rate_fmt}{postfix} ETA {remaining}")


class PlanningBar:
    """Planning's progress on a terminal: headers read of how many (the total is known
    within seconds, before the reading starts). Nothing at all when nothing is to read."""

    def __init__(self, stream=None):
        self.stream = stream or sys.stderr
        self._bar = None

    def __call__(self, done: int, total: int) -> None:
        if not total:
            return
        if self._bar is None:
            from tqdm import tqdm

            sized = terminal_width(self.stream, default=0) > 0
            # A terminal that tells no size: 80x24 (tqdm hides a bar on a 0-row screen).
            self._bar = tqdm(total=total, unit=" files", file=self.stream, leave=False,
                             dynamic_ncols=sized, ncols=None if sized else 80,
                             nrows=None if sized else 24, mininterval=0.2,
                             desc="planning: reading headers")
        self._bar.total = max(self._bar.total, total)
        self._bar.update(done - self._bar.n)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None


class Bar:
    """The bar on a terminal (stderr), redrawn in place: files done/total, bytes, rate
    and ETA; with `verbose`, each file's outcome printed above it."""

    def __init__(self, verbose: bool = False, stream=None):
        self.verbose = verbose
        self.stream = stream or sys.stderr
        self._lock = threading.Lock()
        self._bar = None
        self.files = self.total_files = 0
        self.reading = PlanningBar(self.stream)
        # Bytes each upload worker sent of the file it is on: a file done with fewer
        # (already on the server, failed before its end) is credited the rest, so a
        # run that did every file ends at 100% (a duplicate sends nothing at all).
        self._sending: dict[int, int] = {}

    def planned(self, plan) -> None:
        self.reading.close()
        if not plan.files:
            return  # nothing to draw: tqdm is not even imported
        from tqdm import tqdm

        self.total_files = plan.files
        # A terminal that tells no size (0 columns: some serial consoles, a bare pty)
        # gets 80, the width no terminal is narrower than in practice.
        sized = terminal_width(self.stream, default=0) > 0
        self._bar = tqdm(
            total=max(plan.total_bytes, 1), unit="B", unit_scale=True, unit_divisor=1000,
            file=self.stream, dynamic_ncols=sized, ncols=None if sized else 80,
            nrows=None if sized else 24,
            mininterval=0.2, leave=True, desc=self._desc(), bar_format=BAR_FORMAT,
        )

    def _desc(self) -> str:
        return f"{self.files}/{self.total_files} files "

    def sent(self, nbytes: int) -> None:
        if self._bar is not None:
            with self._lock:
                worker = threading.get_ident()
                self._sending[worker] = self._sending.get(worker, 0) + nbytes
                self._bar.update(nbytes)

    def done(self, item, outcome, reason) -> None:
        if self._bar is None:
            return
        with self._lock:
            self.files += 1
            # A file's outcome is recorded by the worker that sent it (uploader._record).
            rest = item.size - self._sending.pop(threading.get_ident(), 0)
            if rest > 0:
                self._bar.update(rest)
            if self.verbose:
                from oort_lib.views.render import file_line

                self._bar.write(file_line(item, outcome, reason), file=self.stream)
            self._bar.set_description_str(self._desc(), refresh=True)

    def finish(self) -> None:
        if self._bar is not None:
            with self._lock:
                self._bar.set_description_str(self._desc(), refresh=False)
                self._bar.close()
                self._bar = None
