"""Help that helps: one command's usage, options and examples; a typo named, with the
closest valid spelling ("unknown option --dryrun; did you mean --dry-run?").

Everything is read from the usage text docopt parses (synopsis.py), so the help can
never disagree with the parser.
"""

from __future__ import annotations

import re

# Options every command takes (`[options]`), shown under each command's help.
GENERAL = ("--home", "--log-level", "--json-log", "--help")

EXAMPLES: dict[str, tuple[str, ...]] = {
    "login": ("oort-sync login",
              "echo \"$KEY\" | oort-sync login --username=ada --key-stdin",
              "oort-sync login --api=http://nas.local:5555/api --allow-http   # Arcsecond.local"),
    "logout": ("oort-sync logout",),
    "telescopes": ("oort-sync telescopes", "oort-sync telescopes -o my-observatory"),
    "watch": ("oort-sync watch ~/Astro/Raw -t TELESCOPE_UUID   # see `oort-sync telescopes`",
              "oort-sync watch /mnt/nas/raw -o my-observatory -t 0b7c... --timezone=Europe/Paris",
              "oort-sync watch ~/Astro/Processed -t 0b7c... --reduced --tags=processed -y",
              "oort-sync watch ~/Astro/Raw -t 0b7c... --exclude='*.tmp' --classify=header",
              "oort-sync watch ~/Astro/Raw --timezone=UTC   # a watched folder: changes it"),
    "unwatch": ("oort-sync unwatch ~/Astro/Raw",),
    "import-oort": ("oort-sync import-oort", "oort-sync import-oort --oort-dir=/home/pi/.oort -y"),
    "run": ("oort-sync run --dry-run", "oort-sync run -v",
            "oort-sync run -q --ping-url=https://hc-ping.com/UUID   # from cron",
            "oort-sync run -q --notify-url=https://hooks.slack.com/services/T0/B0/X  # on failure",
            "oort-sync run ~/Astro/Raw --jobs=2 --min-age=300"),
    "explain": ("oort-sync explain ~/Astro/Raw/M31/Light_001.fits",),
    "nights": ("oort-sync nights", "oort-sync nights --since=2024-03-01",
               "oort-sync nights --json --since=2024-03-01   # for a script"),
    "doctor": ("oort-sync doctor",
               "oort-sync doctor --json   # for monitoring: exit code 0, 1, 3 or 4",
               "oort-sync doctor --home=/srv/oort   # another profile's setup"),
    "status": ("oort-sync status", "oort-sync status --json"),
    "logs": ("oort-sync logs", "oort-sync logs -n 200"),
    "report": ("oort-sync report", "oort-sync report --output=/var/www/oort.html",
               "oort-sync report --output=-   # the page on standard output"),
    "schedule": ("oort-sync schedule --cron", "oort-sync schedule --systemd",
                 "oort-sync schedule --launchd",
                 "oort-sync schedule --windows --output=oort-sync-task.xml"),
    "sandbox": ("oort-sync sandbox", "oort-sync sandbox --dialect=2026 --port=0"),
    "help": ("oort-sync help", "oort-sync help run", "oort-sync run --help"),
}


def _section(doc: str, title: str) -> list[str]:
    """The lines of a docstring section ("Usage:", "Commands:", "Options:")."""
    text = doc.split(f"\n{title}:\n", 1)[1] if f"\n{title}:\n" in doc else ""
    return text.split("\n\n", 1)[0].splitlines()


def commands(doc: str) -> dict[str, str]:
    """Command name -> its one-line description."""
    found = {}
    for line in _section(doc, "Commands"):
        parts = line.split(None, 1)
        if parts:
            found[parts[0]] = parts[1].strip() if len(parts) > 1 else ""
    return found


def usage_lines(doc: str, command: str) -> list[str]:
    """The usage pattern(s) of one command, continuation lines included."""
    lines, taking = [], False
    for line in _section(doc, "Usage"):
        words = line.split()
        if len(words) > 1 and words[0] == "oort-sync":
            taking = words[1] == command
        if taking:
            lines.append(line)
    return lines


def option_entries(doc: str) -> list[tuple[tuple[str, ...], list[str]]]:
    """Each entry of the Options section: (its names, its lines)."""
    entries: list[tuple[tuple[str, ...], list[str]]] = []
    for line in _section(doc, "Options"):
        if re.match(r"\s{2}-", line):
            head = re.split(r"\s{2,}", line.strip(), maxsplit=1)[0]
            names = tuple(re.findall(r"(--?[A-Za-z][\w-]*)", head))
            entries.append((names, [line]))
        elif entries:
            entries[-1][1].append(line)
    return entries


def option_names(doc: str) -> list[str]:
    return [name for names, _lines in option_entries(doc) for name in names]


def command_help(doc: str, command: str) -> str:
    """Usage, options and examples of one command (what `help COMMAND` prints)."""
    usage = usage_lines(doc, command)
    described = commands(doc).get(command, "")
    used = set(re.findall(r"(--?[A-Za-z][\w-]*)", " ".join(usage)))
    mine, general = [], []
    for names, lines in option_entries(doc):
        if used & set(names):
            mine.extend(lines)
        elif set(GENERAL) & set(names):
            general.extend(lines)
    text = [f"oort-sync {command}: {described}", "", "Usage:", *usage]
    if mine:
        text += ["", "Options:", *mine]
    text += ["", "Options of every command:", *general]
    if EXAMPLES.get(command):
        text += ["", "Examples:", *(f"  {example}" for example in EXAMPLES[command])]
    text += ["", "All commands: `oort-sync help`; the README has the details."]
    return "\n".join(text)


def overview(doc: str) -> str:
    """What `oort-sync help` prints: the usage and the list of commands."""
    head = doc.split("\nOptions:\n", 1)[0].rstrip()
    return head + "\n\nHelp on one command: `oort-sync help COMMAND` or `oort-sync COMMAND --help`."


def end_of_options(args: dict) -> dict:
    """`args` (docopt's) without the `--` that ends the options: a usage without `[--]`
    keeps it among the FOLDER or FILE values, so `watch -- -y` would watch `--` and `-y`.
    The first `--` there is always that marker (one before it would have been the marker
    itself); a later one is a folder named `--`.

    Raises UsageError when the command needs a value and none is left (`watch --`).
    """
    from oort_lib.errors import UsageError

    fixed = dict(args)
    for name in ("FOLDER", "FILE"):
        values = list(fixed.get(name) or ())
        if "--" not in values:
            continue
        values.remove("--")
        if not values and not fixed.get("run"):
            raise UsageError(f"no {name} after `--`.")
        fixed[name] = values
    return fixed


def number(args: dict, name: str, kind=int, default=None, high: float = 10**7, low: int = 0):
    """The option as a number between `low` and `high`. Raises UsageError for anything
    else (text, nan, infinity, negative, too small, too large)."""
    import math

    from oort_lib.errors import UsageError

    value = args.get(name)
    if value is None:
        return default
    try:
        number = kind(value)
    except (ValueError, OverflowError):
        raise UsageError(f"{name}={value}: not a{'' if kind is int else ' finite'} "
                         f"{'whole ' if kind is int else ''}number.") from None
    if not math.isfinite(number):
        raise UsageError(f"{name}={value}: not a finite number.")
    if number < 0:
        raise UsageError(f"{name}={value}: must not be negative.")
    if number < low:
        raise UsageError(f"{name} must be at least {low}.")
    if number > high:
        raise UsageError(f"{name}={value}: must be at most {high:,}.")
    return number


def log_level(args: dict) -> int:
    """The --log-level as a logging level. Raises UsageError for a name logging lacks."""
    import logging

    from oort_lib.errors import UsageError

    level = getattr(logging, str(args["--log-level"]).upper(), None)
    if not isinstance(level, int):
        raise UsageError(f"--log-level={args['--log-level']}: use DEBUG, INFO, WARNING or ERROR.")
    return level


def _options_part(argv: list[str]) -> list[str]:
    """The arguments before `--` (after it, `-h` is a folder's name, not an option)."""
    return argv[:argv.index("--")] if "--" in argv else argv


def wants_help(doc: str, argv: list[str]) -> str | None:
    """The help text asked for by `help [COMMAND]` or `COMMAND --help`, else None.
    Raises LookupError (with the one-line message) for help on an unknown command."""
    names = commands(doc)
    argv = _options_part(argv)
    if argv and argv[0] == "help":
        rest = [a for a in argv[1:] if not a.startswith("-")]
        if not rest:
            return overview(doc)
        if rest[0] not in names:
            raise LookupError(unknown_command(doc, rest[0]))
        return command_help(doc, rest[0])
    if argv and argv[0] in names and ("--help" in argv[1:] or "-h" in argv[1:]):
        return command_help(doc, argv[0])
    return None


def unknown_command(doc: str, word: str) -> str:
    import difflib  # only for a command line in error: the cron tick does not pay for it

    close = difflib.get_close_matches(word, list(commands(doc)), n=1)
    return (f"unknown command {word}" + (f"; did you mean {close[0]}?" if close else "")
            + " (see `oort-sync help`)")


def refusal(doc: str, argv: list[str]) -> list[str]:
    """What stderr says of a command line that matches no usage: why (diagnose), then
    the command's usage, or the overview when no command is given at all."""
    line = diagnose(doc, argv)
    command = argv[0] if argv and argv[0] in commands(doc) else None
    more = ["Usage:", *usage_lines(doc, command)] if (
        command and not line.startswith("unknown")) else []
    if not argv:
        more = ["", overview(doc)]
    return [f"oort-sync: {line}", *more]


def diagnose(doc: str, argv: list[str]) -> str:
    """One line saying why `argv` matches no usage: an unknown option (with the closest
    valid one), an unknown command, or the command's usage to follow."""
    names = commands(doc)
    command = argv[0] if argv and not argv[0].startswith("-") else None
    if command is not None and command not in names:
        return unknown_command(doc, command)
    known = option_names(doc)
    preferred = sorted(set(re.findall(r"(--?[A-Za-z][\w-]*)",
                                      " ".join(usage_lines(doc, command or "")))))
    for arg in _options_part(argv):
        if not arg.startswith("-") or arg == "-":
            continue
        name = arg.split("=", 1)[0]
        if name.startswith("--"):
            if name in known or [k for k in known if k.startswith(name)] == [name]:
                continue
            if len([k for k in known if k.startswith(name)]) == 1:
                continue  # docopt accepts an unambiguous prefix
        elif all(f"-{letter}" in known for letter in name[1:2]):
            continue
        import difflib

        close = (difflib.get_close_matches(name, preferred, n=1, cutoff=0.6)
                 or difflib.get_close_matches(name, known, n=1, cutoff=0.6))
        return f"unknown option {name}" + (f"; did you mean {close[0]}?" if close else "") + (
            f" (see `oort-sync help {command}`)" if command else " (see `oort-sync help`)")
    if command is None:
        return "no command given (see `oort-sync help`)"
    shown = " ".join(argv)
    return (f"`oort-sync {shown}` does not match the usage of {command}; "
            f"see `oort-sync help {command}`")
