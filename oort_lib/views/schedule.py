"""`oort-sync schedule`: a crontab entry or systemd user units for this installation
(launchagent.py and scheduled_task.py hold the macOS and Windows recipes).

oort-sync is a batch job, so scheduling is the operator's cron or systemd; these recipes
fill in the real paths (the executable, the home, --home) so they work when pasted as
they are. contrib/ holds the same recipes as static, commented examples.

Every path that goes into a recipe is checked first (scheduling.plain: no control
character, which would end a line and start a command of its own); the rest is quoted
the way each format reads it: sh quoting (and `%` escaped) in a cron line, systemd's
quoting (`%` specifiers and `$` doubled) in ExecStart, XML escaping in a plist or a task.
"""

from __future__ import annotations

import os
import shlex
import shutil
from pathlib import Path

from oort_lib.views.scheduling import EVERY_MINUTES, command, plain

SERVICE = "oort-sync.service"
TIMER = "oort-sync.timer"
UNIT_DIR = "~/.config/systemd/user"


def _user_home() -> str:
    return plain(os.environ.get("HOME") or str(Path.home()), "$HOME")


# --- cron ------------------------------------------------------------------------------


def _cron_quote(arg: str) -> str:
    # cron turns an unescaped % into a newline before the shell sees the line.
    return shlex.quote(arg).replace("%", "\\%")


def cron_recipe(home: str | None) -> str:
    """A crontab fragment (for `crontab -e`) running oort-sync every 5 minutes.

    Raises ConfigError (`plain`) for a path that no crontab can hold."""
    argv = command(home)
    bindir = os.path.dirname(argv[0])
    path = ":".join(dict.fromkeys([bindir, "/usr/local/bin", "/usr/bin", "/bin"]))
    # Lowest CPU and disk priority, so uploads never slow down image acquisition.
    niceness = []
    if shutil.which("nice"):
        niceness += ["nice", "-n", "10"]
    if shutil.which("ionice"):
        niceness += ["ionice", "-c3"]
    job = " ".join([*niceness, *(_cron_quote(a) for a in argv)])
    return "\n".join([
        f"# oort-sync: one batch run every {EVERY_MINUTES} minutes (user {_user_home()}).",
        "# Install: `crontab -e` and paste these lines (or append them to `crontab -l`).",
        "# cron mails what a job prints; `run -q` prints only problems. Uncomment to choose",
        "# the address (a working local mailer is needed):",
        "# MAILTO=you@example.org",
        f"PATH={path}",
        "# Exit code 75 means the previous run is still going (it holds the lock): this",
        "# tick stands aside and the next one carries on, so 75 is not a failure.",
        f"*/{EVERY_MINUTES} * * * * {job} || [ $? -eq 75 ]",
        "",
    ])


# --- systemd ---------------------------------------------------------------------------


def _systemd_quote(arg: str) -> str:
    # systemd expands % specifiers and $ variables in ExecStart; double them to keep them.
    arg = arg.replace("%", "%%").replace("$", "$$")
    if any(c in arg for c in " \t\"'\\;"):
        return '"' + arg.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return arg


def service_unit(exec_start: str) -> str:
    """The oneshot service running one batch (``exec_start`` is already a unit-file line)."""
    return f"""\
[Unit]
Description=oort-sync: upload new FITS/XISF files to Arcsecond.io (one batch run)
# Effective where the user manager can see network-online.target; harmless elsewhere,
# and oort-sync retries an unreachable server anyway.
After=network-online.target
Wants=network-online.target

[Service]
# One batch, then exit: the timer starts the next one. Never a daemon.
Type=oneshot
ExecStart={exec_start}
# 75: another run (a manual one, say) holds the lock; this one stood aside.
SuccessExitStatus=75
# Lowest priority, so uploads never slow down image acquisition on the same machine.
Nice=10
IOSchedulingClass=idle
CPUSchedulingPolicy=batch
# oneshot units have no start timeout by default. A first sync of a night of large frames
# over a slow uplink can take hours, but a run stuck far longer than that (a hung mount)
# is stopped (SIGTERM: in-flight files are retried) so later ticks can run again.
TimeoutStartSec=6h
"""


def timer_unit() -> str:
    """The timer: a run every 5 minutes on the clock, never two at once."""
    return f"""\
[Unit]
Description=Run oort-sync every {EVERY_MINUTES} minutes

[Timer]
# Every {EVERY_MINUTES} minutes on the clock. A tick that comes while the previous run is
# still uploading starts nothing: systemd never starts a oneshot service that is still
# active, so runs never stack up (and oort-sync's own lock would refuse it anyway).
OnCalendar=*:0/{EVERY_MINUTES}
# After the machine was off or asleep at a tick, run once as soon as it is back.
Persistent=true
# Spreads machines (or profiles) ticking together, to be gentle with the server.
RandomizedDelaySec=30
Unit={SERVICE}

[Install]
WantedBy=timers.target
"""


def systemd_units(home: str | None) -> dict[str, str]:
    """{file name: content} of the service and timer for this installation."""
    exec_start = " ".join(_systemd_quote(a) for a in command(home))
    return {SERVICE: service_unit(exec_start), TIMER: timer_unit()}


def systemd_recipe(home: str | None) -> str:
    """Both user units, with where to write them and the commands that enable them.

    Raises ConfigError (`plain`) for a path that no unit can hold."""
    units = systemd_units(home)
    lines = [
        "# oort-sync as a systemd user timer, for this installation.",
        f"# Write the two files below to {UNIT_DIR}/ (the lines between the markers), then:",
        "#   systemctl --user daemon-reload",
        f"#   systemctl --user enable --now {TIMER}",
        "#   loginctl enable-linger $USER   # run without a login session, from boot on",
        "# Check with `systemctl --user list-timers` and `journalctl --user -u oort-sync`.",
    ]
    for name, text in units.items():
        lines += ["", f"# ---- {UNIT_DIR}/{name} ----", text.rstrip("\n"),
                  f"# ---- end of {name} ----"]
    return "\n".join(lines) + "\n"


KINDS = ("cron", "systemd", "launchd", "windows")


def recipe(kind: str, home: str | None, log_dir: Path) -> str:
    """What `schedule --KIND` gives (`kind`: one of KINDS) for this installation, `home`
    the --home of the runs, `log_dir` where the launchd agent writes.

    Raises ConfigError (`plain`) for a path that the recipe cannot hold."""
    if kind == "launchd":
        from oort_lib.views.launchagent import recipe as launch_agent

        return launch_agent(home, log_dir)
    if kind == "windows":
        from oort_lib.views.scheduled_task import task_xml

        return task_xml(home)
    return cron_recipe(home) if kind == "cron" else systemd_recipe(home)


def encoded(text: str) -> bytes:
    """The bytes of a recipe, wherever they go: UTF-8 (what the task's and the agent's XML
    declare), never the console's code page (cp1252 would make the task invalid XML)."""
    return text.encode("utf-8")


def write_recipe(text: str, output: str) -> Path:
    """`text` written to the file `output` in UTF-8, whole or not at all; its path.

    Raises OSError (the folder missing or not writable)."""
    target = Path(output).expanduser().absolute()
    tmp = target.with_name(f"{target.name}.{os.getpid()}.tmp")
    try:
        tmp.write_bytes(encoded(text))
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    return target
