"""The first hour of a new user (issue 20, "What broke or misled"): a folder that is only
empty, the end of input at a login prompt, changing a watched folder's settings, an
https:// address of a plain-http server, an address without a scheme, the recipes'
words and the Windows task's encoding."""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from helpers import ROOT, configure
from terminal import converse

from oort_lib.samples import write_fits
from oort_lib.state import config as cfg

NIGHT = {"DATE-OBS": "2021-06-01T22:00:00", "OBJECT": "M 31"}


def _frame(path: Path) -> Path:
    write_fits(path, NIGHT)
    os.utime(path, (time.time() - 3600, time.time() - 3600))
    return path


# --- a new, empty folder -------------------------------------------------------------------


def test_a_folder_that_never_had_files_is_just_empty(cli, home, logged_in, sandbox, tmp_path):
    tonight = tmp_path / "2026-03-04"
    tonight.mkdir()
    logged_in(tonight)
    for _ in range(2):  # from cron: nothing to say, nothing "recovered" the next time
        result = cli("run")
        assert (result.code, result.out, result.err) == (0, "", "")
    assert "missing" not in cli("run", "--dry-run").out
    _frame(tonight / "M31" / "a.fits")  # the night begins
    assert cli("run").code == 0 and len(sandbox.objects("datafiles")) == 1
    (tonight / "M31" / "a.fits").unlink()  # archived away: that one is said once
    told = cli("run")
    assert told.code == 1 and "had files and is empty now" in told.err


def test_a_new_empty_folder_beside_one_with_files(cli, home, logged_in, sandbox, tmp_path):
    """The manifest knows other folders: that says nothing of this one."""
    old, new = tmp_path / "old", tmp_path / "new"
    _frame(old / "M31" / "a.fits")
    new.mkdir()
    logged_in(old)
    assert cli("run").code == 0
    logged_in(old, new)
    result = cli("run")
    assert (result.code, result.err) == (0, "")


# --- the end of input at a login prompt ----------------------------------------------------

NO_TERMINAL = "No terminal to ask on: use --username=NAME --key-stdin."


def _no_python_noise(text: str) -> None:
    for noise in ("Warning", "EOFError", "internal error", "Traceback"):
        assert noise not in text, text


def test_login_with_username_and_stdin_from_dev_null(sandbox, tmp_path):
    """No terminal at all (cron, `ssh host cmd`): the same words as without --username."""
    done = subprocess.run(
        [sys.executable, str(ROOT / "oort_sync.py"), "login", f"--api={sandbox.url}",
         "--username=ada"], stdin=subprocess.DEVNULL, capture_output=True, text=True,
        env={**os.environ, "OORT_SYNC_HOME": str(tmp_path / "home")}, start_new_session=True,
        timeout=60)
    assert done.returncode == 2, done.stderr
    assert done.stderr == f"oort-sync: {NO_TERMINAL}\n"
    assert not (tmp_path / "home" / "config" / "credentials.json").exists()


def test_login_with_stdin_from_dev_null_at_a_terminal(sandbox, tmp_path):
    """`</dev/null` typed at a terminal: stdin is what is asked, never read past."""
    code, shown = converse(["login", f"--api={sandbox.url}", "--username=ada"], [],
                           env={"OORT_SYNC_HOME": str(tmp_path / "home")},
                           stdin=subprocess.DEVNULL)
    assert code == 2 and NO_TERMINAL in shown
    assert "Upload key" not in shown
    _no_python_noise(shown)


@pytest.mark.parametrize("args, prompt", [
    (["--username=ada"], "Upload key (not shown): "),
    ([], "Arcsecond username or e-mail: "),
])
def test_ctrl_d_at_a_login_prompt(sandbox, tmp_path, args, prompt):
    code, shown = converse(["login", f"--api={sandbox.url}", *args], [(prompt, b"\x04")],
                           env={"OORT_SYNC_HOME": str(tmp_path / "home")})
    assert code == 2, shown
    assert prompt in shown and NO_TERMINAL in shown
    assert shown.rstrip().endswith(NO_TERMINAL)
    _no_python_noise(shown)


def test_the_key_prompt_still_works_at_a_terminal(sandbox, tmp_path):
    key = sandbox.seed.upload_key
    code, shown = converse(["login", f"--api={sandbox.url}", f"--username={sandbox.seed.username}"],
                           [("Upload key (not shown): ", key.encode() + b"\n")],
                           env={"OORT_SYNC_HOME": str(tmp_path / "home")})
    assert code == 0, shown
    assert "Logged in to" in shown and key not in shown  # not echoed


def test_ctrl_d_at_the_watch_question_changes_nothing(tmp_path):
    folder = tmp_path / "data"
    folder.mkdir()
    home = tmp_path / "home"
    code, shown = converse(["watch", str(folder)], [("Watch these folders? [y/N] ", b"\x04")],
                           env={"OORT_SYNC_HOME": str(home)})
    assert code == 0 and "Nothing changed." in shown
    _no_python_noise(shown)
    assert cfg.load_settings(cfg.resolve_paths(str(home))).folders == ()


# --- changing a watched folder's settings --------------------------------------------------

COMMENTED = """\
# The observatory's settings, edited by hand.
[oort-sync]
api = https://api.example.org

# The main camera.
[folder 1]
path = {folder}
; the capture PC writes UTC
classify = header
"""


def test_watch_on_a_watched_folder_changes_its_settings(cli, home, tmp_path):
    folder = tmp_path / "raw"
    folder.mkdir()
    home.config_dir.mkdir(parents=True)
    home.config_file.write_text(COMMENTED.format(folder=folder))
    changed = cli("watch", folder, "--timezone=Australia/Sydney", "-y")
    assert changed.code == 0, changed.err
    assert f"Changes to the watched folder {folder}:" in changed.out
    assert "  time zone: none → Australia/Sydney" in changed.out
    assert "Changed the settings of 1 watched folder(s)." in changed.out
    [watched] = cfg.load_settings(home).folders
    assert (watched.timezone, watched.classify) == ("Australia/Sydney", "header")  # kept
    text = home.config_file.read_text()
    assert text.startswith(COMMENTED.format(folder=folder).rstrip("\n"))  # comments kept
    same = cli("watch", folder, "--timezone=Australia/Sydney", "-y")
    assert same.code == 0 and "already watched with these settings: nothing to change" in same.out
    assert home.config_file.read_text() == text
    cleared = cli("watch", folder, "--timezone=", "--classify=folder", "-y")
    assert cleared.code == 0 and "time zone: Australia/Sydney → none" in cleared.out
    assert "calibrations by: the header's frame type → folder name" in cleared.out
    assert cfg.load_settings(home).folders[0].timezone is None
    asked = cli("watch", folder, "--timezone=UTC")  # no terminal, no -y: nothing saved
    assert asked.code == 2 and "add -y" in asked.err
    assert cfg.load_settings(home).folders[0].timezone is None


def test_watch_adds_new_folders_and_changes_watched_ones_at_once(cli, home, tmp_path):
    old, new = tmp_path / "old", tmp_path / "new"
    old.mkdir()
    new.mkdir()
    assert cli("watch", old, "-y").code == 0
    both = cli("watch", new, old, "--tags=night1", "-y")
    assert both.code == 0, both.err
    assert "tags: none → night1" in both.out and "Watching 1 folder(s)." in both.out
    folders = cfg.load_settings(home).folders
    assert [(f.path, f.tags) for f in folders] == [(str(old), ("night1",)),
                                                   (str(new), ("night1",))]
    twice = cli("watch", old, old, "-y")
    assert twice.code == 2 and "named twice" in twice.err


def test_the_dry_runs_advice_can_be_followed(cli, home, logged_in, tmp_path):
    """The dry run's "watch the folder again with --timezone=ZONE" (2021: the client
    places the nights), followed to the letter."""
    folder = tmp_path / "raw"
    _frame(folder / "M31" / "a.fits")
    logged_in(folder)
    assert "watch the folder again with --timezone=ZONE" in cli("run", "--dry-run").out
    again = cli("watch", folder, "--timezone=America/Santiago", "-y")
    assert again.code == 0, again.err
    assert "time zone: none → America/Santiago" in again.out
    assert "--timezone=ZONE" not in cli("run", "--dry-run").out


def test_a_2026_folder_keeps_its_telescope_when_a_setting_changes(cli, home, sandbox,
                                                                    tmp_path, monkeypatch):
    folder = tmp_path / "raw"
    _frame(folder / "M31" / "a.fits")
    seed = sandbox.seed
    monkeypatch.setattr("sys.stdin", io.StringIO(seed.upload_key + "\n"))
    assert cli("login", f"--api={sandbox.url}", f"--username={seed.username}",
               "--key-stdin").code == 0
    assert cli("watch", folder, "-t", seed.personal_telescope_uuid, "-y").code == 0
    again = cli("watch", folder, "--tags=m31", "--exclude=*.tmp", "-y")
    assert again.code == 0, again.err
    assert "tags: none → m31" in again.out and "excluded: none → *.tmp" in again.out
    assert "telescope:" not in again.out  # unchanged, so not listed
    [watched] = cfg.load_settings(home).folders
    assert watched.telescope == seed.personal_telescope_uuid and watched.telescope_name
    assert (watched.tags, watched.exclude) == (("m31",), ("*.tmp",))
    assert cli("run", "--min-age=0").code == 0
    [sent] = sandbox.objects("datafiles")
    assert "m31" in str(sent.get("tags"))


def test_a_change_is_shown_and_asked_at_a_terminal(tmp_path):
    folder = tmp_path / "raw"
    folder.mkdir()
    env = {"OORT_SYNC_HOME": str(tmp_path / "home")}
    paths = cfg.resolve_paths(str(tmp_path / "home"))
    cfg.save_settings(paths, cfg.Settings(folders=(cfg.Folder(str(folder)),)))
    code, shown = converse(["watch", str(folder), "--reduced"],
                           [("Apply these changes? [y/N] ", b"y\n")], env=env)
    assert code == 0, shown
    assert "reduced data: no → yes" in shown and "Changed the settings" in shown
    assert cfg.load_settings(paths).folders[0].reduced is True


# --- addresses -----------------------------------------------------------------------------


def test_https_to_a_plain_http_server_says_how_to_reach_it(cli, home, sandbox, monkeypatch):
    """The sandbox speaks plain http, as Arcsecond.local does; addressed as https://."""
    port = sandbox.url.rsplit(":", 1)[1]
    monkeypatch.setattr("sys.stdin", io.StringIO(sandbox.seed.upload_key + "\n"))
    started = time.monotonic()
    result = cli("login", f"--api=https://127.0.0.1:{port}",
                 f"--username={sandbox.seed.username}", "--key-stdin")
    assert result.code == 2, result.err
    assert time.monotonic() - started < 10  # said at once, not after the retries
    assert "speaks plain http" in result.err
    assert f"http://127.0.0.1:{port}" in result.err and "--allow-http" in result.err
    assert "SSLError" not in result.err
    assert not home.credentials_file.exists()


def test_a_run_to_https_on_a_plain_http_server_stops_with_the_same_advice(cli, home, sandbox,
                                                                          tmp_path):
    folder = tmp_path / "raw"
    _frame(folder / "M31" / "a.fits")
    port = sandbox.url.rsplit(":", 1)[1]
    configure(home, f"https://127.0.0.1:{port}", sandbox.seed.upload_key,
              folders=[cfg.Folder(str(folder))])
    result = cli("run")
    assert result.code == 2 and "speaks plain http" in result.err, result.err
    assert sandbox.objects("datafiles") == []


@pytest.mark.parametrize("given, meant", [
    ("api.arcsecond.io", "did you mean https://api.arcsecond.io?"),
    ("127.0.0.1:8765", "did you mean http://127.0.0.1:8765?"),
    ("nas.local:5555/api", "http://nas.local:5555/api with --allow-http"),
])
def test_an_address_without_a_scheme_gets_one_suggested(cli, home, given, meant):
    result = cli("login", f"--api={given}", "--username=ada", "--key-stdin")
    assert result.code == 2 and meant in result.err, result.err


# --- the Windows task's XML ----------------------------------------------------------------

TASK = "{http://schemas.microsoft.com/windows/2004/02/mit/task}"


def _simulated_windows(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    """oort-sync on the simulated Windows, its output redirected under a cp1252 console
    (what `>` gets from a Western European Windows)."""
    profile = tmp_path / "Users" / "Jérôme"
    profile.mkdir(parents=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OORT_", "PYTEST_"))}
    env.update(PYTHONIOENCODING="cp1252", USERPROFILE=str(profile), HOME=str(profile),
               APPDATA=str(profile / "AppData" / "Roaming"),
               LOCALAPPDATA=str(profile / "AppData" / "Local"))
    return subprocess.run([sys.executable, str(ROOT / "tests" / "simulate_host.py"),
                           "windows", *args], env=env, capture_output=True, timeout=120,
                          cwd=profile)


def _arguments(xml: bytes) -> str:
    assert xml.startswith(b'<?xml version="1.0" encoding="UTF-8"?>')
    return ET.fromstring(xml).find(f"{TASK}Actions/{TASK}Exec/{TASK}Arguments").text


def test_the_windows_task_is_utf8_xml_under_a_cp1252_console(tmp_path):
    home = tmp_path / "Users" / "Jérôme" / "oort"
    done = _simulated_windows(tmp_path, "schedule", "--windows", f"--home={home}")
    assert done.returncode == 0, done.stderr
    assert f"--home={home}" in _arguments(done.stdout)  # parsed: valid XML, é intact


def test_the_windows_task_written_with_output(tmp_path):
    home = tmp_path / "Users" / "Jérôme" / "oort"
    target = tmp_path / "oort-sync-task.xml"
    done = _simulated_windows(tmp_path, "schedule", "--windows", f"--home={home}",
                              f"--output={target}")
    assert done.returncode == 0, done.stderr
    assert f"Written to {target}".encode("cp1252") in done.stdout
    assert f"--home={home}" in _arguments(target.read_bytes())


# --- the recipes ---------------------------------------------------------------------------


def test_recipes_say_login_asks_for_the_upload_key():
    for readme in (ROOT / "contrib").glob("*/README.md"):
        text = readme.read_text(encoding="utf-8")
        assert "asks for the password" not in text, readme
        assert "asks for your password" not in text, readme


def test_the_windows_recipe_gives_each_shell_its_own_line():
    text = (ROOT / "contrib" / "windows-task" / "README.md").read_text(encoding="utf-8")
    blocks = {}
    for shell, body in re.findall(r"```(bat|powershell)\n(.*?)```", text, re.S):
        blocks.setdefault(shell, []).append(body)
    cmd, powershell = "\n".join(blocks["bat"]), "\n".join(blocks["powershell"])
    assert "/RU %USERNAME% /RP" in cmd and "/RU $env:USERNAME /RP" in powershell
    assert "%USERNAME%" not in powershell and "%USERPROFILE%" not in powershell
    assert not [line for line in powershell.splitlines() if line.startswith("rem ")]
    assert "schedule --windows --output=oort-sync-task.xml" in powershell
