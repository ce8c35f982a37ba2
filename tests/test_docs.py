"""The README tells the truth: usage text, exit codes, commands."""

from __future__ import annotations

import re
from pathlib import Path

from docopt import docopt

from oort_lib import cli, errors

README = (Path(__file__).resolve().parent.parent / "README.md").read_text()


def test_usage_text_is_in_readme_verbatim():
    assert cli.__doc__.strip() in README


def test_every_exit_code_is_documented():
    for code, meaning in errors.EXIT_CODES.items():
        assert f"| {code} | {meaning} |" in README


def test_quick_start_has_exactly_two_setup_commands():
    quick = README.split("## Quick start", 1)[1].split("```sh", 1)[1].split("```", 1)[0]
    commands = [line.split("#")[0].strip() for line in quick.strip().splitlines()]
    assert commands == ["make demo", "make test"]


def test_readme_examples_parse():
    blocks = "\n".join(re.findall(r"```sh\n(.*?)```", README, re.S))
    examples = re.findall(r"^(?:echo .*\| )?(oort-sync [^#\n]*?)\s*(?:#.*)?$", blocks, re.M)
    assert len(examples) > 20
    for line in examples:
        argv = line.split()[1:]
        assert docopt(cli.__doc__, argv=argv, version="x") is not None, line


def test_no_secret_on_the_command_line():
    """A key or password given as an argument would show in `ps` and shell history."""
    options = re.findall(r"--[a-z-]+=?", cli.__doc__)
    assert not [o for o in options if "key" in o and o != "--key-stdin"]
    # `--password` is a switch (the password is asked with no echo), never a value.
    assert not [o for o in options if ("password" in o or "token" in o) and o.endswith("=")]
    assert "--password" in options


def test_bad_command_line_gets_usage_and_a_plain_message(cli):
    for argv in (["bogus"], ["run", "--nope"], []):
        result = cli(*argv)
        assert result.code == 2
        assert "Usage:" in result.err and "matches none of the commands" in result.err
        assert "Argument(" not in result.err and "Traceback" not in result.err
