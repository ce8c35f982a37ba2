"""Which of the schedules `oort-sync schedule` prints is installed on this machine, for
this profile: a crontab line, the systemd user timer, the launchd agent, the Windows task
(`doctor` asks; schedule.py, launchagent.py and scheduled_task.py name what they install).

A schedule is this profile's when it runs `oort-sync run` with this profile's `--home`
(or, for the default profile, with none). Only what the platform has is looked at: the
crontab and systemd units on Linux and the BSDs (cron on macOS too), the agent on macOS,
the task on Windows. Nothing is changed; each program asked gets a few seconds.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

from oort_lib.host import MACOS, WINDOWS, system
from oort_lib.views.launchagent import AGENT_FILE
from oort_lib.views.schedule import SERVICE, TIMER
from oort_lib.views.scheduled_task import TASK_NAME

ASK_SECONDS = 10  # a crontab or schtasks that hangs (a locked spool) is not waited for
_COMMAND = ("oort-sync", "oort_sync", "oort_lib")  # the entry script, the checkout, -m


class Installed(NamedTuple):
    """One schedule found."""

    kind: str  # "cron", "systemd", "launchd" or "windows" (schedule.KINDS)
    where: str  # what holds it: "crontab -l", the unit's or the agent's path, the task
    enabled: bool  # False: written but not enabled (a timer never enabled, a task off)


class Looked(NamedTuple):
    """What was found, and what was looked at (said when nothing is found)."""

    found: list[Installed]
    looked: list[str]


def installed(home: str | None, *, run: Callable | None = None,
              environ: dict | os._Environ | None = None, kind: str | None = None) -> Looked:
    """The schedules of the profile whose `--home` is `home` (None: the default one) on
    this machine (`kind`: host.system()'s, by default). `run` replaces subprocess.run
    (tests). Raises nothing: a program that fails or hangs has nothing installed."""
    run = run or subprocess.run
    env = os.environ if environ is None else environ
    kind = kind or system()
    wanted = _home_text(home)
    looked: list[str] = []
    found: list[Installed] = []
    if kind == WINDOWS:
        found += _task(run, wanted, looked)
        return Looked(found, looked)
    found += _cron(run, wanted, looked)
    if kind == MACOS:
        found += _agent(env, wanted, looked)
    else:
        found += _timers(env, wanted, looked)
    return Looked(found, looked)


def _home_text(home: str | None) -> str | None:
    # As the recipes write it (scheduling.command): absolute, ~ expanded.
    return str(Path(home).expanduser().absolute()) if home else None


def _ours(text: str, wanted: str | None) -> bool:
    """Whether a command line (or a unit, a plist, a task) runs this profile's runs."""
    if not any(name in text for name in _COMMAND) or "run" not in text:
        return False
    if wanted is not None:
        return wanted in text
    return "--home" not in text and "OORT_SYNC_HOME" not in text


def _ask(run: Callable, argv: list[str]) -> str | None:
    """What `argv` prints, or None when it fails, is missing or hangs."""
    if shutil.which(argv[0]) is None:
        return None
    try:
        done = run(argv, capture_output=True, timeout=ASK_SECONDS, check=False)
    except (OSError, subprocess.SubprocessError, ValueError):
        return None
    if done.returncode != 0:
        return None
    return _text(done.stdout or b"")


def _text(data: bytes | str) -> str:
    if isinstance(data, str):
        return data
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):  # schtasks writes its XML in UTF-16
        return data.decode("utf-16", "replace")
    return data.decode("utf-8", "replace")


def _cron(run: Callable, wanted: str | None, looked: list[str]) -> list[Installed]:
    looked.append("crontab -l")
    listing = _ask(run, ["crontab", "-l"]) or ""
    for line in listing.splitlines():
        line = line.strip()
        if line and not line.startswith("#") and _ours(line, wanted):
            return [Installed("cron", "crontab -l", True)]
    return []


def _unit_dirs(env) -> list[Path]:
    home = Path(env.get("HOME") or Path.home())
    config = Path(env.get("XDG_CONFIG_HOME") or home / ".config")
    return [config / "systemd" / "user", Path("/etc/systemd/user"),
            Path("/etc/systemd/system")]


def _timers(env, wanted: str | None, looked: list[str]) -> list[Installed]:
    found = []
    for folder in _unit_dirs(env):
        timer = folder / TIMER
        looked.append(str(timer))
        try:
            service = (folder / SERVICE).read_text(encoding="utf-8", errors="replace")
            if not timer.is_file() or not _ours(service, wanted):
                continue
        except OSError:
            continue
        # `systemctl enable` links the timer into the target its [Install] names.
        enabled = (folder / "timers.target.wants" / TIMER).exists()
        found.append(Installed("systemd", str(timer), enabled))
    return found


def _agent(env, wanted: str | None, looked: list[str]) -> list[Installed]:
    home = Path(env.get("HOME") or Path.home())
    plist = home / AGENT_FILE.removeprefix("~/")
    looked.append(str(plist))
    try:
        text = plist.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return []
    # A LaunchAgent in that folder is loaded at every login.
    return [Installed("launchd", str(plist), True)] if _ours(text, wanted) else []


def _task(run: Callable, wanted: str | None, looked: list[str]) -> list[Installed]:
    looked.append(f"schtasks /Query /TN {TASK_NAME}")
    xml = _ask(run, ["schtasks", "/Query", "/TN", TASK_NAME, "/XML"])
    if xml is None or not _ours(xml, wanted):
        return []
    return [Installed("windows", f"the task {TASK_NAME}",
                      "<Enabled>false</Enabled>" not in xml)]
