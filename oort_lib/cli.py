"""The command line: parse (docopt), call one library function per command, render its
answer, pick the exit code. The only module that prints, prompts or exits."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from contextlib import suppress

from docopt import DocoptExit, docopt

from oort_lib import __version__
from oort_lib.errors import EXIT_LOCKED, EXIT_OK, EXIT_USAGE, LockHeld, OortError, UsageError
from oort_lib.escape import escaped_lines
from oort_lib.state import config as cfg
from oort_lib.views import failure
from oort_lib.views.synopsis import TEXT as __doc__  # noqa: A001 - docopt's convention
from oort_lib.views.terminal import fit
from oort_lib.views.usage import end_of_options, log_level, number


def _say(*lines: str | Iterator[str], err: bool = False, wrap: bool = False, end: str = "\n"):
    stream = sys.stderr if err else sys.stdout  # `wrap`: prose, at words on a terminal
    flat = (line for part in lines for line in ((part,) if isinstance(part, str) else part))
    for line in fit(flat, stream) if wrap else flat:  # as they come: a listing may be long
        stream.write(escaped_lines(line) + end)
    stream.write("" if end else "\n")
    stream.flush()


def main(argv: list[str] | None = None) -> int:
    """The exit code of the command in `argv` (default: sys.argv). Raises nothing but
    SystemExit of docopt: everything, from the parsing of the arguments to the closing
    of the log, is inside the one failure path: a plain line on stderr and a documented
    exit code for every error; for a bug, the traceback in the log (which is still open)
    and exit code 70 (views/failure.py)."""
    from oort_lib.state import logfile

    argv = sys.argv[1:] if argv is None else argv
    command = "oort-sync"
    try:
        args = _parse(argv)
        if isinstance(args, int):
            return args
        command = next((name for name in (*COMMANDS, "sandbox") if args.get(name)), command)
        return _dispatch(args)
    except BrokenPipeError:  # `oort-sync logs | head`: the reader has all it wanted
        # Stdout to the null device, so the flush at exit does not fail again.
        with suppress(OSError, ValueError, AttributeError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
    except (Exception, KeyboardInterrupt) as exc:  # noqa: BLE001 - a cron job must say what happened
        line, code = failure.told(exc, command)
        # A stderr that cannot take it (a full disk, a closed pipe) loses the line: the
        # log has it, and the exit code says it.
        with suppress(OSError, ValueError):
            _say(line, err=True)
        return code
    finally:
        logfile.close()  # only now: the failure path writes to it; raises nothing


def _parse(argv: list[str]) -> dict | int:
    """The docopt arguments, or the exit code of a command line that asked for help or
    the version, or is wrong (said on stderr)."""
    from oort_lib.host import tolerant_console

    tolerant_console()
    from oort_lib.views import usage

    try:  # `help [COMMAND]`, `COMMAND --help`: that command only
        text = usage.wants_help(__doc__, argv)
    except LookupError as exc:
        _say(f"oort-sync: {exc}", err=True)
        return EXIT_USAGE
    if text is not None:
        _say(text)
        return EXIT_OK
    try:
        return docopt(__doc__, argv=argv, version=f"oort-sync {__version__}")
    except DocoptExit:
        _say(*usage.refusal(__doc__, argv), err=True)
        return EXIT_USAGE
    except SystemExit as exc:  # --help / --version
        return int(exc.code or 0)


def _show(args: dict, data, lines_of, wrap: bool = False) -> None:
    """`data` as JSON with --json, else as the lines `lines_of(data)` gives."""
    if args["--json"]:
        _say(json.dumps(data, indent=2))
    else:
        _say(*lines_of(data), wrap=wrap)


def _open_log(paths: cfg.Paths, args: dict, settings: cfg.Settings | None = None) -> None:
    """The log file, for every command: a failure of any of them must reach it. Nothing
    is written (the file not even created) unless something is logged."""
    from oort_lib.state import logfile

    settings = settings or cfg.Settings()
    # A state folder that cannot be made: the command says so itself, if it needs it.
    with suppress(OSError):
        logfile.setup(paths.log_file, level=log_level(args), max_bytes=settings.log_max_bytes,
                      backups=settings.log_backups, json_lines=args["--json-log"])


def _dispatch(args: dict) -> int:
    paths = cfg.resolve_paths(args["--home"])
    _open_log(paths, args)
    args = end_of_options(args)  # `watch -- -y`: a folder named -y
    if args["sandbox"]:
        return _sandbox(args)
    try:
        settings = cfg.load_settings(paths)
    except cfg.FolderClash as exc:
        if not args["unwatch"]:
            raise
        settings = exc.settings  # unwatch is how a person fixes it
    if (settings.log_max_bytes, settings.log_backups) != (cfg.Settings().log_max_bytes,
                                                           cfg.Settings().log_backups):
        _open_log(paths, args, settings)  # the rotation the config asks for
    command = next(name for name in COMMANDS if args[name])
    return COMMANDS[command](args, paths, settings)


KEY_WHERE = ("Your upload key is on the settings page of your Arcsecond account (on "
             "Arcsecond.local: the settings page of that installation).")
NO_TERMINAL = "No terminal to ask on: use --username=NAME --key-stdin."


def _ask(question: str, secret: bool = False) -> str:
    """What the person types at the terminal (`secret`: not shown). Raises UsageError when
    stdin is no terminal or its input ends (Ctrl-D): getpass may not fall back to a
    prompt that shows the key."""
    import warnings
    from getpass import GetPassWarning, getpass

    if not sys.stdin.isatty():
        raise UsageError(NO_TERMINAL)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", GetPassWarning)  # raised before it would echo
            return getpass(question) if secret else input(question)
    except (EOFError, GetPassWarning):
        _say("", err=True)  # the message on a line of its own, not after the prompt
        raise UsageError(NO_TERMINAL) from None


def _confirm(question: str, doing: str) -> bool:
    """Whether the person at the terminal answers yes; the end of input (Ctrl-D) is a no.
    Raises UsageError when there is no terminal (then -y says yes)."""
    if not sys.stdin.isatty():
        raise UsageError(f"No terminal to confirm on: add -y to {doing} without asking.")
    try:
        return input(f"{question} [y/N] ").strip().lower() in ("y", "yes")
    except EOFError:
        _say("")
        return False


def _login(args, paths, settings) -> int:
    from oort_lib import account

    def key() -> tuple[str, str]:
        if args["--key-stdin"]:
            line = sys.stdin.readline()
            if not line.strip():
                raise UsageError("--key-stdin: no key on standard input.")
            return line, "standard input"
        if not sys.stdin.isatty():  # said before the hint on where the key is
            raise UsageError(NO_TERMINAL)
        _say(KEY_WHERE, wrap=True)
        return _ask("Upload key (not shown): ", secret=True), "the prompt"

    def password(username: str | None) -> str:
        _say("Password login is the 2021 exchange; today's Arcsecond servers need your "
             "username and upload key (run login without --password).", err=True, wrap=True)
        if not sys.stdin.isatty():
            raise UsageError("--password needs a terminal to ask on; use --key-stdin.")
        return _ask(f"Password for {username}: ", secret=True)

    done = account.login(
        paths, settings, args["--username"], key,
        password=password if args["--password"] else None,
        ask_username=None if args["--key-stdin"] else (
            lambda: _ask("Arcsecond username or e-mail: ").strip()),
        api=args["--api"], allow_http=args["--allow-http"])
    if done.warning():
        _say(f"oort-sync: warning: {done.warning()}", err=True)
    _say(done.summary())
    return EXIT_OK


def _logout(args, paths, settings) -> int:
    from oort_lib.state import credentials

    _say("Logged out." if credentials.delete(paths.credentials_file) else "Nobody was logged in.")
    return EXIT_OK


def _telescopes(args, paths, settings) -> int:
    from oort_lib import telescopes

    _say(telescopes.telescopes(paths, settings, args["--organisation"]))
    return EXIT_OK


def _watch(args, paths, settings) -> int:
    from oort_lib import watchlist

    try:
        tags = cfg.parse_tags(args["--tags"])  # refused before the server is asked
    except OortError as exc:
        raise UsageError(f"--tags: {exc.message}") from None
    options = watchlist.Options(
        organisation=args["--organisation"], telescope=args["--telescope"],
        timezone=args["--timezone"], reduced=bool(args["--reduced"]),
        tags=None if args["--tags"] is None else tags, classify=args["--classify"],
        exclude=tuple(args["--exclude"]))
    change = watchlist.checked(paths, settings, args["FOLDER"], options)
    _say(*change.summary(), wrap=True)
    if change.nothing:
        return EXIT_OK
    if not args["--yes"] and not _confirm(change.question(), "watch"):
        _say("Nothing changed.")
        return EXIT_OK
    cfg.save_settings(paths, change.settings)
    _say(*change.done(), wrap=True)
    return EXIT_OK


def _unwatch(args, paths, settings) -> int:
    from oort_lib import folders

    new, removed = folders.remove(settings, args["FOLDER"])
    cfg.save_settings(paths, new)
    _say(*(f"No longer watching {p}" for p in removed))
    return EXIT_OK


def _import_oort(args, paths, settings) -> int:
    from oort_lib import oort1

    found = oort1.bring_over(paths, settings, args["--oort-dir"])
    _say(*found.lines)
    if not found.count:
        _say("Nothing to import.")
        return EXIT_USAGE if found.refused else EXIT_OK
    if not args["--yes"] and not _confirm(f"Watch these {found.count} folder(s)?", "import"):
        _say("Nothing changed.")
        return EXIT_OK
    found.save(paths)
    _say(f"Watching {found.count} more folder(s). Schedule `oort-sync run` "
         "(see `oort-sync schedule --cron`), or run it now; Oort-Cloud itself can be "
         "stopped and uninstalled (`oort stop`, `pip uninstall oort-cloud`).")
    return EXIT_OK


def _run(args, paths, settings) -> int:
    from oort_lib.run.bandwidth import parse
    from oort_lib.state import manifest as mf
    from oort_lib.views import batch
    from oort_lib.views.render import plan_json, plan_lines

    if args["--rebuild-manifest"]:
        aside = mf.rebuild(paths.manifest_file)
        if aside:
            _say(f"The old manifest is kept as {aside}; starting a new one.", err=True)
    options = batch.Options(
        folders=tuple(args["FOLDER"]), jobs=number(args, "--jobs", high=64, low=1),
        min_age=number(args, "--min-age", float),
        retry_failed=args["--retry-failed"], bwlimit=args["--bwlimit"],
        rebuilt=bool(args["--rebuild-manifest"]), ping_url=args["--ping-url"],
        notify_url=args["--notify-url"], verbose=args["--verbose"])
    if args["--bwlimit"]:
        parse(args["--bwlimit"])  # a typo is a usage error before anything starts
    if args["--dry-run"]:
        with batch.dry_run(paths, settings, options, listing=args["--json"] or args["--verbose"],
                           progress=sys.stderr.isatty() and not args["--quiet"]) as plan:
            _say(plan_json(plan), end="") if args["--json"] else _say(
                plan_lines(plan, verbose=args["--verbose"]), wrap=True)
        return EXIT_OK
    creds, warnings = batch.logged_in(paths)
    _say(*(f"oort-sync: warning: {warning}" for warning in warnings), err=True)
    interactive = sys.stderr.isatty() and not args["--quiet"] and not args["--json"]
    try:
        told = batch.run(paths, settings, creds, options, progress=interactive)
    except LockHeld:
        # The previous tick is still uploading: normal for cron, which must not mail it.
        if args["--quiet"]:
            return EXIT_LOCKED
        raise
    if args["--json"]:
        _say(json.dumps(told.summary, indent=2))
    if told.problems or told.recovered:
        _say(*told.recovered, *told.problems, err=True, wrap=True)
    if (args["--verbose"] or interactive) and not args["--json"]:
        _say(*told.lines, err=True, wrap=True)
    return told.exit_code


def _status(args, paths, settings) -> int:
    from oort_lib.state import credentials
    from oort_lib.views.render import status_lines
    from oort_lib.views.status import status

    _show(args, status(paths, settings, credentials.load(paths.credentials_file)),
          status_lines)
    return EXIT_OK


def _explain(args, paths, settings) -> int:
    from oort_lib.views.explain import explain_files, explain_lines

    _show(args, explain_files(paths, settings, args["FILE"]), lambda reports: [
        line for n, report in enumerate(reports)  # a blank line between two files
        for line in [""] * bool(n) + list(explain_lines(report))])
    return EXIT_OK


def _nights(args, paths, settings) -> int:
    from oort_lib.views.nights import nights, nights_lines, since_date

    _show(args, nights(paths, settings, since_date(args["--since"])), nights_lines)
    return EXIT_OK


def _doctor(args, paths, settings) -> int:
    from oort_lib import doctor
    from oort_lib.views.checkup import checkup_dict, checkup_lines

    checks = doctor.diagnose(paths, settings, home=args["--home"])
    code = doctor.exit_code(checks)
    _show(args, checkup_dict(checks, code), lambda _data: checkup_lines(checks), wrap=True)
    return code


def _logs(args, paths, settings) -> int:
    from oort_lib.state.logfile import tail

    _say(*(tail(paths.log_file, number(args, "-n", default=50, high=1_000_000))
           or [f"(no log yet at {paths.log_file})"]))
    return EXIT_OK


def _report(args, paths, settings) -> int:
    from oort_lib.views.report import report_page, write_report

    if args["--output"] == "-":
        _say(report_page(paths, settings).rstrip("\n"))
        return EXIT_OK
    output = write_report(paths, settings, args["--output"])
    _say(f"Report written to {output}")
    return EXIT_OK


def _schedule(args, paths, settings) -> int:
    from oort_lib.views.schedule import KINDS, encoded, recipe, write_recipe

    home = args["--home"] or os.environ.get("OORT_SYNC_HOME")
    kind = next(name for name in KINDS if args[f"--{name}"])
    text = recipe(kind, home, paths.log_file.parent)
    if args["--output"] not in (None, "-"):
        _say(f"Written to {write_recipe(text, args['--output'])}")
        return EXIT_OK
    sys.stdout.flush()  # UTF-8 whatever the console's code page (the XML declares it)
    if getattr(sys.stdout, "buffer", None) is None:
        _say(text)
    else:
        sys.stdout.buffer.write(encoded(text + "\n"))  # as _say writes it
    return EXIT_OK


def _sandbox(args) -> int:
    from oort_lib.sandbox import Sandbox

    port = number(args, "--port", default=8765, high=65535)
    page_size = number(args, "--page-size", default=50, high=10_000, low=1)
    if (dialect := args["--dialect"]) not in ("2021", "2026", "both"):
        raise UsageError(f"--dialect={dialect}: use 2021, 2026 or both.")
    sandbox = Sandbox(os.path.abspath(args["--data"]), host=args["--host"], port=port,
                      page_size=page_size, dialect=dialect).start()
    _say(f"Sandbox serving {sandbox.url}/ (stop with Ctrl-C)", *sandbox.banner())
    if not sandbox.is_loopback:
        _say(f"Warning: listening on {args['--host']}, reachable from other machines.", err=True)
    try:
        with suppress(KeyboardInterrupt):
            sandbox.wait()
    finally:
        sandbox.stop()
    return EXIT_OK


COMMANDS = {"login": _login, "logout": _logout, "telescopes": _telescopes, "watch": _watch,
            "unwatch": _unwatch, "import-oort": _import_oort, "run": _run, "explain": _explain,
            "status": _status, "nights": _nights, "doctor": _doctor, "logs": _logs,
            "report": _report, "schedule": _schedule}
