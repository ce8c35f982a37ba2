"""The log file in the state dir: size-rotated, one line per file outcome and per run."""

from __future__ import annotations

import json
import logging
import os
import re
from collections import deque
from pathlib import Path

from oort_lib.escape import escaped
from oort_lib.state.records import rfc3339

LOGGER = "oort_sync"
# Defence in depth: whatever a message holds, a key-looking header value never lands.
_KEY = re.compile(r"(Key|Token)\s+[A-Za-z0-9_\-]{8,}")


class _LogFile(logging.FileHandler):
    """The handler setup() attaches (told apart from any a host program adds): a log file
    rotated by size, `max_bytes` each, `backups` old ones kept (none: emptied instead).

    Its rotation survives a reader holding the file: Windows refuses to rename a file
    another process has open (an editor, `Get-Content -Wait`, an antivirus scan); the run
    then keeps writing to the current file and the next run rotates it. Written here
    rather than taken from logging.handlers, whose import (sockets, pickle, queues) was
    ~8 ms of every run, a tenth of a no-change tick's own work.
    """

    _stuck = False
    _regular = True
    failed: OSError | None = None  # the first write that failed (disk full...), if any

    def __init__(self, filename: Path, max_bytes: int, backups: int, **options) -> None:
        super().__init__(filename, mode="a", delay=True, **options)
        self.max_bytes, self.backups = max_bytes, backups

    def handleError(self, record: logging.LogRecord) -> None:
        # The standard handler prints a traceback on stderr for every line it cannot
        # write ("--- Logging error ---"): a full disk would bury the one useful line.
        import sys

        exc = sys.exc_info()[1]
        if type(self).failed is None and isinstance(exc, OSError):
            type(self).failed = exc

    def _open(self):
        # Made with the first line, not at setup: a command that logs nothing (status,
        # watch) must not create the state folder.
        Path(self.baseFilename).parent.mkdir(parents=True, exist_ok=True)
        return super()._open()

    def emit(self, record: logging.LogRecord) -> None:
        try:
            if self._full(record):
                self._rotate()
        except Exception:  # noqa: BLE001 - as logging does: the line is the one lost
            self.handleError(record)
            return
        super().emit(record)

    def _full(self, record: logging.LogRecord) -> bool:
        """True when `record` would take the file past max_bytes (a regular file only:
        a log sent to a device or a pipe is never renamed)."""
        if self._stuck or self.max_bytes <= 0:
            return False
        if self.stream is None:
            self.stream = self._open()
            self._regular = os.path.isfile(self.baseFilename)
        if not self._regular:
            return False
        self.stream.seek(0, os.SEEK_END)
        return self.stream.tell() + len(self.format(record)) + 1 >= self.max_bytes

    def _rotate(self) -> None:
        """log.N-1 -> log.N ... log -> log.1, the oldest dropped; the next line opens a
        new file. A rename refused (a reader holding the file on Windows) stops the
        rotation for this run: the file grows a little past max_bytes until the next."""
        self.stream.close()
        self.stream = None
        base = self.baseFilename
        try:
            if self.backups == 0:
                os.remove(base)
                return
            for number in range(self.backups, 0, -1):
                older = f"{base}.{number - 1}" if number > 1 else base
                newer = f"{base}.{number}"
                if os.path.exists(older):
                    if os.path.exists(newer):
                        os.remove(newer)
                    os.rename(older, newer)
        except OSError:
            self._stuck = True


class _Redact(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if _KEY.search(message):
            record.msg, record.args = _KEY.sub(r"\1 ****", message), ()
        return True


class _Escape(logging.Filter):
    """Control characters of the message written as \\xNN (text logs only): a file name
    holding a line break or an escape sequence would forge a line (or a terminal's
    colours) for whoever reads the log."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        shown = escaped(message)
        if shown != message:
            record.msg, record.args = shown, ()
        return True

# Structured fields a log call may carry (`extra=`), copied into a JSON line as they are.
FIELDS = ("run_id", "file", "outcome", "bytes", "dataset", "reason", "exit_code", "detail")


class _JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = {
            "time": rfc3339(record.created),
            "level": record.levelname.lower(),
            "message": record.getMessage(),
        }
        for name in FIELDS:
            value = getattr(record, name, None)
            if value is not None:
                line[name] = value
        return json.dumps(line, ensure_ascii=False, default=str)


def setup(log_file: Path, *, level: int = logging.INFO, max_bytes: int = 1_000_000,
          backups: int = 3, json_lines: bool = False) -> logging.Handler:
    """Attach a rotating file handler to the oort_sync logger (disk use stays bounded:
    at most max_bytes * (backups + 1))."""
    logger = logging.getLogger(LOGGER)
    close(logger)  # one log file at a time, even when main() runs twice in a process
    _LogFile.failed = None  # a failure writing an earlier log is not this one's
    handler = _LogFile(
        log_file, max_bytes, backups, encoding="utf-8",
        errors="backslashreplace",  # a non-UTF-8 file name must not lose the line
    )
    handler.setLevel(level)
    handler.addFilter(_Redact())
    if not json_lines:
        handler.addFilter(_Escape())
    handler.setFormatter(
        _JsonFormatter() if json_lines
        else logging.Formatter("%(asctime)s %(levelname)s %(message)s", "%Y-%m-%d %H:%M:%S")
    )
    logger.setLevel(level)
    logger.addHandler(handler)
    return handler


def current() -> Path | None:
    """The log file setup() attached, if any (for "details are in ...")."""
    for handler in logging.getLogger(LOGGER).handlers:
        if isinstance(handler, _LogFile):
            return Path(handler.baseFilename)
    return None


def write_failure() -> OSError | None:
    """The first error met writing the log in this process (a full disk...), if any."""
    return _LogFile.failed


def close(logger: logging.Logger | None = None) -> None:
    """Detach and close the log file handler(s) that setup() attached. Raises nothing:
    the lines a full disk refused are lost, as handleError lost them already."""
    logger = logger or logging.getLogger(LOGGER)
    for handler in [h for h in logger.handlers if isinstance(h, _LogFile)]:
        logger.removeHandler(handler)
        try:
            handler.close()
        except (OSError, ValueError) as exc:
            # Closing flushes the buffer a full disk refused, and fails again; the file
            # is closed all the same, so nothing is tried (and printed) at exit either.
            if _LogFile.failed is None and isinstance(exc, OSError):
                _LogFile.failed = exc


def tail(log_file: Path, lines: int = 50) -> list[str]:
    """The last lines of the log (older rotated files first when the current one is short)."""
    files = [log_file.with_name(f"{log_file.name}.{n}") for n in range(9, 0, -1)] + [log_file]
    kept: deque[str] = deque(maxlen=max(lines, 0))
    for path in files:
        try:
            with open(path, encoding="utf-8", errors="replace") as handle:
                for line in handle:
                    kept.append(line.rstrip("\n"))
        except FileNotFoundError:
            continue
    return list(kept)
