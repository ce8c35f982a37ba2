"""`oort-sync run` as the operator starts and sees it: the plan of a dry run, the
warnings about the credentials, the run under a graceful stop with its progress shown,
a lasting problem said once (run/outage.py), the monitor pinged, a failure or a recovery
notified (notify.py), and what a finished run says with its exit code."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from typing import NamedTuple

from oort_lib.run import outage, sync
from oort_lib.run.interrupt import GracefulStop
from oort_lib.run.plan import Plan
from oort_lib.run.queue import Queue, Scratch
from oort_lib.state import credentials
from oort_lib.state.config import Paths, Settings, select_folders
from oort_lib.state.credentials import Credentials
from oort_lib.views import notify, ping
from oort_lib.views.render import result_lines

OUTAGES = "outages.json"  # the quiet outages' state file, in the state folder (outage.py)


class Options(NamedTuple):
    """The choices of a `run` command line (None: the config's)."""

    folders: tuple[str, ...] = ()  # only these watched folders; all when empty
    jobs: int | None = None
    min_age: float | None = None
    retry_failed: bool = False
    bwlimit: str | None = None
    rebuilt: bool = False  # the manifest was just rebuilt (sync.run)
    ping_url: str | None = None
    notify_url: str | None = None
    verbose: bool = False


class Told(NamedTuple):
    """What a finished run says, all on stderr but `summary`."""

    exit_code: int
    summary: dict  # for --json: RunResult.summary() and the exit code
    lines: list[str]  # the summary a person watching sees
    problems: list[str]  # always said, but a lasting problem already said
    recovered: list[str]  # lasting problems over since the last run


@contextmanager
def dry_run(paths: Paths, settings: Settings, options: Options, *, listing: bool,
            progress: bool) -> Iterator[Plan]:
    """The plan a run would follow (sync.dry_run), the reading of headers shown on the
    terminal when `progress`. With `listing`, its files are listed in a scratch manifest
    (queue.Scratch, in the state folder when there is one: on disk, not in a tmpfs),
    read while the plan is shown and removed after. Raises what sync.dry_run raises."""
    planning = None
    if progress:
        from oort_lib.views.progress import PlanningBar

        planning = PlanningBar()
    with ExitStack() as stack:
        queue = None
        if listing:
            parent = str(paths.state_dir) if paths.state_dir.is_dir() else None
            queue = Queue(stack.enter_context(Scratch(parent)).manifest)
        plan = sync.dry_run(paths, settings, options.folders, min_age=options.min_age,
                            retry_failed=options.retry_failed,
                            creds=credentials.load(paths.credentials_file),
                            queue=queue, reading=planning)
        if planning is not None:
            planning.close()
        yield plan


def logged_in(paths: Paths) -> tuple[Credentials, list[str]]:
    """The credentials a run uses, and the warnings about them (a credentials file
    others may read, a key variable of blanks only). Raises AuthError when nobody is
    logged in."""
    creds = credentials.require(paths.credentials_file)
    warning = credentials.permission_warning(paths.credentials_file)
    warnings = [warning] if warning else []
    used = "the stored credentials" if creds.source == "file" else creds.source
    warnings += [f"${name} holds only blanks and is ignored (the key comes from {used})."
                 for name in credentials.blank_variables()]
    return creds, warnings


def run(paths: Paths, settings: Settings, creds: Credentials, options: Options, *,
        progress: bool) -> Told:
    """One run (sync.run) until its end or a signal's graceful stop, shown as a bar on
    the terminal when `progress` (else, with `verbose`, a line per file). A problem that
    goes on from the previous run is not said again unless a person is watching
    (`progress` or `verbose`): the log has it, the exit code says it.

    The first failing run and the first that succeeds again are notified to the notify
    URL (notify.py); a run that ends by an error is recorded as failing (and notified)
    before the error goes on.

    Raises LockHeld when another run holds the lock, ConfigError for a notify URL that is
    not one notifications can go to (before anything starts), and what sync.run raises
    before anything is sent.
    """
    from oort_lib.views.progress import Bar, PlainLines

    events = Bar(verbose=options.verbose) if progress else (
        PlainLines() if options.verbose else sync.Events())
    stopper = GracefulStop()
    url = options.ping_url or settings.ping_url
    notify_url = notify.address(options.notify_url, settings.notify_url, paths.config_file)
    state_file = paths.state_dir / OUTAGES
    with stopper:
        try:
            result = sync.run(paths, settings, creds, options.folders, jobs=options.jobs,
                              min_age=options.min_age, retry_failed=options.retry_failed,
                              events=events, stop=stopper.stop, abort=stopper.abort,
                              on_locked=(lambda: ping.send(url, start=True)) if url else None,
                              stop_code=lambda: stopper.exit_code, bwlimit=options.bwlimit,
                              rebuilt=options.rebuilt)
        except Exception as exc:
            notify.after_error(notify_url, state_file, exc, creds.key)
            raise
    events.finish()
    if result.generation:
        credentials.remember_generation(paths.credentials_file, settings.api,
                                        result.generation)
    code = stopper.exit_code or result.exit_code
    checked = [f.path for f in select_folders(settings.folders, options.folders)]
    # A run stopped by a signal says nothing of whether runs fail.
    stopped = bool(stopper.exit_code or result.signal_code)
    verdict = outage.settle(state_file, result, checked, time.time(),
                            failing=None if stopped else notify.failing(code))
    hide = () if progress or options.verbose else verdict.quiet
    lines, problems = result_lines(result, verbose=options.verbose, hide=hide)
    if stopper.exit_code:
        problems.append(f"Stopped by {stopper.signal_name}; files in flight are retried "
                        "next run.")
    if url:
        ping.send(url, code, ping.reason(result, stopper.signal_name) if code else None)
    if notify_url and verdict.turn is not None:
        notify.tell(notify_url, state_file, notify.message(verdict.turn, result, code, creds.key))
    return Told(code, dict(result.summary(), exit_code=code), lines, problems,
                list(verdict.recovered))
