"""The watched folders: checking, adding and removing them."""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field

from oort_lib.errors import AuthError, ConfigError, NotFound
from oort_lib.escape import escaped
from oort_lib.local.localtime import folder_clock
from oort_lib.local.site import site_of
from oort_lib.state.config import Folder, Settings, with_folders
from oort_lib.state.credentials import Credentials
from oort_lib.telescopes import display_name, find_telescope, site_longitude, telescope_listing

WRITER_ROLES = ("owner", "superadmin", "admin", "member")


def normalise(path: str) -> str:
    """Absolute path of an existing, readable folder, symlinks kept: a watched
    `nights/current` that is re-pointed every night is followed again by every run.

    Raises ConfigError saying what is wrong with it.
    """
    full = os.path.abspath(os.path.expanduser(path))
    real = os.path.realpath(full)
    if not os.path.exists(real):
        raise ConfigError(f"{path}: no such folder.")
    if not os.path.isdir(real):
        raise ConfigError(f"{path}: not a folder.")
    if not os.access(real, os.R_OK | os.X_OK):
        raise ConfigError(f"{path}: not readable by this user; fix its permissions.")
    try:
        full.encode("utf-8")
    except UnicodeEncodeError:
        # The config file is UTF-8: a name in another encoding (an old Latin-1 disk)
        # cannot be written there. Files with such names inside the folder are fine.
        shown = full.encode("utf-8", "backslashreplace").decode("utf-8")
        raise ConfigError(f"{shown}: the folder's name is not valid UTF-8; rename it (or "
                          "watch a folder above it, whose name is).") from None
    return full


def check_timezone(name: str | None) -> str | None:
    """Raises ConfigError unless `name` is an IANA time zone (e.g. America/Santiago)."""
    if not name:
        return None
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(
            f"--timezone={name}: not an IANA time zone name (e.g. Europe/Paris, "
            "America/Santiago, UTC)."
        ) from None
    return name


def check_nesting(new: Iterable[str], existing: Iterable[str]) -> None:
    """Raises ConfigError when folders repeat, or one would contain another."""
    from oort_lib.host import is_inside as _inside
    from oort_lib.host import path_key

    new = list(new)
    seen = list(existing)
    for path in new:
        real = os.path.realpath(path)  # where the files are: symlinks and all
        for other in seen:
            other_real = os.path.realpath(other)
            if path_key(real) == path_key(other_real):
                raise ConfigError(f"{path} is already watched"
                                  + ("." if path_key(path) == path_key(other)
                                     else f" (as {other})."))
            if _inside(real, other_real):
                raise ConfigError(f"{path} is inside the watched folder {other}; "
                                  "its files are already synced from there.")
            if _inside(other_real, real):
                raise ConfigError(f"{path} contains the watched folder {other}; "
                                  f"unwatch {other} first, or watch a separate folder.")
        seen.append(path)


@dataclass
class WatchProposal:
    """What `watch` would save, with the facts the summary shows before confirmation."""

    folders: list[Folder]
    account: str
    organisation: str | None = None
    organisation_name: str | None = None
    role: str | None = None
    telescope_name: str | None = None
    timezone: str | None = None
    generation: str | None = None
    api: str | None = None
    longitude: float | None = None  # the telescope's, from the server
    site_timezone: str | None = None  # its site's time zone, if the server gives one
    notes: list[str] = field(default_factory=list)
    classify: str = "folder"

    def summary(self) -> list[str]:
        lines = [f"Account: {self.account}"]
        if self.api:
            lines.append(f"Server: {self.api}" + (
                f" (API generation {self.generation})" if self.generation else ""))
        if self.organisation:
            lines.append(
                f"Organisation: {self.organisation_name or self.organisation} "
                f"({self.organisation}), role: {self.role or 'unknown'}"
            )
        else:
            lines.append("Uploads go to the personal account.")
        if self.folders and self.folders[0].telescope:
            lines.append(f"Telescope: {self.telescope_name} ({self.folders[0].telescope})")
            if self.longitude is not None:
                lines.append(f"Telescope site: longitude {self.longitude:g}° (local time of "
                             "headers without a time zone, DATE-LOC or longitude)")
        else:
            lines.append("Telescope: none")
        lines.append(
            "Night boundary: local noon, header dates "
            + (f"in UTC converted to {self.timezone}" if self.timezone else
               "placed by DATE-LOC or the site longitude when the header has one, else "
               + (f"by {folder_clock(None, self.longitude)}" if self.longitude is not None
                  else "taken as local time (N.I.N.A., Ekos, SharpCap and MaxIm DL write "
                  "UTC: if yours does, add --timezone=ZONE)"))
        )
        if self.generation == "2026":  # the server dates nights, not the folder's settings
            lines = [line for line in lines
                     if not line.startswith(("Telescope site:", "Night boundary:"))]
            lines += self._server_nights()
        lines.append(
            "Calibrations: "
            + ("by the header's IMAGETYP/FRAME/OBSTYPE, else by folder name"
               if self.classify == "header"
               else "by folder name (bias, dark, flat, calib)")
        )
        lines.extend(f"Folder: {f.path}" for f in self.folders)
        if self.folders and self.folders[0].reduced:
            lines.append("Files are reduced data (is_raw = False).")
        if self.folders and self.folders[0].tags:
            lines.append("Tags: " + ", ".join(self.folders[0].tags))
        lines.extend(self.notes)
        return [escaped(line) for line in lines]  # the server's names: escape.py

    def _server_nights(self) -> list[str]:
        from oort_lib.local.site import Site, nights_lines

        if not (self.folders and self.folders[0].telescope):
            return []  # refused before this is shown: a 2026 folder needs a telescope
        return nights_lines(Site(self.longitude, self.site_timezone),
                            telescope=self.telescope_name or self.folders[0].telescope,
                            timezone=self.timezone)


def propose(
    settings: Settings,
    creds: Credentials | None,
    paths: Iterable[str],
    *,
    organisation: str | None = None,
    telescope: str | None = None,
    timezone: str | None = None,
    client=None,
    generation: str | None = None,
    reduced: bool = False,
    tags: tuple[str, ...] = (),
    classify: str | None = None,
) -> WatchProposal:
    """Check everything about new watched folders, locally then on the server.

    `client` is an arcsecond Client; without one only the local checks run (tests,
    offline). `generation` is the server's API generation: in 2026 every folder needs a
    telescope and the membership is checked by the server's verify-organisation.
    Raises ConfigError (bad folder, nesting, zone, unknown organisation or telescope,
    missing telescope: the message lists the organisation's telescopes) or AuthError
    (not logged in, not a member, guest role). `classify` is "folder" (default) or
    "header" (ConfigError otherwise).
    """
    classify = classify or "folder"
    if classify not in ("folder", "header"):
        raise ConfigError(f"--classify={classify}: use folder or header.")
    full = [normalise(p) for p in paths]
    check_nesting(full, [f.path for f in settings.folders])
    timezone = check_timezone(timezone)
    if creds is None:
        account = "not logged in yet (run `oort-sync login` before `oort-sync run`)"
    else:
        account = creds.username or "logged in with an upload key"
        if creds.source != "file":
            account += f" (key from {creds.source})"
    proposal = WatchProposal(folders=[], account=account, organisation=organisation,
                             timezone=timezone, generation=generation,
                             api=client.base if client is not None else None,
                             classify=classify)
    telescope_uuid = telescope_name = None
    if organisation or telescope:
        if creds is None and client is not None:
            raise AuthError("Not logged in: run `oort-sync login` first.")
    if generation == "2026" and client is not None:
        telescope_uuid, telescope_name = _check_2026(client, creds, organisation, telescope,
                                                     proposal)
        telescope = None  # checked
    elif organisation:
        role = (creds.memberships or {}).get(organisation) if creds else None
        proposal.role = role
        if client is not None:
            try:
                org = client.organisation(organisation)
            except NotFound:
                raise ConfigError(f"Organisation {organisation!r} does not exist "
                                  "(check the subdomain).") from None
            proposal.organisation_name = org.get("name")
        if creds and creds.memberships and role is None:
            raise AuthError(f"{creds.username} is not a member of {organisation}.")
        if role is not None and role not in WRITER_ROLES:
            raise AuthError(f"{creds.username} is a {role} of {organisation}: "
                            "that role may read but not upload.")
        if role is None:
            proposal.notes.append("Role unknown (key from the environment): the server "
                                  "will check it at the first upload.")
        if not telescope:
            raise ConfigError(
                f"Uploads to organisation {organisation} need a telescope: add -t UUID_OR_ALIAS."
                + ("\n" + telescope_listing(client, organisation) if client is not None else "")
            )
    if telescope:
        if client is not None:
            found = find_telescope(client, organisation, telescope)
            telescope_uuid, telescope_name = str(found["uuid"]), display_name(found)
            proposal.longitude = site_longitude(found)
        else:
            telescope_uuid = telescope
    proposal.telescope_name = telescope_name
    if creds is None and not telescope_uuid:
        proposal.notes.append(
            "Note: today's Arcsecond needs a telescope for every folder. Once logged in, "
            "`oort-sync telescopes` lists yours; then watch the folder again with -t UUID.")
    proposal.folders = [
        Folder(path=p, organisation=organisation, telescope=telescope_uuid,
               telescope_name=telescope_name, timezone=timezone, reduced=reduced,
               tags=tuple(tags), classify=classify, longitude=proposal.longitude,
               site_timezone=proposal.site_timezone)
        for p in full
    ]
    return proposal


def _check_2026(client, creds: Credentials, organisation: str | None, telescope: str | None,
                proposal: WatchProposal) -> tuple[str, str | None]:
    """The 2026 checks: organisation and membership by the server, a telescope always.

    Returns (telescope uuid, name). Raises ConfigError, AuthError.
    """
    from oort_lib.arcsecond.gen2026 import verify_organisation

    if organisation:
        try:
            org = verify_organisation(client, creds.username or "", creds.key, organisation)
        except NotFound:
            raise ConfigError(f"Organisation {organisation!r} does not exist "
                              "(check the subdomain; on Arcsecond.local it is `local`).") from None
        proposal.organisation_name = org.get("name")
        proposal.role = "may upload (checked by the server)"
    if not telescope:
        where = f"organisation {organisation}" if organisation else "your account"
        raise ConfigError(
            f"Today's Arcsecond attaches every dataset to a telescope: add -t UUID "
            f"(a telescope of {where}).\n" + telescope_listing(client, organisation))
    found = find_telescope(client, organisation, telescope)
    # The site as a 2026 server reads it to date nights (local/site.py).
    proposal.longitude, proposal.site_timezone = site_of(found)
    return str(found["uuid"]), display_name(found)


def add(settings: Settings, proposal: WatchProposal) -> Settings:
    return with_folders(settings, tuple(settings.folders) + tuple(proposal.folders))


def remove(settings: Settings, paths: Iterable[str]) -> tuple[Settings, list[str]]:
    """Settings without the named folders (which need not exist any more).

    Raises ConfigError when a name is not watched. The manifest rows are kept: watching
    the folder again later re-uploads nothing.
    """
    from oort_lib.host import path_key

    watched = list(settings.folders)
    removed = []
    for name in paths:
        given = os.path.expanduser(name)
        keys = {path_key(os.path.abspath(given)), path_key(os.path.realpath(given))}
        # As written first; else where it points (a folder watched through a symlink).
        # Of two sections naming one folder (a hand-edited config), the last goes.
        match = [i for i, f in enumerate(watched) if path_key(f.path) in keys]
        match = match or [i for i, f in enumerate(watched)
                          if path_key(os.path.realpath(f.path)) in keys]
        if not match:
            raise ConfigError(f"{name} is not a watched folder.")
        removed.append(watched.pop(match[-1]).path)
    return with_folders(settings, tuple(watched)), removed
