"""What the one failure path (cli.py) says of an error: a plain line for stderr and a
documented exit code; the error logged, and for a bug the traceback in the log."""

from __future__ import annotations

import errno
import logging

from oort_lib.errors import EXIT_SIGINT, EXIT_SOFTWARE, EXIT_USAGE, LockHeld, OortError


def told(exc: BaseException, command: str) -> tuple[str, int]:
    """(the line for stderr, the exit code) of an error `command` ended with: an
    OortError, an interrupt (Ctrl-C), an OSError of the state or config folder itself,
    else a bug. Logs it first (the log is still open); raises nothing."""
    from oort_lib.state import logfile

    log = logging.getLogger("oort_sync")
    if isinstance(exc, OortError):
        log.log(logging.INFO if isinstance(exc, LockHeld) else logging.ERROR,
                "%s: %s (exit %s)", command, exc.message, exc.exit_code)
        return f"oort-sync: {exc.message}", exc.exit_code
    if isinstance(exc, KeyboardInterrupt):
        return "oort-sync: interrupted.", EXIT_SIGINT
    if isinstance(exc, OSError):
        # The state or config folder itself: not writable, disk full, read-only mount.
        log.error("%s: %s", command, exc)
        where = f"{exc.filename}: " if exc.filename else ""
        if exc.errno == errno.ENOSPC:
            return (f"oort-sync: {where}the disk is full ({exc.strerror}). Free some space; "
                    "what was recorded before is intact."), EXIT_USAGE
        return (f"oort-sync: {where}{exc.strerror or exc}. Check that this folder is "
                "writable and the disk is not full."), EXIT_USAGE
    log.critical("internal error in `oort-sync %s`", command, exc_info=exc)
    where, failed = logfile.current(), logfile.write_failure()
    if where is None or failed is not None:
        details = f"the log could not be written ({failed or 'no log file'})"
    else:
        details = f"the traceback is in {where} (`oort-sync logs`)"
    return (f"oort-sync: internal error in `{command}` ({type(exc).__name__}); {details}. "
            "Please report it."), EXIT_SOFTWARE
