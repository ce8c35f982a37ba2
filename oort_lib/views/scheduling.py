"""What every schedule recipe shares (schedule.py's cron and systemd, launchagent.py,
scheduled_task.py): how often it runs, this installation's command, and the check that
a path may go into it.

Every path that goes into a recipe is checked first (`plain`): a line break in `--home`
would end the crontab line or the unit's setting and start a command of its own, so a
control character is refused, naming the setting.
"""

from __future__ import annotations

import os
import shutil
import sys
import unicodedata
from pathlib import Path

from oort_lib.errors import ConfigError

EVERY_MINUTES = 5
HOME_SETTING = "--home (or $OORT_SYNC_HOME)"
INSTALLATION = "the path of this oort-sync installation"
# Control characters (line breaks, tabs, ESC), Unicode's line and paragraph separators,
# and the halves of bytes that were not UTF-8 (a generated file could not hold them).
_REFUSED = {"Cc", "Zl", "Zp", "Cs"}


def plain(value: str, setting: str) -> str:
    """`value` as it is, if it may go into a generated schedule.

    Raises ConfigError naming `setting` when it holds a control character: in a
    crontab, a unit or a task, a line break ends the line and starts another one.
    """
    for char in value:
        if unicodedata.category(char) in _REFUSED:
            raise ConfigError(
                f"{setting} is {ascii(value)}, which holds a control character "
                f"({ascii(char)}): in a schedule it would end the line and start another "
                "one. Use a path without line breaks, tabs or other control characters.")
    return value


def command(home: str | None = None) -> list[str]:
    """argv of `oort-sync run -q` for this installation, every path absolute.

    Raises ConfigError (`plain`) for a home or an installation path that no schedule can
    hold."""
    # The entry script beside this interpreter runs this very installation; one found on
    # PATH first could belong to another virtualenv or version.
    from oort_lib.host import WINDOWS, system

    windows = system() == WINDOWS
    entry = Path(sys.prefix) / ("Scripts" if windows else "bin") / (
        "oort-sync.exe" if windows else "oort-sync")
    found = shutil.which("oort-sync")
    if entry.is_file() and os.access(entry, os.X_OK):
        argv = [str(entry)]
    elif found:
        argv = [os.path.abspath(found)]
    else:
        # Not installed with pip (a source checkout): oort_sync.py sits next to oort_lib,
        # both in a checkout and in site-packages (setup.cfg lists it in py_modules).
        script = Path(__file__).resolve().parent.parent / "oort_sync.py"
        argv = [os.path.abspath(sys.executable), str(script)]
    for path in argv:
        plain(path, INSTALLATION)
    argv += ["run", "-q"]
    if home:
        plain(home, HOME_SETTING)
        argv.append(f"--home={plain(str(Path(home).expanduser().absolute()), HOME_SETTING)}")
    return argv
