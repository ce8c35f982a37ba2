"""The usage text docopt parses: the command line's one definition, shown verbatim in the
README (a test checks it) and cut into per-command help by usage.py."""

TEXT = """oort-sync: upload FITS and XISF files from watched folders to Arcsecond.io.

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
                [--rebuild-manifest] [--ping-url=URL] [--notify-url=URL]
                [--bwlimit=RATE] [-q | -v] [--json] [options]
  oort-sync explain FILE... [--json] [options]
  oort-sync nights [--since=DATE] [--json] [options]
  oort-sync doctor [--json] [options]
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
  nights     What each night got: frames per target, filter and type, exposure, links.
  doctor     Check the setup (key, server clock, folders, telescopes, lock, schedule).
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
  --jobs=N             Uploads in flight, fixed (default: jobs in the config, else
                       adaptive: up to 16, fewer when the server throttles).
  --min-age=SECONDS    Files modified more recently wait for a later run
                       (default: min_age in the config, else 60).
  --retry-failed       Retry files that failed for a permanent reason.
  --rebuild-manifest   Keep a damaged manifest aside and start a new one.
  --ping-url=URL       Healthchecks-style URL pinged at start, success and failure.
  --notify-url=URL     POST a JSON message (Slack/Mattermost-ready) when runs start
                       failing and when they work again (default: notify_url).
  --bwlimit=RATE       Cap the total upload rate: 512k, 4M, off, or a timetable
                       "08:00,off 19:00,1M 23:30,off" (default: bwlimit in the config).
  -q, --quiet          Print only errors.
  -v, --verbose        Print every file outcome and a summary.
  --json               Machine-readable output on stdout.
  --since=DATE         Only the nights from DATE (YYYY-MM-DD) on.
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
