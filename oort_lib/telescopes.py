"""The telescopes of an account or organisation: finding one, listing them with their
sites, and the name the config keeps (what `watch` and `telescopes` ask the server)."""

from __future__ import annotations

from collections.abc import Iterable

from oort_lib.errors import (
    AuthError,
    ConfigError,
    NotFound,
    PermanentError,
    ServerProblem,
    TransientError,
    server_problem,
)
from oort_lib.escape import escaped
from oort_lib.state.config import Folder, Paths, Settings


def display_name(telescope: dict) -> str | None:
    """The server's name of a telescope as the config keeps it: one line, its control
    characters escaped (a CR would end the line in config.ini, an ESC act on terminals)."""
    name = telescope.get("name")
    return escaped(str(name)) if name else None


def site_longitude(telescope: dict) -> float | None:
    """The telescope's longitude (degrees east) from its `coordinates`, if the server
    gives one (the field's shape is uncertain: an object with `longitude`, or none)."""
    coordinates = telescope.get("coordinates")
    if not isinstance(coordinates, dict):
        return None
    try:
        value = float(coordinates.get("longitude"))
    except (TypeError, ValueError):
        return None
    return value if -180.0 <= value <= 360.0 else None


def find_telescope(client, organisation: str | None, ident: str) -> dict:
    """A telescope by UUID (the server's detail route), else by alias or exact name in
    the list (alias lookup on the server is uncertain in 2026).

    Raises ConfigError when there is no such telescope.
    """
    try:
        return client.telescope(organisation, ident)
    except NotFound:
        pass
    for found in client.telescopes(organisation):
        if ident and ident in (found.get("alias"), found.get("name")):
            return found
    where = f"organisation {organisation}" if organisation else "your account"
    raise ConfigError(f"Telescope {ident!r} not found in {where}.\n"
                      + telescope_listing(client, organisation))


def site_lines(watched: Iterable[Folder]):
    """For telescope_listing on a 2026 server: the lines under each telescope saying
    its site (local/site.py), and the --timezone of its watched folders."""
    from oort_lib.local.site import telescope_lines

    watched = list(watched)
    return lambda t: telescope_lines(t, [(f.path, f.timezone) for f in watched
                                         if f.telescope and f.telescope == str(t.get("uuid"))])


def telescope_listing(client, organisation: str | None, sites=None,
                      account: str | None = None) -> str:
    """The telescopes of an account or organisation, one per line (UUID, name, alias),
    each followed by the lines `sites(telescope)` gives, if given (site_lines).

    Raises ConfigError when the organisation does not exist; AuthError naming `account`
    (the username) when the server refuses it the organisation's list; ServerProblem when the
    server's list cannot be read (a page missing, pages without end, no complete answer);
    and the client's other errors (AuthError, ServerUnreachable...).
    """
    where = f"organisation {organisation}" if organisation else "your account"
    try:
        telescopes = client.telescopes(organisation)
    except NotFound as exc:
        if organisation and not _organisation_exists(client, organisation):
            raise ConfigError(f"Organisation {organisation!r} does not exist (check the "
                              "subdomain; on Arcsecond.local it is `local`).") from None
        # The route exists (the account, or an organisation found): a page went missing.
        raise ServerProblem(f"Telescopes of {where}: the server answered 404 for a page "
                            f"of the list ({exc.message.rstrip('.')}). Try again later.",
                            exc.status) from None
    except AuthError as exc:
        if organisation and exc.status == 403:  # as `watch` says it (propose)
            raise AuthError(f"{account or 'The account of this upload key'} is not a member "
                            f"of {organisation}.", exc.status) from None
        raise
    except (PermanentError, TransientError) as exc:
        raise server_problem(exc, f"Telescopes of {where}") from None
    lines = [escaped(line) for t in telescopes for line in [
        f"  {t.get('uuid')}  {t.get('name')}" + (f" (alias {t['alias']})" if t.get("alias")
                                                 else ""), *(sites(t) if sites else [])]]
    if not lines:
        return f"No telescope in {where} yet: create one on Arcsecond first."
    return f"Telescopes of {where}:\n" + "\n".join(lines)


def _organisation_exists(client, organisation: str) -> bool:
    """Raises the client's errors but NotFound (then False)."""
    try:
        client.organisation(organisation)
    except NotFound:
        return False
    return True


def telescopes(paths: Paths, settings: Settings, organisation: str | None) -> str:
    """`telescopes`: telescope_listing for the account logged in, each telescope with
    its site on a 2026 server (which dates nights by it).

    Raises AuthError when nobody is logged in, and what detect.generation_for and
    telescope_listing raise.
    """
    from oort_lib.arcsecond.client import Client
    from oort_lib.arcsecond.detect import generation_for
    from oort_lib.state.credentials import require

    creds = require(paths.credentials_file)
    client = Client.from_settings(settings, creds.key)
    sites = (site_lines(settings.folders)
             if generation_for(client, settings, creds) == "2026" else None)
    return telescope_listing(client, organisation, sites=sites, account=creds.username)
