"""An Oort-Cloud 1.x installation (`~/.oort/config.ini`), read to bring its watched
folders and upload key over (`oort-sync import-oort`: bring_over). Nothing there is ever
written.

Oort 1.x keeps one section per watched folder, named `watch-folder-<hash>` (with a
`-tests` suffix for its test suite's folders, left out here), holding `path`,
`username`, `upload_key`, `subdomain` (the organisation, empty for a personal account),
`role`, `telescope` or `telescope_uuid` (later versions, with `telescope_name` and
`telescope_alias`), `zip` and `api`.
"""

from __future__ import annotations

import configparser
import os
from pathlib import Path
from typing import NamedTuple

from oort_lib.errors import AuthError, ConfigError
from oort_lib.state import credentials
from oort_lib.state.config import Paths, Settings, save_settings
from oort_lib.state.credentials import Credentials

DEFAULT_DIR = "~/.oort"
MAX_BYTES = 1 << 20  # an Oort config of a thousand folders is ~300 kB


class OldFolder(NamedTuple):
    path: str
    organisation: str | None
    telescope: str | None
    telescope_name: str | None
    username: str | None
    upload_key: str | None
    section: str


def config_file(oort_dir: str | None = None) -> Path:
    return Path(os.path.expanduser(oort_dir or DEFAULT_DIR)) / "config.ini"


def read(oort_dir: str | None = None) -> list[OldFolder]:
    """The watched folders of an Oort 1.x config, in file order.

    Raises ConfigError when the file is missing, unreadable or not an INI file, or holds
    no watched folder.
    """
    path = config_file(oort_dir)
    text = _text(path)
    parser = configparser.ConfigParser(interpolation=None)
    try:
        parser.read_string(text, source=str(path))
    except configparser.Error as exc:
        raise ConfigError(f"{path}: not an Oort-Cloud config ({str(exc).splitlines()[0]}).") \
            from None
    folders = []
    for name in parser.sections():
        if not name.startswith("watch-folder-") or name.endswith("-tests"):
            continue
        section = parser[name]
        if not section.get("path", "").strip():
            continue

        def value(*keys: str, section=section) -> str | None:
            for key in keys:
                found = (section.get(key) or "").strip()
                if found and found.lower() != "none":
                    return found
            return None

        folders.append(OldFolder(
            path=section["path"].strip(),
            organisation=value("subdomain", "organisation"),
            telescope=value("telescope_uuid", "telescope"),
            telescope_name=value("telescope_name", "telescope_alias"),
            username=value("username"),
            upload_key=value("upload_key"),
            section=name,
        ))
    if not folders:
        raise ConfigError(f"{path}: no watched folder in it (no [watch-folder-...] section).")
    return folders


def _text(path: Path) -> str:
    """The file's text, a BOM (Windows Notepad) left out. Raises ConfigError when it is
    missing, unreadable, too large, or not a regular file: a FIFO would block the
    command forever, a device (`/dev/zero`) never end."""
    import stat

    try:
        # O_NONBLOCK: opening a FIFO without a writer returns at once, for the check.
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except FileNotFoundError:
        raise ConfigError(f"{path}: no Oort-Cloud 1.x config here (give --oort-dir=DIR, "
                          "the folder holding its config.ini).") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read it ({exc.strerror or exc}).") from None
    with os.fdopen(fd, "rb") as handle:
        try:
            mode = os.fstat(fd).st_mode
            if not stat.S_ISREG(mode):
                kind = ("a folder" if stat.S_ISDIR(mode) else "a FIFO" if stat.S_ISFIFO(mode)
                        else "a device or a socket")
                raise ConfigError(f"{path} is {kind}, not a regular file: give --oort-dir=DIR, "
                                  "the folder holding Oort-Cloud's config.ini.")
            data = handle.read(MAX_BYTES + 1)
        except OSError as exc:
            raise ConfigError(f"{path}: cannot read it ({exc.strerror or exc}).") from None
    if len(data) > MAX_BYTES:
        raise ConfigError(f"{path}: larger than {MAX_BYTES >> 20} MiB, not an Oort-Cloud config.")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: cannot read it ({exc}).") from None


def groups(folders: list[OldFolder]) -> dict[tuple[str | None, str | None], list[OldFolder]]:
    """Folders by (organisation, telescope): `watch` checks one such pair at a time."""
    grouped: dict[tuple[str | None, str | None], list[OldFolder]] = {}
    for folder in folders:
        grouped.setdefault((folder.organisation, folder.telescope), []).append(folder)
    return grouped


def key_of(folders: list[OldFolder]) -> tuple[str | None, str | None]:
    """(username, upload key) Oort 1.x used: the first folder that has a key."""
    for folder in folders:
        if folder.upload_key:
            return folder.username, folder.upload_key
    return (folders[0].username if folders else None), None


class Import(NamedTuple):
    """What `import-oort` would do, shown before it is saved."""

    lines: list[str]  # the Oort config read, the key verified, each folder's summary
    settings: Settings  # the settings with the folders imported
    count: int  # folders imported
    refused: bool  # some folder cannot be imported (said in `lines`)
    login: Credentials | None  # a login made with Oort's key, stored with the settings

    def save(self, paths: Paths) -> None:
        """Raises OSError when the credentials or the config cannot be written."""
        if self.login is not None:
            credentials.save(paths.credentials_file, self.login)
        save_settings(paths, self.settings)


def bring_over(paths: Paths, settings: Settings, oort_dir: str | None = None) -> Import:
    """The folders of the Oort 1.x config in `oort_dir` checked as `watch` checks them,
    one (organisation, telescope) pair at a time; when nobody is logged in, Oort's
    upload key verified with the server. Nothing is saved (Import.save does).

    Raises ConfigError for an Oort config that cannot be read (read()), AuthError when
    nobody is logged in and Oort holds no key, and what account.login_with_key and
    detect.generation_for raise. A folder `watch` would refuse is left out and said.
    """
    from oort_lib import folders
    from oort_lib.account import login_with_key
    from oort_lib.arcsecond.client import Client
    from oort_lib.arcsecond.detect import generation_for

    old = read(oort_dir)
    where = config_file(oort_dir)
    lines = [f"Oort-Cloud 1.x config {where}: {len(old)} watched folder(s) "
             "(nothing there is changed)."]
    creds = credentials.load(paths.credentials_file)
    new_login = None
    if creds is None:
        username, key = key_of(old)
        if key is None:
            raise AuthError("Not logged in, and the Oort 1.x config holds no upload key: "
                            "run `oort-sync login` first.")
        client = Client.from_settings(settings)
        creds = new_login = login_with_key(client, username,
                                           credentials.check_key(key, f"{where}"),
                                           dialect=settings.api_dialect)
        lines.append(f"Upload key of {username or 'the Oort 1.x account'} from {where}: "
                     f"verified with {client.base}.")
    client = Client.from_settings(settings, creds.key)
    generation = generation_for(client, settings, creds)
    current, proposals, left = settings, [], []
    for (organisation, telescope), group in groups(old).items():
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
    return Import(lines, current, len(proposals), bool(left), new_login)
