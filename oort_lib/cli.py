"""oort-sync: upload FITS and XISF files from watched folders to Arcsecond.io.

Usage:
  oort-sync login [--api=URL] [--username=NAME] [--key-stdin | --password]
                  [--allow-http] [options]
  oort-sync logout [options]
  oort-sync telescopes [-o SUBDOMAIN] [options]
  oort-sync watch FOLDER... [-o SUBDOMAIN] [-t TELESCOPE] [--timezone=TZ] [--reduced]
                  [--tags=TAGS] [--classify=MODE] [-y] [options]
  oort-sync unwatch FOLDER... [options]
  oort-sync run [--dry-run] [FOLDER...] [--jobs=N] [--min-age=SECONDS] [--retry-failed]
                [--rebuild-manifest] [--ping-url=URL] [-q | -v] [--json] [options]
  oort-sync explain FILE... [--json] [options]
  oort-sync status [--json] [options]
  oort-sync logs [-n LINES] [options]
  oort-sync report [--output=FILE] [options]
  oort-sync schedule (--cron | --systemd | --launchd | --windows) [options]
  oort-sync sandbox [--host=HOST] [--port=PORT] [--data=DIR] [--page-size=N]
                    [--dialect=GEN] [options]
  oort-sync (-h | --help | --version)

Commands:
  login      Log in with your username and upload key (verified, stored mode 0600).
  logout     Forget the stored credentials.
  telescopes List the telescopes of your account or of an organisation.
  watch      Add folders to sync (checked locally and on the server first).
  unwatch    Stop syncing folders (what was uploaded stays uploaded).
  run        One batch run: walk, compare with the manifest, upload what is new.
  explain    What the rules decide for files (date, local time, night, type) and why.
  status     Files uploaded/pending/deferred/failed/skipped per folder, last run, lock.
  logs       Print the end of the log file.
  report     Write a self-contained HTML report of what the manifest knows.
  schedule   Print a cron line, systemd units, a launchd agent or a Windows task.
  sandbox    Serve a local Arcsecond-compatible server to try oort-sync without an account.

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
  --timezone=TZ        Header dates are UTC, converted to this IANA zone for the night.
  --reduced            The folder holds reduced data (sent with is_raw = False).
  --tags=TAGS          Comma-separated labels sent with each file (2026 servers).
  --classify=MODE      Calibration or observation by "folder" name (default) or by
                       the "header" frame type (IMAGETYP/FRAME/OBSTYPE), else folder.
  -y, --yes            Do not ask for confirmation.
  --dry-run            Show the plan; no network, no manifest writes.
  --jobs=N             Parallel uploads (default: jobs in the config, else 4).
  --min-age=SECONDS    Files modified more recently wait for a later run
                       (default: min_age in the config, else 60).
  --retry-failed       Retry files that failed for a permanent reason.
  --rebuild-manifest   Keep a damaged manifest aside and start a new one.
  --ping-url=URL       Healthchecks-style URL pinged at start, success and failure.
  -q, --quiet          Print only errors.
  -v, --verbose        Print every file outcome and a summary.
  --json               Machine-readable output on stdout.
  -n LINES             Number of log lines [default: 50].
  --output=FILE        Where to write the report [default: oort-sync-report.html].
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

import json
import logging
import os
import sys

from docopt import DocoptExit, docopt

from . import __version__
from . import config as cfg
from .errors import (
    EXIT_FILES_FAILED,
    EXIT_LOCKED,
    EXIT_OK,
    EXIT_SIGINT,
    EXIT_USAGE,
    LockHeld,
    NotFound,
    OortError,
    UsageError,
)


def _say(*lines: str, err: bool = False) -> None:
    stream = sys.stderr if err else sys.stdout
    for line in lines:
        stream.write(line + "\n")
    stream.flush()


def _number(args: dict, name: str, kind=int, default=None):
    value = args.get(name)
    if value is None:
        return default
    try:
        number = kind(value)
    except ValueError:
        raise UsageError(f"{name}={value}: not a number.") from None
    if number < 0:
        raise UsageError(f"{name}={value}: must not be negative.")
    return number


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    from .host import tolerant_console

    tolerant_console()
    try:
        args = docopt(__doc__, argv=argv, version=f"oort-sync {__version__}")
    except DocoptExit:
        usage = __doc__.split("Usage:", 1)[1].split("\n\n", 1)[0]
        shown = " ".join(argv) or "(nothing)"
        _say(f"Usage:{usage}", "",
             f"oort-sync: `{shown}` matches none of the commands above; "
             "see `oort-sync --help`.", err=True)
        return EXIT_USAGE
    except SystemExit as exc:  # --help / --version
        return int(exc.code or 0)
    try:
        return _dispatch(args)
    except OortError as exc:
        _say(f"oort-sync: {exc.message}", err=True)
        return exc.exit_code
    except KeyboardInterrupt:
        _say("oort-sync: interrupted.", err=True)
        return EXIT_SIGINT
    except OSError as exc:
        # The state or config folder itself: not writable, disk full, read-only mount.
        where = f"{exc.filename}: " if exc.filename else ""
        _say(f"oort-sync: {where}{exc.strerror or exc}. Check that this folder is writable "
             "and the disk is not full.", err=True)
        return EXIT_USAGE
    except Exception as exc:  # noqa: BLE001 - a cron job must say what happened, briefly
        logging.getLogger("oort_sync").exception("internal error")
        _say(f"oort-sync: internal error ({type(exc).__name__}: {exc}). Nothing was lost; "
             "details are in the log (`oort-sync logs`). Please report it.", err=True)
        return EXIT_FILES_FAILED


def _dispatch(args: dict) -> int:
    paths = cfg.resolve_paths(args["--home"])
    if args["sandbox"]:
        return _sandbox(args)
    try:
        settings = cfg.load_settings(paths)
    except cfg.FolderClash as exc:
        if not args["unwatch"]:
            raise
        settings = exc.settings  # unwatch is how a person fixes it
    level = getattr(logging, str(args["--log-level"]).upper(), None)
    if not isinstance(level, int):
        raise UsageError(f"--log-level={args['--log-level']}: use DEBUG, INFO, WARNING or ERROR.")
    command = next(name for name in COMMANDS if args[name])
    if command != "run" or args["--dry-run"]:
        return COMMANDS[command](args, paths, settings)
    from . import logfile

    logfile.setup(paths.log_file, level=level, max_bytes=settings.log_max_bytes,
                  backups=settings.log_backups, json_lines=args["--json-log"])
    try:
        return COMMANDS[command](args, paths, settings)
    finally:
        logfile.close()


def _client(settings: cfg.Settings, key: str | None = None, api: str | None = None,
            allow_http: bool | None = None):
    from .arcsecond.client import Client

    return Client.from_settings(settings, key, api=api, allow_http=allow_http)


KEY_WHERE = ("Your upload key is on the settings page of your Arcsecond account (on "
             "Arcsecond.local: the settings page of that installation).")


def _login(args, paths, settings) -> int:
    from getpass import getpass

    from . import account, credentials

    api = args["--api"]
    allow_http = bool(args["--allow-http"] or settings.allow_http)
    client = _client(settings, api=api, allow_http=allow_http)
    username = args["--username"]
    asking = not args["--key-stdin"] and not username
    if asking and not sys.stdin.isatty():
        raise UsageError("No terminal to ask on: use --username=NAME --key-stdin.")
    if asking:
        username = input("Arcsecond username or e-mail: ").strip()
    if args["--password"]:
        _say("Password login is the 2021 exchange; today's Arcsecond servers need your "
             "username and upload key (run login without --password).", err=True)
        if not sys.stdin.isatty():
            raise UsageError("--password needs a terminal to ask on; use --key-stdin.")
        creds = account.login_with_password(client, username,
                                            getpass(f"Password for {username}: "))
    else:
        if args["--key-stdin"]:
            key, where = sys.stdin.readline(), "standard input"
            if not key.strip():
                raise UsageError("--key-stdin: no key on standard input.")
        else:
            _say(KEY_WHERE)
            key, where = getpass("Upload key (not shown): "), "the prompt"
        key = credentials.check_key(key, where)
        creds = account.login_with_key(client, username or None, key,
                                       dialect=settings.api_dialect)
    credentials.save(paths.credentials_file, creds)
    if api or allow_http != settings.allow_http:
        cfg.save_settings(paths, cfg.with_api(settings, client.base)._replace(
            allow_http=allow_http))
    if client.base.startswith("http://") and cfg.host_kind(
            client.base.split("/")[2].rsplit(":", 1)[0]) != "loopback":
        _say(f"oort-sync: warning: {client.base} is plain http://: the key and your files "
             "travel unencrypted on your network.", err=True)
    who = creds.username or "an upload key"
    roles = ", ".join(f"{org} ({role})" for org, role in sorted((creds.memberships or {}).items()))
    _say(f"Logged in to {client.base} as {who} (API generation {creds.generation})."
         + (f" Organisations: {roles}." if roles else ""))
    return EXIT_OK


def _telescopes(args, paths, settings) -> int:
    from . import credentials, folders

    creds = credentials.require(paths.credentials_file)
    client = _client(settings, creds.key)
    org = args["--organisation"]
    try:
        _say(folders.telescope_listing(client, org))
    except NotFound:
        raise UsageError(f"Organisation {org!r} does not exist (check the subdomain; "
                         "on Arcsecond.local it is `local`).") from None
    return EXIT_OK


def _logout(args, paths, settings) -> int:
    from . import credentials

    removed = credentials.delete(paths.credentials_file)
    _say("Logged out." if removed else "Nobody was logged in.")
    return EXIT_OK


def _watch(args, paths, settings) -> int:
    from . import credentials, folders

    creds = credentials.load(paths.credentials_file)
    remote = bool(args["--organisation"] or args["--telescope"])
    if remote and creds is None:
        raise credentials.AuthError("Not logged in: run `oort-sync login` first.")
    client = generation = None
    if creds is not None:
        from .account import generation_for

        client = _client(settings, creds.key)
        generation = generation_for(client, settings, creds)
        if not remote and generation == "2021":
            client = None  # a personal folder without telescope: nothing to ask
    proposal = folders.propose(settings, creds, args["FOLDER"],
                               organisation=args["--organisation"],
                               telescope=args["--telescope"], timezone=args["--timezone"],
                               client=client, generation=generation,
                               reduced=bool(args["--reduced"]),
                               tags=cfg.parse_tags(args["--tags"]),
                               classify=args["--classify"])
    _say(*proposal.summary())
    if not args["--yes"]:
        if not sys.stdin.isatty():
            raise UsageError("No terminal to confirm on: add -y to watch without asking.")
        if input("Watch these folders? [y/N] ").strip().lower() not in ("y", "yes"):
            _say("Nothing changed.")
            return EXIT_OK
    cfg.save_settings(paths, folders.add(settings, proposal))
    _say(f"Watching {len(proposal.folders)} folder(s). Schedule `oort-sync run` "
         "(see `oort-sync schedule --cron`), or run it now.")
    return EXIT_OK


def _unwatch(args, paths, settings) -> int:
    from . import folders

    new, removed = folders.remove(settings, args["FOLDER"])
    cfg.save_settings(paths, new)
    _say(*(f"No longer watching {p}" for p in removed))
    return EXIT_OK


def _run(args, paths, settings) -> int:
    from . import credentials, sync
    from . import manifest as mf
    from .interrupt import GracefulStop
    from .render import plan_lines, result_lines

    if args["--rebuild-manifest"]:
        aside = mf.rebuild(paths.manifest_file)
        if aside:
            _say(f"The old manifest is kept as {aside}; starting a new one.", err=True)
    jobs = _number(args, "--jobs")
    if jobs == 0:
        raise UsageError("--jobs must be at least 1.")
    min_age = _number(args, "--min-age", float)
    if args["--dry-run"]:
        plan = sync.dry_run(paths, settings, args["FOLDER"], min_age=min_age,
                            retry_failed=args["--retry-failed"],
                            creds=credentials.load(paths.credentials_file))
        if args["--json"]:
            _say(json.dumps(plan.to_dict(), indent=2))
        else:
            _say(*plan_lines(plan, verbose=args["--verbose"]))
        return EXIT_OK
    creds = credentials.require(paths.credentials_file)
    warning = credentials.permission_warning(paths.credentials_file)
    if warning:
        _say(f"oort-sync: warning: {warning}", err=True)
    interactive = sys.stderr.isatty() and not args["--quiet"] and not args["--json"]
    events = _Progress(verbose=args["--verbose"]) if interactive else (
        _Verbose() if args["--verbose"] else sync.Events())
    stopper = GracefulStop()
    ping = args["--ping-url"] or settings.ping_url
    _ping(ping, "start")
    try:
        with stopper:
            result = sync.run(paths, settings, creds, args["FOLDER"], jobs=jobs,
                              min_age=min_age, retry_failed=args["--retry-failed"],
                              events=events, stop=stopper.stop, abort=stopper.abort,
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
    _ping(ping, "" if code == EXIT_OK else str(code))
    if args["--json"]:
        _say(json.dumps(dict(result.summary(), exit_code=code), indent=2))
    verbose = args["--verbose"] or interactive
    lines, problems = result_lines(result, verbose=args["--verbose"])
    if stopper.exit_code:
        problems.append(f"Stopped by {stopper.signal_name}; files in flight are retried next run.")
    if problems:
        _say(*problems, err=True)
    if verbose and not args["--json"]:
        _say(*lines, err=True)
    return code


def _status(args, paths, settings) -> int:
    from . import credentials
    from .render import status_lines
    from .status import status

    data = status(paths, settings, credentials.load(paths.credentials_file))
    if args["--json"]:
        _say(json.dumps(data, indent=2))
    else:
        _say(*status_lines(data))
    return EXIT_OK


def _explain(args, paths, settings) -> int:
    from . import manifest as mf
    from .explain import explain, explain_lines

    with mf.Manifest(paths.manifest_file, create=False) as manifest:
        reports = [explain(path, settings, manifest) for path in args["FILE"]]
    if args["--json"]:
        _say(json.dumps(reports, indent=2))
    else:
        for number, report in enumerate(reports):
            _say(*([""] if number else []), *explain_lines(report))
    return EXIT_OK


def _logs(args, paths, settings) -> int:
    from .logfile import tail

    lines = tail(paths.log_file, _number(args, "-n", default=50))
    _say(*(lines or [f"(no log yet at {paths.log_file})"]))
    return EXIT_OK


def _report(args, paths, settings) -> int:
    from .report import write_report

    output = write_report(paths, settings, args["--output"])
    _say(f"Report written to {output}")
    return EXIT_OK


def _schedule(args, paths, settings) -> int:
    from .schedule import cron_recipe, systemd_recipe

    home = args["--home"] or os.environ.get("OORT_SYNC_HOME")
    if args["--launchd"]:
        from .launchagent import recipe

        _say(recipe(home, paths.log_file.parent))
    elif args["--windows"]:
        from .scheduled_task import task_xml

        _say(task_xml(home))
    else:
        _say(cron_recipe(home) if args["--cron"] else systemd_recipe(home))
    return EXIT_OK


def _sandbox(args) -> int:
    from .sandbox import Sandbox

    port = _number(args, "--port", default=8765)
    page_size = _number(args, "--page-size", default=50)
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


class _Verbose:
    """-v without a terminal: one line per file as it is done (stderr)."""

    def planned(self, plan) -> None: ...

    def sent(self, nbytes: int) -> None: ...

    def done(self, item, outcome, reason) -> None:
        from .render import file_line

        _say(file_line(item, outcome, reason), err=True)

    def finish(self) -> None: ...


class _Progress:
    """A one-line progress bar on the terminal (stderr): files, bytes, rate, ETA; with -v,
    each file's outcome printed above it."""

    def __init__(self, verbose: bool = False):
        import threading
        import time

        self.verbose = verbose
        self._clock = time.monotonic
        self._lock = threading.Lock()
        self.start = self._clock()
        self.total_files = self.total_bytes = self.files = self.sent_bytes = 0
        self._drawn = 0.0

    def planned(self, plan) -> None:
        self.total_files, self.total_bytes = len(plan.items), plan.total_bytes
        self.start = self._clock()

    def sent(self, nbytes: int) -> None:
        with self._lock:
            self.sent_bytes += nbytes
            self._draw()

    def done(self, item, outcome, reason) -> None:
        with self._lock:
            self.files += 1
            if self.verbose:
                from .render import file_line

                sys.stderr.write("\r" + file_line(item, outcome, reason).ljust(120) + "\n")
            self._draw(force=True)

    def _draw(self, force: bool = False) -> None:
        from .render import progress_line

        now = self._clock()
        if not self.total_files or (not force and now - self._drawn < 0.2):
            return
        self._drawn = now
        line = progress_line(self.files, self.total_files, self.sent_bytes, self.total_bytes,
                             now - self.start)
        sys.stderr.write("\r" + line[:120].ljust(120))
        sys.stderr.flush()

    def finish(self) -> None:
        if self._drawn:
            sys.stderr.write("\n")
            sys.stderr.flush()


def _ping(url: str | None, suffix: str) -> None:
    if url:
        from .arcsecond.client import ping

        ping(url, suffix)


COMMANDS = {
    "login": _login,
    "logout": _logout,
    "telescopes": _telescopes,
    "watch": _watch,
    "unwatch": _unwatch,
    "run": _run,
    "explain": _explain,
    "status": _status,
    "logs": _logs,
    "report": _report,
    "schedule": _schedule,
}
