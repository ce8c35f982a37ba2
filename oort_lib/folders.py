"""The watched folders: checking, adding and removing them."""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field

from .config import Folder, Settings, with_folders
from .credentials import Credentials
from .errors import AuthError, ConfigError, NotFound

WRITER_ROLES = ("superadmin", "admin", "member")


def normalise(path: str) -> str:
    """Absolute, symlink-free path of an existing, readable folder.

    Raises ConfigError saying what is wrong with it.
    """
    full = os.path.realpath(os.path.expanduser(path))
    if not os.path.exists(full):
        raise ConfigError(f"{path}: no such folder.")
    if not os.path.isdir(full):
        raise ConfigError(f"{path}: not a folder.")
    if not os.access(full, os.R_OK | os.X_OK):
        raise ConfigError(f"{path}: not readable by this user; fix its permissions.")
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
    from .host import is_inside as _inside
    from .host import path_key

    new = list(new)
    seen = list(existing)
    for path in new:
        for other in seen:
            if path_key(path) == path_key(other):
                raise ConfigError(f"{path} is already watched.")
            if _inside(path, other):
                raise ConfigError(f"{path} is inside the watched folder {other}; "
                                  "its files are already synced from there.")
            if _inside(other, path):
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
    notes: list[str] = field(default_factory=list)

    def summary(self) -> list[str]:
        lines = [f"Account: {self.account}"]
        if self.organisation:
            lines.append(
                f"Organisation: {self.organisation_name or self.organisation} "
                f"({self.organisation}), role: {self.role or 'unknown'}"
            )
        else:
            lines.append("Uploads go to the personal account.")
        if self.folders and self.folders[0].telescope:
            lines.append(f"Telescope: {self.telescope_name} ({self.folders[0].telescope})")
        else:
            lines.append("Telescope: none")
        lines.append(
            "Night boundary: local noon, header dates "
            + (f"in UTC converted to {self.timezone}" if self.timezone else "taken as local time")
        )
        lines.extend(f"Folder: {f.path}" for f in self.folders)
        lines.extend(self.notes)
        return lines


def propose(
    settings: Settings,
    creds: Credentials | None,
    paths: Iterable[str],
    *,
    organisation: str | None = None,
    telescope: str | None = None,
    timezone: str | None = None,
    client=None,
) -> WatchProposal:
    """Check everything about new watched folders, locally then on the server.

    `client` is an api.Client; without one only the local checks run (tests, offline).
    Raises ConfigError (bad folder, nesting, zone, unknown organisation or telescope,
    missing telescope: the message lists the organisation's telescopes) or AuthError
    (not logged in, not a member, guest role).
    """
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
                             timezone=timezone)
    telescope_uuid = telescope_name = None
    if organisation or telescope:
        if creds is None and client is not None:
            raise AuthError("Not logged in: run `oort-sync login` first.")
    if organisation:
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
            names = []
            if client is not None:
                names = [f"  {t.get('uuid')}  {t.get('name')}"
                         + (f" (alias {t['alias']})" if t.get("alias") else "")
                         for t in client.telescopes(organisation)]
            raise ConfigError(
                f"Uploads to organisation {organisation} need a telescope: add -t UUID_OR_ALIAS."
                + ("\nIts telescopes:\n" + "\n".join(names) if names else "")
            )
    if telescope:
        if client is not None:
            try:
                found = client.telescope(organisation, telescope)
            except NotFound:
                where = f"organisation {organisation}" if organisation else "your account"
                raise ConfigError(f"Telescope {telescope!r} not found in {where}.") from None
            telescope_uuid, telescope_name = found["uuid"], found.get("name")
        else:
            telescope_uuid = telescope
    proposal.telescope_name = telescope_name
    proposal.folders = [
        Folder(path=p, organisation=organisation, telescope=telescope_uuid,
               telescope_name=telescope_name, timezone=timezone)
        for p in full
    ]
    return proposal


def add(settings: Settings, proposal: WatchProposal) -> Settings:
    return with_folders(settings, tuple(settings.folders) + tuple(proposal.folders))


def remove(settings: Settings, paths: Iterable[str]) -> tuple[Settings, list[str]]:
    """Settings without the named folders (which need not exist any more).

    Raises ConfigError when a name is not watched. The manifest rows are kept: watching
    the folder again later re-uploads nothing.
    """
    from .host import path_key

    watched = {path_key(f.path): f for f in settings.folders}
    removed = []
    for name in paths:
        candidates = {os.path.realpath(os.path.expanduser(name)),
                      os.path.abspath(os.path.expanduser(name))}
        match = next((path_key(c) for c in candidates if path_key(c) in watched), None)
        if match is None:
            raise ConfigError(f"{name} is not a watched folder.")
        removed.append(watched.pop(match).path)
    return with_folders(settings, tuple(watched.values())), removed
