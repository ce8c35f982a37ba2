"""The watch list as `watch` changes it: new folders added, and the settings of folders
already watched changed (`watch FOLDER --timezone=ZONE` on a watched folder).

An option given replaces the folder's setting; an option not given keeps it; an empty
value (`--timezone=`, `--tags=`) clears it. The change is shown before it is saved.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import NamedTuple

from oort_lib import folders
from oort_lib.errors import AuthError, ConfigError
from oort_lib.state.config import Folder, Paths, Settings, with_folders
from oort_lib.state.credentials import Credentials


class Options(NamedTuple):
    """The folder options of a `watch` command line; None (or ()) when not given."""

    organisation: str | None = None
    telescope: str | None = None
    timezone: str | None = None  # "" clears the folder's
    reduced: bool = False  # only ever turns it on (unwatch, then watch, turns it off)
    tags: tuple[str, ...] | None = None  # () clears them
    classify: str | None = None
    exclude: tuple[str, ...] = ()


@dataclass
class Change:
    """What `watch` would do: folders added, folders whose settings change, folders
    already watched as asked. `settings` is what would be saved."""

    settings: Settings
    added: list[folders.WatchProposal] = field(default_factory=list)
    # (proposal of the folder as it would be, lines saying what changes)
    changed: list[tuple[folders.WatchProposal, list[str]]] = field(default_factory=list)
    same: list[str] = field(default_factory=list)

    @property
    def nothing(self) -> bool:
        return not self.added and not self.changed

    def summary(self) -> list[str]:
        lines: list[str] = []
        for proposal in self.added:
            lines += [*([""] if lines else []), *proposal.summary()]
        for proposal, what in self.changed:
            moved = any(line.startswith("organisation:") for line in what)
            lines += [*([""] if lines else []), *proposal.summary(),
                      f"Changes to the watched folder {proposal.folders[0].path}:",
                      *(f"  {line}" for line in what), _MOVED if moved else _CHANGED]
        lines += [f"{path} is already watched with these settings: nothing to change."
                  for path in self.same]
        return lines

    def question(self) -> str:
        if not self.changed:
            return "Watch these folders?"
        return "Apply these changes?" if not self.added else (
            "Watch the new folders and apply these changes?")

    def done(self) -> list[str]:
        lines = [f"Changed the settings of {len(self.changed)} watched folder(s)."
                 ] if self.changed else []
        if self.added:
            count = sum(len(p.folders) for p in self.added)
            lines.append(f"Watching {count} folder(s). Schedule `oort-sync run` (see "
                         "`oort-sync schedule --cron`), or run it now.")
        return lines


_CHANGED = ("Files already uploaded stay as they are on the server; the new settings "
            "apply to what is uploaded from now on.")
# Another organisation is another destination (state/destination.py): nothing counts as
# uploaded there yet.
_MOVED = ("The folder's files go to the new destination from the next run, those already "
          "uploaded elsewhere included; what is there stays.")


def change(settings: Settings, creds: Credentials | None, paths: Iterable[str],
           options: Options, *, client=None, generation: str | None = None) -> Change:
    """The change `watch` would make for `paths` with `options` (see folders.propose for
    `client` and `generation`).

    Raises ConfigError (a folder given twice, a bad pattern, and all that folders.propose
    raises) and AuthError (folders.propose).
    """
    from oort_lib.local.exclude import check

    exclude = check(options.exclude) if options.exclude else ()
    fresh, watched = _split(settings, paths)
    result = Change(settings)
    if fresh:
        proposal = _propose(settings, creds, fresh, options, client, generation)
        if exclude:
            proposal.folders = [f._replace(exclude=exclude) for f in proposal.folders]
            proposal.notes.append("Excluded: " + "  ".join(exclude)
                                  + " (excluded folders are not entered)")
        result.added.append(proposal)
    updated = {}
    for old in watched:
        others = with_folders(settings, tuple(f for f in settings.folders if f is not old))
        merged = Options(
            organisation=options.organisation or old.organisation,
            telescope=options.telescope or old.telescope,
            timezone=old.timezone if options.timezone is None else options.timezone,
            reduced=options.reduced or old.reduced,
            tags=old.tags if options.tags is None else options.tags,
            classify=options.classify or old.classify)
        proposal = _propose(others, creds, [old.path], merged, client, generation)
        # Its path as the config has it: the section is edited in place, comments kept.
        new = proposal.folders[0]._replace(path=old.path, exclude=exclude or old.exclude)
        if client is None and new.telescope == old.telescope:
            # Not asked to the server this time: what it said at the last `watch` stands.
            new = new._replace(telescope_name=old.telescope_name, longitude=old.longitude,
                               site_timezone=old.site_timezone)
            proposal.telescope_name, proposal.longitude = old.telescope_name, old.longitude
        proposal.folders = [new]
        what = differences(old, new)
        if what:
            result.changed.append((proposal, what))
            updated[old.path] = new
        else:
            result.same.append(old.path)
    kept = tuple(updated.get(f.path, f) for f in settings.folders)
    result.settings = with_folders(settings, kept + tuple(
        f for proposal in result.added for f in proposal.folders))
    return result


def checked(paths: Paths, settings: Settings, watched: Iterable[str], options: Options
            ) -> Change:
    """`watch`: the change for the folders `watched`, checked with the server when
    someone is logged in (a personal folder without telescope on a 2021 server needs
    no question asked).

    Raises AuthError when the options name an organisation or a telescope and nobody is
    logged in, and what detect.generation_for and change() raise.
    """
    from oort_lib.arcsecond.client import Client
    from oort_lib.arcsecond.detect import generation_for
    from oort_lib.state.credentials import load

    creds = load(paths.credentials_file)
    remote = bool(options.organisation or options.telescope)
    if remote and creds is None:
        raise AuthError("Not logged in: run `oort-sync login` first.")
    client = generation = None
    if creds is not None:
        client = Client.from_settings(settings, creds.key)
        generation = generation_for(client, settings, creds)
        if not remote and generation == "2021":
            client = None  # a personal folder without telescope: nothing to ask
    return change(settings, creds, watched, options, client=client, generation=generation)


def _propose(settings, creds, paths, options: Options, client, generation):
    return folders.propose(settings, creds, paths, organisation=options.organisation,
                           telescope=options.telescope, timezone=options.timezone or None,
                           client=client, generation=generation, reduced=options.reduced,
                           tags=options.tags or (), classify=options.classify)


def _split(settings: Settings, paths: Iterable[str]) -> tuple[list[str], list[Folder]]:
    """(the paths not watched yet, the watched folders named). A watched folder is named
    by its path as the config has it, or by a path that resolves to it. Raises
    ConfigError for a folder that does not exist or is named twice."""
    from oort_lib.host import path_key

    by_key = {path_key(f.path): f for f in settings.folders}
    fresh: list[str] = []
    watched: list[Folder] = []
    for given in paths:
        full = folders.normalise(given)
        found = by_key.get(path_key(full)) or by_key.get(path_key(os.path.realpath(full)))
        if found is None:
            fresh.append(given)
        elif found in watched:
            raise ConfigError(f"{given} is named twice.")
        else:
            watched.append(found)
    return fresh, watched


_LABELS = (("organisation", "organisation"), ("telescope", "telescope"),
           ("timezone", "time zone"), ("reduced", "reduced data"), ("tags", "tags"),
           ("classify", "calibrations by"), ("exclude", "excluded"))


def differences(old: Folder, new: Folder) -> list[str]:
    """What a person must know changes between two settings of a folder, one line each
    ("time zone: none → Europe/Paris"); [] when nothing does."""
    lines = []
    for key, label in _LABELS:
        before, after = getattr(old, key), getattr(new, key)
        if before != after:
            lines.append(f"{label}: {_shown(old, key, before)} → {_shown(new, key, after)}")
    return lines


def _shown(folder: Folder, key: str, value) -> str:
    if key == "telescope" and value:
        return f"{folder.telescope_name} ({value})" if folder.telescope_name else value
    if key == "reduced":
        return "yes" if value else "no"
    if key in ("tags", "exclude"):
        return ", ".join(value) if value else "none"
    if key == "classify":
        return "the header's frame type" if value == "header" else "folder name"
    return value or "none"
