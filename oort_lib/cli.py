"""oort-sync: upload FITS and XISF files from watched folders to Arcsecond.io.

Usage:
  oort-sync login [--api=URL] [--username=NAME] [--key-stdin | --password]
                  [--allow-http] [options]
  oort-sync logout [options]
  oort-sync telescopes [-o SUBDOMAIN] [options]
  oort-sync watch FOLDER... [-o SUBDOMAIN] [-t TELESCOPE] [--timezone=TZ] [--reduced]
                  [--tags=TAGS] [--classify=MODE] [--exclude=PATTERN]... [-y] [options]
  oort-sync unwatch FOLDER... [options]
  oort-sync import-oort [--oort-dir=DIR] [-y] [options]
  oort-sync run [--dry-run] [FOLDER...] [--jobs=N] [--min-age=SECONDS] [--retry-failed]
                [--rebuild-manifest] [--ping-url=URL] [--bwlimit=RATE] [-q | -v] [--json]
                [options]
  oort-sync explain FILE... [--json] [options]
  oort-sync status [--json] [options]
  oort-sync logs [-n LINES] [options]
  oort-sync report [--output=FILE] [options]
  oort-sync schedule (--cron | --systemd | --launchd | --windows) [--output=FILE]
                     [options]
  oort-sync sandbox [--host=HOST] [--port=PORT] [--data=DIR] [--page-size=N]
                    [--dialect=GEN] [options]
  oort-sync help [COMMAND]
  oort-sync (-h | --help | --version)

Commands:
  login      Log in with your username and upload key (verified, stored mode 0600).
  logout     Forget the stored credentials.
  telescopes List the telescopes of your account or of an organisation.
  watch      Add folders to sync (checked locally and on the server first).
  unwatch    Stop syncing folders (what was uploaded stays uploaded).
  import-oort  Watch the folders of an Oort-Cloud 1.x installation (and use its key).
  run        One batch run: walk, compare with the manifest, upload what is new.
  explain    What the rules decide for files (date, local time, night, type) and why.
  status     Files uploaded/pending/deferred/failed/skipped per folder, last run, lock.
  logs       Print the end of the log file.
  report     Write a self-contained HTML report of what the manifest knows.
  schedule   Print a cron line, systemd units, a launchd agent or a Windows task.
  sandbox    Serve a local Arcsecond-compatible server to try oort-sync without an account.
  help       Usage, options and examples of one command (also `COMMAND --help`).

Options:
  --api=URL            API server (default: api in the config, else
                       https://api.arcsecond.io).
  --username=NAME      Arcsecond username or e-mail (asked when not given).
  --key-stdin          Read the upload key from standard input (headless machines).
  --password           2021 servers only: log in with a password instead of a key.
  --allow-http         Allow plain http:// to a server on your network (Arcsecond.local).
  -o SUBDOMAIN, --organisation=SUBDOMAIN  Upload to this organisation (`local` on
                       Arcsecond.local).
  -t TELESCOPE, --telescope=TELESCOPE     Telescope UUID (or alias) of the folder's data.
  --timezone=TZ        Header dates are UTC, converted to this IANA zone for the night
                       (2021 servers: a 2026 one dates nights by the telescope's site).
  --reduced            The folder holds reduced data (sent with is_raw = False).
  --tags=TAGS          Comma-separated labels sent with each file (2026 servers).
  --classify=MODE      Calibration or observation by "folder" name (default) or by
                       the "header" frame type (IMAGETYP/FRAME/OBSTYPE), else folder.
  --exclude=PATTERN    Leave out files and folders matching this glob, relative to the
                       folder (repeatable): `*.tmp`, `processed/`, `WBPP/calibrated`.
  --oort-dir=DIR       The Oort-Cloud 1.x folder holding config.ini [default: ~/.oort].
  -y, --yes            Do not ask for confirmation.
  --dry-run            Show the plan; no network, no manifest writes.
  --jobs=N             Parallel uploads (default: jobs in the config, else 4).
  --min-age=SECONDS    Files modified more recently wait for a later run
                       (default: min_age in the config, else 60).
  --retry-failed       Retry files that failed for a permanent reason.
  --rebuild-manifest   Keep a damaged manifest aside and start a new one.
  --ping-url=URL       Healthchecks-style URL pinged at start, success and failure.
  --bwlimit=RATE       Cap the total upload rate: 512k, 4M, off, or a timetable
                       "08:00,off 19:00,1M 23:30,off" (default: bwlimit in the config).
  -q, --quiet          Print only errors.
  -v, --verbose        Print every file outcome and a summary.
  --json               Machine-readable output on stdout.
  -n LINES             Number of log lines [default: 50].
  --output=FILE        Write to FILE: the report (default: oort-sync-report.html; `-` for
                       stdout), or the schedule's recipe (default: stdout).
  --cron               A crontab entry.
  --systemd            A systemd user service and timer.
  --launchd            A macOS LaunchAgent (plist).
  --windows            A Windows Task Scheduler task (XML for schtasks).
  --host=HOST          Sandbox address [default: 127.0.0.1].
  --port=PORT          Sandbox port, 0 for any free one [default: 8765].
  --data=DIR           Sandbox storage [default: ./oort-sandbox].
  --page-size=N        Sandbox list page size [default: 50].
  --dialect=GEN        API generation the sandbox speaks: 2021, 2026 or both
                       [default: both].
  --home=DIR           Keep config and state under DIR (also $OORT_SYNC_HOME).
  --log-level=LEVEL    DEBUG, INFO, WARNING or ERROR for the log file [default: INFO].
  --json-log           Write the log file as JSON lines.
  -h, --help           Show this help.
  --version            Show the version.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import sys

from docopt import DocoptExit, docopt

from oort_lib import __version__
from oort_lib.errors import (
    EXIT_LOCKED,
    EXIT_OK,
    EXIT_SIGINT,
    EXIT_SOFTWARE,
    EXIT_USAGE,
    LockHeld,
    OortError,
    UsageError,
)
from oort_lib.escape import escaped_lines
from oort_lib.state import config as cfg
from oort_lib.views.terminal import fit
from oort_lib.views.usage import end_of_options, number


def _say(*lines: str, err: bool = False, wrap: bool = False) -> None:
    stream = sys.stderr if err else sys.stdout  # `wrap`: prose, at words on a terminal
    for line in fit(lines, stream) if wrap else lines:
        stream.write(escaped_lines(line) + "\n")
    stream.flush()


def main(argv: list[str] | None = None) -> int:
    """The exit code of the command in `argv` (default: sys.argv). Raises nothing but
    SystemExit of docopt: everything, from the parsing of the arguments to the closing
    of the log, is inside the one failure path (_guarded)."""
    argv = sys.argv[1:] if argv is None else argv
    from oort_lib.state import logfile

    try:
        return _guarded(argv)
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
        line = usage.diagnose(__doc__, argv)
        command = argv[0] if argv and argv[0] in usage.commands(__doc__) else None
        more = ["Usage:", *usage.usage_lines(__doc__, command)] if (
            command and not line.startswith("unknown")) else []
        if not argv:
            more = ["", usage.overview(__doc__)]
        _say(f"oort-sync: {line}", *more, err=True)
        return EXIT_USAGE
    except SystemExit as exc:  # --help / --version
        return int(exc.code or 0)


def _guarded(argv: list[str]) -> int:
    """The one failure path: a plain line on stderr and a documented exit code for every
    error; for a bug, the traceback in the log (which is still open) and exit code 70."""
    from oort_lib.state import logfile

    log = logging.getLogger("oort_sync")
    command = "oort-sync"
    try:
        args = _parse(argv)
        if isinstance(args, int):
            return args
        command = next((name for name in (*COMMANDS, "sandbox") if args.get(name)), command)
        return _dispatch(args)
    except BrokenPipeError:
        _quiet_stdout()  # `oort-sync logs | head`: the reader has all it wanted
        return EXIT_OK
    except OortError as exc:
        log.log(logging.INFO if isinstance(exc, LockHeld) else logging.ERROR,
                "%s: %s (exit %s)", command, exc.message, exc.exit_code)
        _tell(f"oort-sync: {exc.message}")
        return exc.exit_code
    except KeyboardInterrupt:
        _tell("oort-sync: interrupted.")
        return EXIT_SIGINT
    except OSError as exc:
        # The state or config folder itself: not writable, disk full, read-only mount.
        log.error("%s: %s", command, exc)
        where = f"{exc.filename}: " if exc.filename else ""
        if exc.errno == errno.ENOSPC:
            _tell(f"oort-sync: {where}the disk is full ({exc.strerror}). Free some space; "
                  "what was recorded before is intact.")
        else:
            _tell(f"oort-sync: {where}{exc.strerror or exc}. Check that this folder is "
                  "writable and the disk is not full.")
        return EXIT_USAGE
    except Exception as exc:  # noqa: BLE001 - a cron job must say what happened, briefly
        log.critical("internal error in `oort-sync %s`", command, exc_info=True)
        where, failed = logfile.current(), logfile.write_failure()
        if where is None or failed is not None:
            details = f"the log could not be written ({failed or 'no log file'})"
        else:
            details = f"the traceback is in {where} (`oort-sync logs`)"
        _tell(f"oort-sync: internal error in `{command}` ({type(exc).__name__}); {details}. "
              "Please report it.")
        return EXIT_SOFTWARE


def _tell(line: str) -> None:
    """A line of the failure path on stderr. A stderr that cannot take it (a full disk,
    a closed pipe) loses it: the log has it, and the exit code says it."""
    try:
        _say(line, err=True)
    except (OSError, ValueError):
        pass


def _quiet_stdout() -> None:
    """Point stdout at the null device, so the flush at exit does not fail again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):
        pass


def _open_log(paths: cfg.Paths, args: dict, settings: cfg.Settings | None = None) -> None:
    """The log file, for every command: a failure of any of them must reach it. Nothing
    is written (the file not even created) unless something is logged."""
    from oort_lib.state import logfile

    level = getattr(logging, str(args["--log-level"]).upper(), None)
    if not isinstance(level, int):
        raise UsageError(f"--log-level={args['--log-level']}: use DEBUG, INFO, WARNING or ERROR.")
    settings = settings or cfg.Settings()
    try:
        logfile.setup(paths.log_file, level=level, max_bytes=settings.log_max_bytes,
                      backups=settings.log_backups, json_lines=args["--json-log"])
    except OSError:
        pass  # a state folder that cannot be made: the command says so itself, if it needs it


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


def _client(settings: cfg.Settings, key: str | None = None, api: str | None = None,
            allow_http: bool | None = None):
    from oort_lib.arcsecond.client import Client

    return Client.from_settings(settings, key, api=api, allow_http=allow_http)


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
    from oort_lib.state import credentials

    api = args["--api"]
    allow_http = bool(args["--allow-http"] or settings.allow_http)
    client = _client(settings, api=api, allow_http=allow_http)
    username = args["--username"]
    if not args["--key-stdin"] and not username:
        username = _ask("Arcsecond username or e-mail: ").strip()
    if args["--password"]:
        _say("Password login is the 2021 exchange; today's Arcsecond servers need your "
             "username and upload key (run login without --password).", err=True, wrap=True)
        if not sys.stdin.isatty():
            raise UsageError("--password needs a terminal to ask on; use --key-stdin.")
        creds = account.login_with_password(client, username,
                                            _ask(f"Password for {username}: ", secret=True))
    else:
        if args["--key-stdin"]:
            key, where = sys.stdin.readline(), "standard input"
            if not key.strip():
                raise UsageError("--key-stdin: no key on standard input.")
        else:
            if not sys.stdin.isatty():  # said before the hint on where the key is
                raise UsageError(NO_TERMINAL)
            _say(KEY_WHERE, wrap=True)
            key, where = _ask("Upload key (not shown): ", secret=True), "the prompt"
        key = credentials.check_key(key, where)
        creds = account.login_with_key(client, username or None, key,
                                       dialect=settings.api_dialect)
    credentials.save(paths.credentials_file, creds)
    if api or allow_http != settings.allow_http:
        cfg.save_settings(paths, cfg.with_api(settings, client.base)._replace(
            allow_http=allow_http))
    from oort_lib.arcsecond.address import plain_http_off_loopback

    if plain_http_off_loopback(client.base):
        _say(f"oort-sync: warning: {client.base} is plain http://: the key and your files "
             "travel unencrypted on your network.", err=True)
    who = creds.username or "an upload key"
    roles = ", ".join(f"{org} ({role})" for org, role in sorted((creds.memberships or {}).items()))
    _say(f"Logged in to {client.base} as {who} (API generation {creds.generation})."
         + (f" Organisations: {roles}." if roles else ""))
    return EXIT_OK


def _telescopes(args, paths, settings) -> int:
    from oort_lib import folders
    from oort_lib.arcsecond.detect import generation_for
    from oort_lib.state import credentials

    creds = credentials.require(paths.credentials_file)
    client = _client(settings, creds.key)
    sites = (folders.site_lines(settings.folders)  # 2026: the server dates nights by them
             if generation_for(client, settings, creds) == "2026" else None)
    _say(folders.telescope_listing(client, args["--organisation"], sites=sites,
                                   account=creds.username))
    return EXIT_OK


def _logout(args, paths, settings) -> int:
    from oort_lib.state import credentials

    removed = credentials.delete(paths.credentials_file)
    _say("Logged out." if removed else "Nobody was logged in.")
    return EXIT_OK


def _watch(args, paths, settings) -> int:
    from oort_lib import watchlist
    from oort_lib.state import credentials

    try:
        tags = cfg.parse_tags(args["--tags"])  # refused before the server is asked
    except OortError as exc:
        raise UsageError(f"--tags: {exc.message}") from None
    creds = credentials.load(paths.credentials_file)
    remote = bool(args["--organisation"] or args["--telescope"])
    if remote and creds is None:
        raise credentials.AuthError("Not logged in: run `oort-sync login` first.")
    client = generation = None
    if creds is not None:
        from oort_lib.arcsecond.detect import generation_for

        client = _client(settings, creds.key)
        generation = generation_for(client, settings, creds)
        if not remote and generation == "2021":
            client = None  # a personal folder without telescope: nothing to ask
    options = watchlist.Options(
        organisation=args["--organisation"], telescope=args["--telescope"],
        timezone=args["--timezone"], reduced=bool(args["--reduced"]),
        tags=None if args["--tags"] is None else tags, classify=args["--classify"],
        exclude=tuple(args["--exclude"]))
    change = watchlist.change(settings, creds, args["FOLDER"], options, client=client,
                              generation=generation)
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
    from oort_lib import folders, oort1
    from oort_lib.account import login_with_key
    from oort_lib.arcsecond.detect import generation_for
    from oort_lib.errors import ConfigError
    from oort_lib.state import credentials

    old = oort1.read(args["--oort-dir"])
    where = oort1.config_file(args["--oort-dir"])
    lines = [f"Oort-Cloud 1.x config {where}: {len(old)} watched folder(s) "
             "(nothing there is changed)."]
    creds = credentials.load(paths.credentials_file)
    new_login = None
    if creds is None:
        username, key = oort1.key_of(old)
        if key is None:
            raise credentials.AuthError("Not logged in, and the Oort 1.x config holds no "
                                        "upload key: run `oort-sync login` first.")
        client = _client(settings)
        creds = new_login = login_with_key(
            client, username, credentials.check_key(key, f"{where}"),
            dialect=settings.api_dialect)
        lines.append(f"Upload key of {username or 'the Oort 1.x account'} from {where}: "
                     f"verified with {client.base}.")
    client = _client(settings, creds.key)
    generation = generation_for(client, settings, creds)
    current, proposals, left = settings, [], []
    for (organisation, telescope), group in oort1.groups(old).items():
        for folder in group:
            remote = bool(organisation or telescope)
            try:
                proposal = folders.propose(
                    current, creds, [folder.path], organisation=organisation,
                    telescope=telescope, client=client if remote or generation != "2021"
                    else None, generation=generation)
            except ConfigError as exc:
                left.append(f"Not imported: {exc.message}")
                continue
            proposals.append(proposal)
            current = folders.add(current, proposal)
    for proposal in proposals:
        lines += ["", *proposal.summary()]
    if left:
        lines += ["", *left]
    _say(*lines)
    if not proposals:
        _say("Nothing to import.")
        return EXIT_OK if not left else EXIT_USAGE
    if not args["--yes"] and not _confirm(f"Watch these {len(proposals)} folder(s)?", "import"):
        _say("Nothing changed.")
        return EXIT_OK
    if new_login is not None:
        credentials.save(paths.credentials_file, new_login)
    cfg.save_settings(paths, current)
    _say(f"Watching {len(proposals)} more folder(s). Schedule `oort-sync run` "
         "(see `oort-sync schedule --cron`), or run it now; Oort-Cloud itself can be "
         "stopped and uninstalled (`oort stop`, `pip uninstall oort-cloud`).")
    return EXIT_OK


def _run(args, paths, settings) -> int:
    from oort_lib.run import sync
    from oort_lib.run.interrupt import GracefulStop
    from oort_lib.state import credentials
    from oort_lib.state import manifest as mf
    from oort_lib.views.render import plan_lines

    if args["--rebuild-manifest"]:
        aside = mf.rebuild(paths.manifest_file)
        if aside:
            _say(f"The old manifest is kept as {aside}; starting a new one.", err=True)
    jobs = number(args, "--jobs", high=64)
    if jobs == 0:
        raise UsageError("--jobs must be at least 1.")
    min_age = number(args, "--min-age", float)
    if args["--bwlimit"]:
        from oort_lib.run.bandwidth import parse

        parse(args["--bwlimit"])  # a typo is a usage error before anything starts
    if args["--dry-run"]:
        planning = None
        if sys.stderr.isatty() and not args["--quiet"]:
            from oort_lib.views.progress import PlanningBar

            planning = PlanningBar()
        plan = sync.dry_run(paths, settings, args["FOLDER"], min_age=min_age,
                            retry_failed=args["--retry-failed"],
                            creds=credentials.load(paths.credentials_file),
                            keep_items=bool(args["--json"] or args["--verbose"]),
                            reading=planning)
        if planning is not None:
            planning.close()
        if args["--json"]:
            _say(json.dumps(plan.to_dict(), indent=2))
        else:
            _say(*plan_lines(plan, verbose=args["--verbose"]), wrap=True)
        return EXIT_OK
    creds = credentials.require(paths.credentials_file)
    warning = credentials.permission_warning(paths.credentials_file)
    if warning:
        _say(f"oort-sync: warning: {warning}", err=True)
    for name in credentials.blank_variables():
        used = "the stored credentials" if creds.source == "file" else creds.source
        _say(f"oort-sync: warning: ${name} holds only blanks and is ignored (the key "
             f"comes from {used}).", err=True)
    interactive = sys.stderr.isatty() and not args["--quiet"] and not args["--json"]
    from oort_lib.views.progress import Bar, PlainLines

    events = Bar(verbose=args["--verbose"]) if interactive else (
        PlainLines() if args["--verbose"] else sync.Events())
    stopper = GracefulStop()
    ping = args["--ping-url"] or settings.ping_url
    try:
        with stopper:
            result = sync.run(paths, settings, creds, args["FOLDER"], jobs=jobs,
                              min_age=min_age, retry_failed=args["--retry-failed"],
                              events=events, stop=stopper.stop, abort=stopper.abort,
                              on_locked=(lambda: _ping(ping, start=True)) if ping else None,
                              stop_code=lambda: stopper.exit_code, bwlimit=args["--bwlimit"],
                              rebuilt=bool(args["--rebuild-manifest"]))
    except LockHeld:
        # The previous tick is still uploading: normal for cron, which must not mail it.
        if args["--quiet"]:
            return EXIT_LOCKED
        raise
    events.finish()
    if result.generation:
        credentials.remember_generation(paths.credentials_file, settings.api,
                                        result.generation)
    code = stopper.exit_code or result.exit_code
    lines, problems, recovered = _run_report(args, paths, settings, result, interactive)
    if stopper.exit_code:
        problems.append(f"Stopped by {stopper.signal_name}; files in flight are retried next run.")
    _ping(ping, code=code, reason=_one_line_reason(result, stopper))
    if args["--json"]:
        _say(json.dumps(dict(result.summary(), exit_code=code), indent=2))
    verbose = args["--verbose"] or interactive
    if problems or recovered:
        _say(*recovered, *problems, err=True, wrap=True)
    if verbose and not args["--json"]:
        _say(*lines, err=True, wrap=True)
    return code


def _run_report(args, paths, settings, result, interactive):
    """(summary lines, problem lines, recovery lines): a problem that goes on from the
    previous run (server unreachable, key refused, folder missing) is only logged, unless
    a person is watching (a terminal, -v)."""
    import logging
    import time

    from oort_lib.run import outage
    from oort_lib.views.render import result_lines

    state_file = paths.state_dir / "outages.json"
    checked = [f.path for f in cfg.select_folders(settings.folders, args["FOLDER"])]
    verdict = outage.judge(outage.load(state_file), outage.problems_of(result), time.time(),
                           checked_roots=checked,
                           server_checked=result.generation is not None)
    try:
        outage.save(state_file, verdict.state)
    except OSError as exc:
        logging.getLogger("oort_sync").warning("cannot keep %s: %s", state_file, exc)
    for message in verdict.quiet:
        logging.getLogger("oort_sync").error("still: %s", message)
    for line in verdict.recovered:
        logging.getLogger("oort_sync").info("%s", line.removeprefix("oort-sync: "))
    hide = () if interactive or args["--verbose"] else verdict.quiet
    lines, problems = result_lines(result, verbose=args["--verbose"], hide=hide)
    return lines, problems, list(verdict.recovered)


def _one_line_reason(result, stopper) -> str | None:
    """What the failure ping says, in one line."""
    if stopper.exit_code:
        return f"stopped by {stopper.signal_name}"
    if result.fatal is not None:
        return result.fatal.message
    reasons = [why for _root, why in result.plan.missing]
    if result.failed:
        reasons.append(f"{len(result.failed)} file(s) failed, e.g. {result.failed[0][1]}")
    if result.plan.problems:
        reasons.append(f"{len(result.plan.problems)} file(s) not whole, e.g. "
                       f"{result.plan.problems[0][2]}")
    return "; ".join(reasons) or None


def _status(args, paths, settings) -> int:
    from oort_lib.state import credentials
    from oort_lib.views.render import status_lines
    from oort_lib.views.status import status

    data = status(paths, settings, credentials.load(paths.credentials_file))
    if args["--json"]:
        _say(json.dumps(data, indent=2))
    else:
        _say(*status_lines(data))
    return EXIT_OK


def _explain(args, paths, settings) -> int:
    from oort_lib.state import credentials
    from oort_lib.state import manifest as mf
    from oort_lib.views.explain import explain, explain_lines

    try:  # offline: only the API generation login found is read
        creds = credentials.load(paths.credentials_file)
    except OortError:
        creds = None
    with mf.Manifest(paths.manifest_file, create=False, readonly=True) as manifest:
        reports = [explain(path, settings, manifest, creds) for path in args["FILE"]]
    if args["--json"]:
        _say(json.dumps(reports, indent=2))
    else:
        for number, report in enumerate(reports):
            _say(*([""] if number else []), *explain_lines(report))
    return EXIT_OK


def _logs(args, paths, settings) -> int:
    from oort_lib.state.logfile import tail

    lines = tail(paths.log_file, number(args, "-n", default=50, high=1_000_000))
    _say(*(lines or [f"(no log yet at {paths.log_file})"]))
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
    page_size = number(args, "--page-size", default=50, high=10_000)
    if not page_size:
        raise UsageError("--page-size must be at least 1.")
    dialect = args["--dialect"]
    if dialect not in ("2021", "2026", "both"):
        raise UsageError(f"--dialect={dialect}: use 2021, 2026 or both.")
    sandbox = Sandbox(os.path.abspath(args["--data"]), host=args["--host"], port=port,
                      page_size=page_size, dialect=dialect).start()
    _say(f"Sandbox serving {sandbox.url}/ (stop with Ctrl-C)", *sandbox.banner())
    if not sandbox.is_loopback:
        _say(f"Warning: listening on {args['--host']}, reachable from other machines.", err=True)
    try:
        sandbox.wait()
    except KeyboardInterrupt:
        pass
    finally:
        sandbox.stop()
    return EXIT_OK


def _ping(url: str | None, *, start: bool = False, code: int = 0,
          reason: str | None = None) -> None:
    if url:
        from oort_lib.views import ping

        ping.send(url, code, reason if code else None, start=start)


COMMANDS = {
    "login": _login,
    "logout": _logout,
    "telescopes": _telescopes,
    "watch": _watch,
    "unwatch": _unwatch,
    "import-oort": _import_oort,
    "run": _run,
    "explain": _explain,
    "status": _status,
    "logs": _logs,
    "report": _report,
    "schedule": _schedule,
}
