"""The README tells the truth: usage text, exit codes, commands."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
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
        if "--help" in argv:  # main() answers it before docopt, with that command's help
            from oort_lib.views.usage import wants_help

            assert wants_help(cli.__doc__, argv), line
            continue
        assert docopt(cli.__doc__, argv=argv, version="x") is not None, line


def test_no_secret_on_the_command_line():
    """A key or password given as an argument would show in `ps` and shell history."""
    options = re.findall(r"--[a-z-]+=?", cli.__doc__)
    assert not [o for o in options if "key" in o and o != "--key-stdin"]
    # `--password` is a switch (the password is asked with no echo), never a value.
    assert not [o for o in options if ("password" in o or "token" in o) and o.endswith("=")]
    assert "--password" in options


def test_bad_command_line_gets_a_plain_message(cli):
    for argv in (["bogus"], ["run", "--nope"], [], ["watch"]):
        result = cli(*argv)
        assert result.code == 2 and result.out == ""
        assert result.err.startswith("oort-sync: ")
        assert "Argument(" not in result.err and "Traceback" not in result.err
    assert "Usage:" in cli().err and "Usage:" in cli("watch").err


@pytest.mark.parametrize("argv, line", [
    (["run", "--dryrun"], "unknown option --dryrun; did you mean --dry-run?"),
    (["run", "--min-ages=3"], "unknown option --min-ages; did you mean --min-age?"),
    (["watch", "x", "--organization=o"],
     "unknown option --organization; did you mean --organisation?"),
    (["status", "--jsn"], "unknown option --jsn; did you mean --json?"),
    (["runn"], "unknown command runn; did you mean run?"),
    (["stauts"], "unknown command stauts; did you mean status?"),
])
def test_typos_get_one_line_with_the_closest_valid_spelling(cli, argv, line):
    result = cli(*argv)
    assert result.code == 2 and result.out == ""
    assert result.err.startswith(f"oort-sync: {line}")
    assert len(result.err.strip().splitlines()) == 1


def test_help_per_command(cli):
    for argv in (["help", "run"], ["run", "--help"], ["run", "-h"]):
        result = cli(*argv)
        assert result.code == 0
        assert "oort-sync run [--dry-run]" in result.out and "--retry-failed" in result.out
        assert "Examples:" in result.out and "oort-sync run --dry-run" in result.out
        # that command's options only
        assert "--cron" not in result.out and "--organisation" not in result.out
        assert "oort-sync watch" not in result.out
    status = cli("status", "--help").out
    assert "--json" in status and "--dry-run" not in status and "--home=DIR" in status
    overview = cli("help")
    assert overview.code == 0 and "Commands:" in overview.out and "--dry-run " not in overview.out
    unknown = cli("help", "frob")
    assert unknown.code == 2 and "unknown command frob" in unknown.err


def test_every_command_has_help_and_examples_that_parse():
    from oort_lib.views import usage

    for command in usage.commands(cli.__doc__):
        text = usage.command_help(cli.__doc__, command)
        assert f"oort-sync {command}" in text
        for example in usage.EXAMPLES[command]:
            argv = example.split("#")[0].replace('"$KEY"', "k").split()
            if argv[0] == "echo":
                argv = argv[argv.index("|") + 1:]
            if "--help" in argv:
                continue  # docopt prints the whole usage: main() intercepts it
            assert docopt(cli.__doc__, argv=argv[1:], version="x") is not None, example

