"""`doctor`'s checks of the server (doctor.py makes the local ones): the credentials
verify as a run would speak to the server (its API generation as remembered at login);
the server's clock, read from its answers' `Date` header, is within 5 minutes of this
machine's; each organisation of the watched folders exists and this account may upload
there; each telescope exists, and on a 2026 server has a site.

Nothing is written on the server: GETs, and on a 2026 server the two verifications
(`POST /auth/key/verify/`, `POST /auth/key/verify-organisation/`) that only answer.
"""

from __future__ import annotations

from collections.abc import Iterable

from oort_lib.errors import (
    EXIT_AUTH,
    EXIT_UNREACHABLE,
    AuthError,
    ConfigError,
    NotFound,
    OortError,
    ServerUnreachable,
)
from oort_lib.state.config import Folder, Paths, Settings
from oort_lib.views.checkup import Check, ok, problem, warning

CLOCK_LIMIT = 300.0  # seconds: beyond this the noon rule and min_age go wrong


LOGIN = ("Log in again with a valid key: oort-sync login (the upload key is on the settings "
         "page of your Arcsecond account).")


def server_checks(paths: Paths, settings: Settings) -> list[Check]:
    """The credentials verify; then the server's clock, the organisations and the
    telescopes of the watched folders. Raises nothing but a bug's exceptions."""
    from oort_lib.arcsecond.client import Client
    from oort_lib.state import credentials

    name = "credentials"
    try:
        creds = credentials.load(paths.credentials_file)
    except OortError as exc:  # a damaged file, a key that cannot be one (never sent)
        return [problem(name, exc.message, LOGIN)]
    if creds is None:
        return [problem(name, "nobody is logged in.", "Log in: oort-sync login")]
    note = credentials.permission_warning(paths.credentials_file)
    checks = [warning("credentials file", note, "Make it yours only, as said.")] if note else []
    try:
        client = Client.from_settings(settings, creds.key)
    except ConfigError as exc:
        return [*checks, problem("server", exc.message, "Fix `api` in the config file "
                                 f"({paths.config_file}), or log in again with --api=URL.")]
    try:
        try:
            generation, roles = _verify(client, settings, creds)
        except OortError as exc:
            code = exc.exit_code if exc.exit_code in (EXIT_AUTH, EXIT_UNREACHABLE) else 0
            # A refusal is an answer, with the server's clock in it.
            answered = not isinstance(exc, ServerUnreachable)
            return [*checks, problem(name, exc.message, _fix(exc, creds), code),
                    *(_clock(client) if answered else [])]
        who = creds.username or "the upload key"
        source = f", key from {creds.source}" if creds.source != "file" else ""
        checks.append(ok(name, f"{who} verified by {client.base} (API generation "
                               f"{generation}{source})."))
        checks += _clock(client)
        checks += [_guarded(f"organisation {org}", _organisation, client, creds, generation,
                            roles, org) for org in _organisations(settings.folders)]
        checks += _telescopes(client, settings.folders, generation)
        return checks
    finally:
        client.close()


def _fix(exc: OortError, creds) -> str:
    """What to do when the key could not be verified."""
    if isinstance(exc, AuthError):
        return LOGIN + (f" {creds.source} overrides the stored key: fix it or unset it."
                        if creds.source != "file" else "")
    if isinstance(exc, ConfigError):
        return ("Log in again: oort-sync login --username=NAME (and --api=URL for another "
                "server).")
    return ("Check the network and the server's address (`api` in the config; `oort-sync "
            "status` shows it); try again later if the server is down.")


def _verify(client, settings: Settings, creds) -> tuple[str, dict | None]:
    """(the generation a run speaks, {organisation: role} on a 2021 server, None where
    roles are not known) once the server accepted the key: as `login` verifies it.
    Raises AuthError, ConfigError, the client's errors (a 5xx through every retry as a
    ServerProblem)."""
    from urllib.parse import quote

    from oort_lib.arcsecond import gen2021
    from oort_lib.arcsecond.detect import generation_for
    from oort_lib.arcsecond.gen2026 import verify_key
    from oort_lib.errors import PermanentError, TransientError, server_problem

    try:
        generation = generation_for(client, settings, creds)
        if generation == "2026":
            if not creds.username:
                raise ConfigError("Today's Arcsecond (2026) checks the username with the key, "
                                  "and none is stored: log in again with --username=NAME.")
            verify_key(client, creds.username, creds.key)
            return generation, {}
        if creds.username:
            return generation, gen2021.memberships(client.request(
                "GET", f"/profiles/{quote(creds.username, safe='')}/"))
        client.telescopes(None)  # any authenticated read proves the key
        return generation, None
    except (PermanentError, TransientError) as exc:
        raise server_problem(exc, "The key could not be verified") from None


def _clock(client) -> list[Check]:
    """The server's clock (its last answer's `Date`) against this machine's."""
    from oort_lib.run.outage import duration

    name = "server clock"
    offset = client.clock_offset()
    if offset is None:
        return [warning(name, "the server's answers carry no Date header: the clocks "
                        "could not be compared.", "Nothing to do if the runs' nights and "
                        "min_age look right (`oort-sync explain FILE`).")]
    ahead = "ahead of" if offset > 0 else "behind"
    if abs(offset) <= CLOCK_LIMIT:
        return [ok(name, f"within {duration(round(abs(offset)))} of this machine's.")]
    apart = duration(round(abs(offset) / 60) * 60)  # to the minute: seconds are blurred
    return [problem(
        name, f"{apart} {ahead} this machine's (its Date header); nights (local noon) and "
        "min_age need both clocks right within 5 minutes.",
        "One of the two clocks is wrong: compare this machine's with a reliable clock "
        "(`date -u`, time.is). If it is this one, turn on network time (Linux: "
        "`timedatectl set-ntp true`; macOS: System Settings > General > Date & Time; "
        "Windows: Settings > Time & language > Sync now); if it is the server's "
        "(Arcsecond.local on your network), set that machine's clock.")]


def _organisations(folders: Iterable[Folder]) -> list[str]:
    return sorted({f.organisation for f in folders if f.organisation})


def _guarded(name: str, check, *args) -> Check:
    """`check(*args)`, or the problem its server error is (exit code 3 or 4 kept)."""
    try:
        return check(*args)
    except OortError as exc:
        code = exc.exit_code if exc.exit_code in (EXIT_AUTH, EXIT_UNREACHABLE) else 0
        return problem(name, exc.message, "Try again later; if it lasts, see "
                       "`oort-sync logs` and tell whoever runs the server.", code)


def _organisation(client, creds, generation: str, roles: dict | None, org: str) -> Check:
    """The organisation exists and this account may upload there."""
    from oort_lib.folders import WRITER_ROLES

    name = f"organisation {org}"
    fix = (f"Ask an admin of {org} to make {creds.username or 'your account'} a member "
           "who may upload, or watch its folders for your own account (`oort-sync watch "
           "FOLDER` without -o).")
    gone = problem(name, f"{org} does not exist on the server.", "Check the subdomain (on "
                   "Arcsecond.local it is `local`) and watch the folders again with the "
                   "right -o.")
    if generation == "2026":
        from oort_lib.arcsecond.gen2026 import verify_organisation

        try:
            verify_organisation(client, creds.username or "", creds.key, org)
        except NotFound:
            return gone
        except AuthError as exc:
            return problem(name, exc.message, fix)
        return ok(name, f"{creds.username} may upload there (verified by the server).")
    try:
        client.organisation(org)
    except NotFound:
        return gone
    if roles is None:
        return warning(name, "your role there is unknown (no username is stored with the "
                       "key): the server checks it at the first upload.",
                       "Log in with --username=NAME to have it checked here.")
    role = roles.get(org)
    if role is None:
        return problem(name, f"{creds.username} is not a member of {org}.", fix)
    if role not in WRITER_ROLES:
        return problem(name, f"{creds.username} is a {role} of {org}: that role may read "
                       "but not upload.", fix)
    return ok(name, f"{creds.username} is a {role} there, and may upload.")


def _telescopes(client, folders: Iterable[Folder], generation: str) -> list[Check]:
    """Each telescope of the watched folders exists (2026: has a site, and a folder of
    that generation has one)."""
    checks: list[Check] = []
    seen: dict[tuple, list[Folder]] = {}
    for folder in folders:
        if folder.telescope:
            seen.setdefault((folder.organisation, folder.telescope), []).append(folder)
        elif generation == "2026":
            checks.append(problem(f"folder {folder.path}", "no telescope: today's Arcsecond "
                                  "(2026) attaches every dataset to one.",
                                  f"oort-sync watch {folder.path} -t TELESCOPE (`oort-sync "
                                  "telescopes` lists them)."))
    for (org, uuid), watched in seen.items():
        checks.append(_guarded(f"telescope {uuid}", _telescope, client, org, uuid, watched,
                               generation))
    return checks


def _telescope(client, org: str | None, uuid: str, watched: list[Folder],
               generation: str) -> Check:
    from oort_lib.local.site import Site, site_of
    from oort_lib.telescopes import display_name, find_telescope

    paths = " ".join(f.path for f in watched)
    where = f"organisation {org}" if org else "your account"
    try:
        found = find_telescope(client, org, uuid)
    except ConfigError:
        return problem(f"telescope {uuid}", f"not found in {where}.",
                       f"`oort-sync telescopes{f' -o {org}' if org else ''}` lists them; "
                       f"watch the folder again with the right -t: oort-sync watch {paths} "
                       "-t TELESCOPE")
    name = f"telescope {display_name(found) or uuid}"
    if generation != "2026":
        return ok(name, f"{uuid} exists in {where}.")
    site = site_of(found)
    if not site.known:
        return problem(name, f"{uuid} has no site on Arcsecond: nights follow the header "
                       "clock (the server dates nights by the telescope's site).",
                       "Set its site (longitude, or time zone) on Arcsecond, then "
                       f"oort-sync watch {paths} again.")
    if any(Site(f.longitude, f.site_timezone) != site for f in watched):
        return warning(name, f"its site on Arcsecond ({site.describe()}) is not the one "
                       "saved at `watch`: the dry run and `explain` show other nights than "
                       "the server gives.", f"oort-sync watch {paths} (again) to save it.")
    return ok(name, f"{uuid} exists; site: {site.describe()} (the server dates nights by it).")
