"""`oort-sync schedule --launchd`: a macOS LaunchAgent running oort-sync every 5 minutes.

launchd is macOS's cron and systemd in one. A LaunchAgent runs as the user, while the user
is logged in (a LaunchDaemon would run at boot, but as root and with no keychain: not
for an upload key in a home folder). The plist is written by plistlib, so it is valid by
construction (`plutil -lint` agrees); only the comment with the instructions is added.
"""

from __future__ import annotations

import os
import plistlib
import shlex
import sys
from pathlib import Path

from oort_lib.views.scheduling import EVERY_MINUTES, INSTALLATION, command, plain

LABEL = "io.arcsecond.oort-sync"
AGENT_DIR = "~/Library/LaunchAgents"
AGENT_FILE = f"{AGENT_DIR}/{LABEL}.plist"
# Homebrew's two prefixes (Apple silicon, Intel) and the system's: where the tools a run
# might look for live; launchd's own PATH is only /usr/bin:/bin:/usr/sbin:/sbin.
_PATH = ("/opt/homebrew/bin", "/usr/local/bin", "/usr/bin", "/bin", "/usr/sbin", "/sbin")


def agent(home: str | None, log_dir: Path, argv: list[str] | None = None) -> dict:
    """The LaunchAgent as a dict (what plistlib writes): oort-sync `run -q` every 5 minutes,
    at load too, at low priority, with launchd's stdout/stderr in ``log_dir``. ``argv``
    replaces this installation's command (contrib/'s example names a typical one).
    Raises ConfigError (scheduling.plain) for a path a plist cannot hold."""
    argv = argv or command(home)
    path = ":".join(dict.fromkeys([os.path.dirname(argv[0]), *_PATH]))
    log = str(_log_dir(log_dir) / "launchd.log")
    return {
        "Label": LABEL,
        "ProgramArguments": argv,
        # launchd starts no second copy of a job that is still running: a tick during a
        # long upload is skipped, as with the systemd timer.
        "StartInterval": EVERY_MINUTES * 60,
        "RunAtLoad": True,
        "EnvironmentVariables": {"PATH": path},
        "StandardOutPath": log,
        "StandardErrorPath": log,
        # Background: macOS may delay and throttle it, so uploads never slow acquisition.
        "ProcessType": "Background",
        "LowPriorityIO": True,
        "Nice": 10,
        # At logout or unload launchd sends SIGTERM, then SIGKILL after this many seconds:
        # long enough for oort-sync's own 20-second grace to end the files in flight.
        "ExitTimeOut": 30,
    }


def _log_dir(log_dir: Path) -> Path:
    return Path(plain(str(Path(log_dir).expanduser().absolute()), "the log folder"))


def _comment(text: str) -> str:
    # "--" may not appear inside an XML comment (a path could hold one).
    while "--" in text:
        text = text.replace("--", "- -")
    return "<!--\n" + text.rstrip("-") + "\n-->\n"


def recipe(home: str | None, log_dir: Path, argv: list[str] | None = None) -> str:
    """The plist for this installation, with the commands that install it in a comment.

    The commands are meant to be pasted into a shell: the log folder is quoted for it
    (single quotes: a `$(...)` in a path stays text). Raises ConfigError (scheduling.plain)
    for a path that the plist or the commands cannot hold."""
    body = plistlib.dumps(agent(home, log_dir, argv), sort_keys=False).decode("utf-8")
    log = shlex.quote(str(_log_dir(log_dir)))
    interpreter = plain(os.path.realpath(sys.executable), INSTALLATION)
    notes = "\n".join([
        f"  oort-sync as a launchd LaunchAgent: one batch run every {EVERY_MINUTES} minutes.",
        f"  Save this text as {AGENT_FILE}, then:",
        f"    mkdir -p {log}",
        f'    launchctl bootstrap "gui/$(id -u)" {AGENT_FILE}',
        f'  Check: launchctl print "gui/$(id -u)/{LABEL}" (last exit code), oort-sync status.',
        f'  Stop: launchctl bootout "gui/$(id -u)/{LABEL}"',
        "  Folders in ~/Documents, ~/Desktop, ~/Downloads or on external volumes need Full",
        "  Disk Access (System Settings > Privacy & Security > Full Disk Access, +, then",
        f"  Cmd-Shift-G) for the program launchd starts: {interpreter}",
        "  Exit code 75 means the previous run still held the lock: not a failure.",
    ])
    head, sep, rest = body.partition("<plist")
    return head + _comment(notes) + sep + rest
