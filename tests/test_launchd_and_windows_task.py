"""`schedule --launchd` and `schedule --windows`: parsed back with plistlib and an XML
parser, the fields that matter checked, and contrib/'s examples kept equal to them."""

from __future__ import annotations

import plistlib
import shutil
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from oort_lib.views import launchagent, schedule, scheduled_task

ROOT = Path(__file__).resolve().parent.parent
T = "{http://schemas.microsoft.com/windows/2004/02/mit/task}"
EXAMPLE_ARGV = ["/Users/you/.local/bin/oort-sync", "run", "-q"]
EXAMPLE_PYTHONW = r"C:\Users\you\pipx\venvs\oort-sync\Scripts\pythonw.exe"


# --- launchd -----------------------------------------------------------------------------


def test_launch_agent_fields(tmp_path):
    home = tmp_path / "profile two"
    logs = tmp_path / "logs -- here"  # "--" is forbidden in the XML comment that names it
    text = launchagent.recipe(str(home), logs)
    agent = plistlib.loads(text.encode("utf-8"))
    assert agent["Label"] == "io.arcsecond.oort-sync"
    assert agent["ProgramArguments"] == [schedule.command()[0], "run", "-q", f"--home={home}"]
    assert agent["StartInterval"] == 300 and agent["RunAtLoad"] is True
    path = agent["EnvironmentVariables"]["PATH"].split(":")
    assert path[0] == str(Path(schedule.command()[0]).parent) and "/usr/bin" in path
    assert agent["StandardOutPath"] == agent["StandardErrorPath"] == str(logs / "launchd.log")
    assert agent["ProcessType"] == "Background" and agent["LowPriorityIO"] is True
    assert agent["Nice"] == 10 and agent["ExitTimeOut"] > 20  # after oort-sync's grace
    comment = text[text.index("<!--") + 4:text.index("-->")]
    assert "--" not in comment and 'launchctl bootstrap "gui/$(id -u)"' in comment
    assert "Full Disk Access" in comment


@pytest.mark.ci_may_skip  # plutil exists on macOS only; CI runs on Debian
def test_launch_agent_passes_plutil_where_there_is_one(tmp_path):
    plutil = shutil.which("plutil")
    if plutil is None:
        pytest.skip("plutil exists on macOS only; plistlib parsed the plist above")
    target = tmp_path / "agent.plist"
    target.write_text(launchagent.recipe(None, tmp_path), encoding="utf-8")
    done = subprocess.run([plutil, "-lint", str(target)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def test_contrib_plist_is_the_generated_one():
    example = (ROOT / "contrib" / "launchd" / "io.arcsecond.oort-sync.plist").read_bytes()
    assert plistlib.loads(example) == launchagent.agent(
        None, Path("/Users/you/Library/Logs/oort-sync"), EXAMPLE_ARGV)


# --- Windows Task Scheduler ----------------------------------------------------------------


def _task(text: str) -> ET.Element:
    root = ET.fromstring(text.strip())
    assert root.tag == f"{T}Task" and root.get("version") == "1.2"
    return root


def _get(root: ET.Element, path: str) -> str:
    found = root.find("/".join(T + part for part in path.split("/")))
    assert found is not None, path
    return found.text


def test_task_fields(tmp_path):
    home = tmp_path / "a b & <c>"  # quoting for the command line and escaping for XML
    text = scheduled_task.task_xml(str(home))
    root = _task(text)
    assert _get(root, "Triggers/TimeTrigger/Repetition/Interval") == "PT5M"
    assert _get(root, "Triggers/TimeTrigger/Repetition/StopAtDurationEnd") == "false"
    assert _get(root, "Triggers/TimeTrigger/Enabled") == "true"
    assert _get(root, "Settings/MultipleInstancesPolicy") == "IgnoreNew"
    assert _get(root, "Settings/StartWhenAvailable") == "true"
    assert _get(root, "Settings/DisallowStartIfOnBatteries") == "false"
    assert _get(root, "Settings/ExecutionTimeLimit") == "PT6H"
    # No password stored: runs while the user is logged on (logged off: /RU and /RP).
    assert _get(root, "Principals/Principal/LogonType") == "InteractiveToken"
    assert _get(root, "Principals/Principal/RunLevel") == "LeastPrivilege"
    command = _get(root, "Actions/Exec/Command")
    assert Path(command).name == "pythonw.exe"  # no console window every 5 minutes
    arguments = _get(root, "Actions/Exec/Arguments")
    assert arguments == subprocess.list2cmdline(
        ["-m", "oort_lib", "run", "-q", f"--home={home}"])
    assert f'"--home={home}"' in arguments
    assert f"{scheduled_task.INSTALL}\n" in text and "/RU %USERNAME% /RP" in text


def test_contrib_task_is_the_generated_one():
    example = (ROOT / "contrib" / "windows-task" / "oort-sync-task.xml").read_text()
    generated = scheduled_task.task_xml(None, EXAMPLE_PYTHONW)
    # Same elements and text; only the comment at the top differs.
    assert ET.canonicalize(example.strip()) == ET.canonicalize(generated.strip())
    assert _get(_task(example), "Actions/Exec/Command") == EXAMPLE_PYTHONW


# --- the CLI ---------------------------------------------------------------------------


def test_cli_prints_both(cli, home):
    agent = cli("schedule", "--launchd")
    assert agent.code == 0
    assert plistlib.loads(agent.out.encode())["StandardOutPath"] == str(
        home.log_file.parent / "launchd.log")
    task = cli("schedule", "--windows")
    assert task.code == 0
    assert _get(_task(task.out), "Actions/Exec/Arguments").startswith("-m oort_lib run -q")


def test_contrib_docs_cover_both():
    launchd = (ROOT / "contrib" / "launchd" / "README.md").read_text()
    for needle in ("Full Disk Access", "Cmd-Shift-G", "schedule --launchd >",
                   "launchctl bootstrap", "plutil -lint", "~/Library/Logs/oort-sync"):
        assert needle in launchd, needle
    windows = (ROOT / "contrib" / "windows-task" / "README.md").read_text()
    for needle in ("schedule --windows --output=", scheduled_task.INSTALL, "/RU %USERNAME% /RP",
                   r"%LOCALAPPDATA%\oort-sync\Logs", "Last Result", "console.log"):
        assert needle in windows, needle
