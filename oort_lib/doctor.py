"""`oort-sync doctor`: is everything set up right? Each check says what it found and, when
something is wrong, the fix in plain words.

Local checks first (the state folder, the run lock, the watched folders, the schedule and
the last finished run), then the server's (servercheck.py): the credentials verify, the
server's clock is within 5 minutes of this machine's, the organisations may be uploaded
to, the telescopes exist and (2026) have a site. The server is only read. When it refuses
the key or cannot be reached, the local checks are still made and shown, the checks that
need the server are left out, and the exit code is 3 or 4, as for every command;
otherwise 1 when a problem is found, 0 when none (warnings allowed). The checks are
shown by views/checkup.py.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterable
from pathlib import Path

from oort_lib.errors import EXIT_AUTH, EXIT_FILES_FAILED, EXIT_OK, EXIT_UNREACHABLE, OortError
from oort_lib.servercheck import server_checks
from oort_lib.state.config import Folder, Paths, Settings
from oort_lib.state.status import Verdict
from oort_lib.views.checkup import Check, ok, problem, warning

RECENT = 3600.0  # a schedule ticks every 5 minutes: an hour without a finished run is wrong
MIN_FREE = 100 << 20  # bytes free beside the manifest and the log


def diagnose(paths: Paths, settings: Settings, *, home: str | None = None,
             now: float | None = None) -> list[Check]:
    """Every check, local ones first. `home` is this profile's --home (default:
    $OORT_SYNC_HOME; neither: the default profile), for telling its schedule from
    another's; `now` this machine's clock. Raises nothing but a bug's exceptions: what
    fails is a problem found."""
    now = time.time() if now is None else now
    home = home or os.environ.get("OORT_SYNC_HOME") or None
    return [state_folder(paths), run_lock(paths), *watched_folders(settings.folders),
            schedule(paths, settings, home, now), *server_checks(paths, settings)]


def exit_code(checks: Iterable[Check]) -> int:
    """3 when the server refused the key, 4 when it could not be reached, else 1 when a
    problem was found, else 0."""
    problems = [c for c in checks if c.status == Verdict.PROBLEM]
    for code in (EXIT_AUTH, EXIT_UNREACHABLE):
        if any(c.exit_code == code for c in problems):
            return code
    return EXIT_FILES_FAILED if problems else EXIT_OK


# --- here -------------------------------------------------------------------------------


def state_folder(paths: Paths) -> Check:
    """The state folder (manifest, lock, log) can be written and has room."""
    from oort_lib.views.render import human_bytes

    name = "state folder"
    folder = Path(paths.state_dir)
    fix = (f"Make {folder} writable by this user (its owner and mode), or keep the state "
           "elsewhere with --home=DIR (or $OORT_SYNC_HOME).")
    if not folder.exists():
        parent = next((p for p in folder.parents if p.exists()), None)
        if parent is not None and os.access(parent, os.W_OK | os.X_OK):
            return ok(name, f"{folder} is not made yet: the first run makes it.")
        return problem(name, f"{folder} does not exist and cannot be made here "
                       f"({parent} is not writable).", fix)
    probe = folder / f".doctor-{os.getpid()}.tmp"
    try:  # really written: a read-only mount or a full quota shows only this way
        try:
            with open(probe, "xb") as written:
                written.write(b"oort-sync doctor")
                written.flush()
                os.fsync(written.fileno())
        finally:
            probe.unlink(missing_ok=True)
        free = shutil.disk_usage(folder).free
    except OSError as exc:
        return problem(name, f"{folder} cannot be written ({exc.strerror or exc}).", fix)
    if free < MIN_FREE:
        return problem(name, f"{folder} is writable, but its disk has only "
                       f"{human_bytes(free)} free.",
                       "Free some space on that disk: the manifest and the log grow there, "
                       "and a full disk stops the runs.")
    return ok(name, f"{folder} is writable, {human_bytes(free)} free.")


def run_lock(paths: Paths) -> Check:
    """The run lock is free, or held by a run that is alive."""
    from oort_lib.state.lock import lock_state

    name = "run lock"
    try:
        state = lock_state(paths.lock_file)
    except OSError as exc:
        return problem(name, f"{paths.lock_file} cannot be looked at ({exc.strerror}).",
                       "Make the state folder writable by this user.")
    if state.holder is None:
        left = (f" (pid {state.leftover.pid}, a run that was killed, left a note; the next "
                "run replaces it)" if state.leftover is not None else "")
        return ok(name, f"free{left}.")
    if state.holder_alive:
        return ok(name, f"held by the run in progress ({state.holder.describe()}).")
    return problem(
        name, f"held, but its run ({state.holder.describe()}) is gone: another process it "
        "started keeps the lock file open, and every run exits 75.",
        f"Find that process with `fuser -v {paths.lock_file}` (or `lsof "
        f"{paths.lock_file}`) and end it.")


def watched_folders(folders: Iterable[Folder]) -> list[Check]:
    """Each watched folder exists and can be listed."""
    folders = list(folders)
    if not folders:
        return [warning("watched folders", "none.",
                        "Watch one: oort-sync watch FOLDER -t TELESCOPE (see `oort-sync "
                        "telescopes`).")]
    return [_folder(folder.path) for folder in folders]


def _folder(path: str) -> Check:
    from oort_lib.host import unreadable_folder_hint

    name = f"folder {path}"
    real = os.path.realpath(os.path.expanduser(path))
    if not os.path.exists(real):
        return problem(name, "missing (a disk not mounted, or the folder moved).",
                       f"Mount the disk, or stop watching it: oort-sync unwatch {path}")
    if not os.path.isdir(real):
        return problem(name, f"{real} is not a folder.",
                       f"Stop watching it: oort-sync unwatch {path}")
    try:
        with os.scandir(real) as entries:
            next(iter(entries), None)  # one entry read: the folder can be listed
    except OSError as exc:
        return problem(name, f"cannot be read ({exc.strerror or exc})"
                       + unreadable_folder_hint(exc) + ".",
                       "Give this user read access to it (its owner, group or mode).")
    return ok(name, "exists and is readable.")


def schedule(paths: Paths, settings: Settings, home: str | None, now: float) -> Check:
    """A schedule of this profile is installed, and a run finished recently."""
    from oort_lib.run.outage import duration
    from oort_lib.views.installed import installed

    name = "schedule"
    found = installed(home)
    enabled = [s for s in found.found if s.enabled]
    last, running = _last_finished(paths, settings)
    if isinstance(last, str):  # the manifest could not be read
        return problem("manifest", last, "See `oort-sync status`; `run --rebuild-manifest` "
                       "starts a new manifest and keeps the old one aside.")
    if last is None:
        when = "no run has finished yet"
    else:
        ended, code = last
        when = f"the last finished run ended {duration(now - ended)} ago (exit code {code})"
    if running:
        when += "; a run is in progress"
    if not enabled:
        off = found.found
        said = (f"written but not enabled: {', '.join(s.where for s in off)}" if off
                else f"none found (looked at {', '.join(found.looked)})")
        how = ("Enable it: " + "; ".join(dict.fromkeys(_enabling(s) for s in off)) if off
               else "`oort-sync schedule --cron` (or --systemd, --launchd, --windows) prints "
               "one for this installation; contrib/ has the steps.")
        return warning(name, f"{said}; {when}.", how)
    what = ", ".join(f"{s.kind} ({s.where})" for s in enabled)
    if running or (last is not None and now - last[0] <= RECENT):
        return ok(name, f"{what}; {when}.")
    return problem(name, f"{what} is installed, but {when}.",
                   "See why the scheduled runs do not start or do not finish: `oort-sync "
                   "logs`, cron's mail, `journalctl --user -u oort-sync` (systemd), "
                   "launchd.log beside the log (macOS), the task's Last Result (Windows).")


def _enabling(schedule) -> str:
    """The command that turns on a schedule written but not enabled."""
    from oort_lib.views.scheduled_task import TASK_NAME

    if schedule.kind == "windows":
        return f"schtasks /Change /TN {TASK_NAME} /ENABLE"
    if schedule.where.startswith("/etc/systemd/system"):
        return "sudo systemctl enable --now oort-sync.timer"
    return "systemctl --user enable --now oort-sync.timer"


def _last_finished(paths: Paths, settings: Settings) -> tuple[tuple | str | None, bool]:
    """((ended_at, exit code) of the last run that finished (exit code 0 or 1, as
    `status`'s last_success), or None, or what stops the manifest being read; whether a
    run holds the lock)."""
    from oort_lib.state import manifest as mf
    from oort_lib.state.lock import current_holder

    try:
        running = current_holder(paths.lock_file) is not None
    except OSError:
        running = False
    try:
        with mf.Manifest(paths.manifest_file, create=False, readonly=True,
                         origin=(settings.api, None)) as manifest:
            rows = manifest.rows("SELECT ended_at, exit_code FROM runs WHERE exit_code IN "
                                 "(0, 1) AND ended_at IS NOT NULL ORDER BY id DESC LIMIT 1")
    except OortError as exc:
        return exc.message, running
    return ((rows[0]["ended_at"], rows[0]["exit_code"]) if rows else None), running
