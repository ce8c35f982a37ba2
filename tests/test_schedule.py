"""Scheduling recipes: systemd accepts the units, the CLI accepts every documented command,
and the generated recipes name this installation's real paths."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest
from docopt import DocoptExit, docopt
from helpers import configure, need_tool

from oort_lib import cli as oort_cli
from oort_lib.state import config as cfg
from oort_lib.state.lock import RunLock
from oort_lib.views import schedule

ROOT = Path(__file__).resolve().parent.parent
CONTRIB = ROOT / "contrib"
SYSTEMD_DIR = CONTRIB / "systemd-timer"
CONTRIB_EXEC = "%h/.local/bin/oort-sync run -q"


@pytest.fixture(scope="session")
def systemd_analyze() -> str:
    """systemd-analyze (.ci/run installs it)."""
    return need_tool("systemd-analyze", "systemd")


def verify(analyze: str, units: list[Path], home: Path, tmp_path: Path) -> list[str]:
    """Problems `systemd-analyze --user verify` reports about ``units`` (empty: all good).

    A user manager needs a runtime dir and a home (for %h); both are private temporary
    folders, so this works in a container with no systemd running and no login session.
    """
    runtime = tmp_path / "runtime"
    runtime.mkdir(mode=0o700, exist_ok=True)
    env = dict(os.environ, HOME=str(home), XDG_RUNTIME_DIR=str(runtime),
               XDG_CONFIG_HOME=str(home / ".config"))
    done = subprocess.run([analyze, "--user", "verify", *map(str, units)], env=env,
                          capture_output=True, text=True, timeout=60)
    output = (done.stdout + done.stderr).splitlines()
    # Only lines about our units count: the host may have unrelated broken units.
    names = {u.name for u in units} | {str(u.parent) for u in units}
    problems = [line for line in output if any(n in line for n in names)]
    if done.returncode != 0:
        problems.append(f"exit code {done.returncode}: {' | '.join(output)}")
    return problems


def split_recipe(text: str) -> dict[str, str]:
    """The unit files inside a `systemd_recipe` text, cut out as a script writing them would."""
    units: dict[str, str] = {}
    current: str | None = None
    for line in text.splitlines():
        if line.startswith(f"# ---- {schedule.UNIT_DIR}/"):
            current = line.split("/")[-1].split()[0]
            units[current] = ""
        elif line.startswith("# ---- end of "):
            current = None
        elif current:
            units[current] += line + "\n"
    return units


def unit_body(path: Path) -> str:
    """A unit file without its leading comment block (the contrib files' header)."""
    text = path.read_text(encoding="utf-8")
    return text[text.index("[Unit]"):]


def fake_home(tmp_path: Path) -> Path:
    """A home whose ~/.local/bin/oort-sync is this installation's real executable."""
    home = tmp_path / "user"
    (home / ".local" / "bin").mkdir(parents=True)
    (home / ".local" / "bin" / "oort-sync").symlink_to(schedule.command()[0])
    return home


# --- (a) systemd accepts the units ------------------------------------------------------


def test_contrib_units_pass_systemd_analyze_verify(systemd_analyze, tmp_path):
    units = [SYSTEMD_DIR / schedule.SERVICE, SYSTEMD_DIR / schedule.TIMER]
    assert verify(systemd_analyze, units, fake_home(tmp_path), tmp_path) == []


def test_generated_units_pass_systemd_analyze_verify(systemd_analyze, tmp_path):
    profile = tmp_path / "profile dir"  # a space: ExecStart quoting is exercised too
    recipe = schedule.systemd_recipe(str(profile))
    units = split_recipe(recipe)
    assert units == schedule.systemd_units(str(profile))
    executable = schedule.command()[0]
    assert os.path.isabs(executable) and os.access(executable, os.X_OK)
    written = tmp_path / "units"
    written.mkdir()
    for name, text in units.items():
        (written / name).write_text(text, encoding="utf-8")
    paths = [written / schedule.SERVICE, written / schedule.TIMER]
    assert verify(systemd_analyze, paths, tmp_path / "nobody", tmp_path) == []


def test_verify_harness_does_catch_mistakes(systemd_analyze, tmp_path):
    broken = tmp_path / "broken"
    broken.mkdir()
    service = unit_body(SYSTEMD_DIR / schedule.SERVICE).replace("Nice=10", "Nicety=10")
    (broken / schedule.SERVICE).write_text(service.replace(CONTRIB_EXEC, "/nonexistent run"))
    problems = verify(systemd_analyze, [broken / schedule.SERVICE], tmp_path, tmp_path)
    assert any("Nicety" in p for p in problems)
    assert any("/nonexistent" in p for p in problems)


def test_contrib_units_match_the_generated_ones():
    # The static examples and `oort-sync schedule --systemd` must never drift apart.
    assert unit_body(SYSTEMD_DIR / schedule.SERVICE) == schedule.service_unit(CONTRIB_EXEC)
    assert unit_body(SYSTEMD_DIR / schedule.TIMER) == schedule.timer_unit()


# --- (b) every documented command line is valid ----------------------------------------

_SUBCOMMANDS = "login|logout|watch|unwatch|run|status|logs|report|schedule|sandbox"
# Up to the end of the command: a shell operator, a comment, a closing code span.
_COMMAND = re.compile(rf"oort-sync[ \t]+((?:{_SUBCOMMANDS})\b[^`|;&#<>()\n]*|--version|--help)")


def documented_commands() -> list[tuple[str, str]]:
    found = []
    for path in sorted(p for p in CONTRIB.rglob("*") if p.is_file()):
        if path.suffix == ".sh":
            continue  # the demo script has its own test (it runs)
        for match in _COMMAND.finditer(path.read_text(encoding="utf-8")):
            found.append((str(path.relative_to(ROOT)), match.group(1).strip()))
    return found


def test_every_contrib_command_is_accepted_by_the_cli():
    commands = documented_commands()
    files = {f for f, _ in commands}
    assert {"contrib/cron/crontab.example", "contrib/cron/README.md",
            "contrib/systemd-timer/README.md", "contrib/systemd-timer/oort-sync.service"} <= files
    assert ("contrib/cron/crontab.example", "run -q") in commands
    assert len(commands) >= 20
    for where, line in commands:
        argv = shlex.split(line)
        try:
            docopt(oort_cli.__doc__, argv=argv, version="x")
        except DocoptExit as exc:
            pytest.fail(f"{where}: `oort-sync {line}` is not valid usage: {exc}")
        except SystemExit:
            assert argv[0] in ("--help", "--version"), f"{where}: {line}"


# --- (c) the recipes name this installation ---------------------------------------------


def test_cron_recipe(tmp_path):
    executable = schedule.command()[0]
    plain = schedule.cron_recipe(None)
    assert f"{executable} run -q || [ $? -eq 75 ]" in plain
    assert "*/5 * * * *" in plain and "\nPATH=" in plain and "# MAILTO=" in plain
    assert "--home" not in plain
    if shutil.which("ionice"):
        assert "nice -n 10 ionice -c3 " in plain
    odd = schedule.cron_recipe(str(tmp_path / "50% full"))
    assert f"'--home={tmp_path}/50\\% full'" in odd, "quoted for sh, % escaped for cron"


def test_cron_line_runs_and_forgives_only_exit_75(tmp_path):
    home = tmp_path / "home"
    recipe = schedule.cron_recipe(str(home))
    job = next(line for line in recipe.splitlines() if line.startswith("*/5"))
    shell_command = job.split(" ", 5)[5]
    env = dict(os.environ, PATH="/usr/local/bin:/usr/bin:/bin")
    for name in ("ARCSECOND_UPLOAD_KEY", "OORT_SYNC_KEY", "OORT_SYNC_HOME"):
        env.pop(name, None)
    refused = subprocess.run(["/bin/sh", "-c", shell_command], env=env, capture_output=True,
                             text=True, timeout=60)
    assert refused.returncode not in (0, 75), "a real failure (not logged in) is reported"
    # Logged in (to a port nobody serves: the lock comes before any network).
    (tmp_path / "data").mkdir()
    configure(cfg.resolve_paths(str(home)), "http://127.0.0.1:9", "test-key",
              folders=[cfg.Folder(path=str(tmp_path / "data"))])
    with RunLock(home / "state" / "run.lock"):
        locked = subprocess.run(["/bin/sh", "-c", shell_command], env=env,
                                capture_output=True, text=True, timeout=60)
    assert locked.returncode == 0, locked.stderr


def test_systemd_recipe(tmp_path):
    executable = schedule.command()[0]
    text = schedule.systemd_recipe(str(tmp_path / "p"))
    assert f"ExecStart={executable} " in text and " run -q " in text
    assert f"--home={tmp_path / 'p'}" in text
    for needle in ("SuccessExitStatus=75", "Type=oneshot", "TimeoutStartSec=6h", "Nice=10",
                   "IOSchedulingClass=idle", "CPUSchedulingPolicy=batch",
                   "Wants=network-online.target", "Unit=oort-sync.service",
                   "~/.config/systemd/user/", "systemctl --user daemon-reload",
                   "systemctl --user enable --now oort-sync.timer",
                   "loginctl enable-linger $USER"):
        assert needle in text, needle
    assert "--home" not in schedule.systemd_recipe(None)


def test_systemd_quoting_keeps_specifiers_literal():
    units = schedule.systemd_units("/srv/100%/$data")
    assert '"--home=/srv/100%%/$$data"' not in units[schedule.SERVICE]  # no space: unquoted
    assert "--home=/srv/100%%/$$data" in units[schedule.SERVICE]


def test_cli_schedule_prints_the_recipes(cli, home):
    cron = cli("schedule", "--cron")
    assert cron.code == 0, cron.err
    assert cron.out == schedule.cron_recipe(os.environ["OORT_SYNC_HOME"]) + "\n"
    assert f"--home={os.environ['OORT_SYNC_HOME']}" in cron.out
    units = cli("schedule", "--systemd", "--home", "/srv/oort/profile2")
    assert units.code == 0, units.err
    assert "--home=/srv/oort/profile2" in units.out and "SuccessExitStatus=75" in units.out
    assert split_recipe(units.out) == schedule.systemd_units("/srv/oort/profile2")
