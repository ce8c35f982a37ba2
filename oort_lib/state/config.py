"""The INI settings file: the general settings and the watched folders, every value
checked when it is read (a mistake is named by file, line and setting) and only what
changed written back.

Each setting is one row of a table (MAIN_SETTINGS, FOLDER_SETTINGS): how its text is
read and checked (configvalues.py) and how it is written; its default is the record's
(Settings, Folder).
"""

from __future__ import annotations

import configparser
import os
import re
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import NamedTuple

from oort_lib.errors import ConfigError
from oort_lib.state import configvalues
from oort_lib.state.paths import Paths, resolve_paths
from oort_lib.state.tags import parse_tags

# Paths, resolve_paths (paths.py) and parse_tags (tags.py) are read here too: from the
# days they lived here, the commands and the tests know them as config's.
__all__ = ["DEFAULT_API", "FOLDER_SETTINGS", "MAIN", "MAIN_SETTINGS", "Folder",
           "FolderClash", "Paths", "Setting", "Settings", "load_settings", "parse_tags",
           "resolve_paths", "save_settings", "select_folders", "with_api", "with_folders"]

DEFAULT_API = "https://api.arcsecond.io"
MAIN = "oort-sync"  # the section holding general settings


# The records of this module and of the others on the no-change path (paths, credentials,
# lock, plan, sync) are NamedTuples or plain classes, not dataclasses: importing
# dataclasses and building frozen ones cost ~25 ms, a tenth of a cron tick over 20,000
# files (measured).


class Folder(NamedTuple):
    """One watched folder and where its files go."""

    path: str
    organisation: str | None = None
    telescope: str | None = None  # UUID
    telescope_name: str | None = None
    timezone: str | None = None
    reduced: bool = False  # reduced products (is_raw = False in the 2026 generation)
    tags: tuple[str, ...] = ()  # labels sent with each file (2026 generation)
    classify: str = "folder"  # calibrations by "folder" name or by "header" frame type
    # The telescope's site (degrees east) as the server gave it at `watch`: the local time
    # of files whose header has no time zone, DATE-LOC or longitude of its own.
    longitude: float | None = None
    exclude: tuple[str, ...] = ()  # globs relative to the folder (exclude.py)
    # The telescope site's time zone (an IANA name) if the server gave one at `watch`:
    # a 2026 server dates nights by it (local/servernight.py).
    site_timezone: str | None = None

    @property
    def name(self) -> str:
        return os.path.basename(self.path.rstrip(os.sep)) or self.path


class Settings(NamedTuple):
    """General settings; every field can be set in the [oort-sync] section."""

    api: str = DEFAULT_API
    jobs: int | None = None  # None: as many uploads in flight as the server keeps up with
    min_age: float = 60.0
    connect_timeout: float = 10.0
    read_timeout: float = 60.0
    retries: int = 4
    backoff_base: float = 0.5
    backoff_max: float = 30.0
    retry_delay: float = 60.0
    # A file that ends before its structure does waits this long after its last change
    # (still being written?) before it is reported as a problem (planner._not_whole).
    partial_wait: float = 86400.0
    log_max_bytes: int = 1_000_000
    log_backups: int = 3
    ping_url: str | None = None
    # Where a failing run and the first one that succeeds again are told (views/notify.py).
    notify_url: str | None = None
    api_dialect: str = "auto"  # auto | 2021 | 2026: which API generation to speak
    allow_http: bool = False  # plain http:// to a LAN server (Arcsecond.local)
    bwlimit: str | None = None  # total upload rate, or a timetable (state/rates.py)
    upload_order: str = "newest"  # newest | oldest: which night of a backlog goes first
    folders: tuple[Folder, ...] = ()


# --- the table of the settings ---------------------------------------------------------


class Setting(NamedTuple):
    """One key of the file: how its text is read and checked, and how it is written."""

    read: Callable[[str, str], object]  # (text, key) -> value (configvalues.py)
    write: Callable = str  # value -> text; None: not written (nor is a default, or None)
    always: bool = False  # written even at its default (the server's address)


MAIN_SETTINGS: dict[str, Setting] = {
    "api": Setting(configvalues.address, always=True),
    "jobs": Setting(configvalues.number(int, 1, 64)),
    "min_age": Setting(configvalues.number(float, 0, 10**7)),
    "connect_timeout": Setting(configvalues.number(float, 0.1, 3600)),
    "read_timeout": Setting(configvalues.number(float, 0.1, 3600)),
    "retries": Setting(configvalues.number(int, 0, 50)),
    "backoff_base": Setting(configvalues.number(float, 0, 600)),
    "backoff_max": Setting(configvalues.number(float, 0, 3600)),
    "retry_delay": Setting(configvalues.number(float, 0, 86400)),
    "partial_wait": Setting(configvalues.number(float, 0, 10**8)),
    "log_max_bytes": Setting(configvalues.number(int, 10_000, 10**10)),
    "log_backups": Setting(configvalues.number(int, 0, 100)),
    "ping_url": Setting(configvalues.text, configvalues.show_text),
    "notify_url": Setting(configvalues.web_address, configvalues.show_text),
    "api_dialect": Setting(configvalues.dialect),
    "allow_http": Setting(configvalues.flag, configvalues.show_flag),
    "bwlimit": Setting(configvalues.bwlimit),
    "upload_order": Setting(configvalues.upload_order),
}
FOLDER_SETTINGS: dict[str, Setting] = {
    "path": Setting(configvalues.folder_path),  # written as the section's first line
    "organisation": Setting(configvalues.text, configvalues.show_text),
    "telescope": Setting(configvalues.text, configvalues.show_text),
    "telescope_name": Setting(configvalues.text, configvalues.show_text),
    "timezone": Setting(configvalues.zone(" (e.g. Europe/Paris, America/Santiago, UTC)."),
                        configvalues.show_text),
    "reduced": Setting(configvalues.flag, configvalues.show_flag),
    "tags": Setting(configvalues.tags, configvalues.show_list(",")),
    "classify": Setting(configvalues.classify),
    "longitude": Setting(configvalues.longitude),
    "exclude": Setting(configvalues.excludes, configvalues.show_list("\n")),
    "site_timezone": Setting(configvalues.zone("; watch the folder again to read the "
                                               "telescope's site."), configvalues.show_text),
}
_FOLDER_SAVED = tuple(key for key in FOLDER_SETTINGS if key != "path")


def _written(setting: Setting, value: object, default: object) -> str | None:
    """A value as the file writes it; None when it is not written (the default)."""
    if value is None or (not setting.always and value == default):
        return None
    return setting.write(value)


# --- the file ---------------------------------------------------------------------------


def _line_of(text: str, section: str, key: str | None) -> int:
    """Best-effort line number of a key (or a section header) for error messages."""
    in_section = False
    for number, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if stripped.startswith("["):
            in_section = stripped == f"[{section}]"
            if in_section and key is None:
                return number
        elif in_section and key and re.match(rf"{re.escape(key)}\s*[=:]", stripped):
            return number
    return 0


def _where(path: Path, text: str, section: str, key: str | None = None) -> str:
    line = _line_of(text, section, key)
    return f"{path}, line {line}" if line else f"{path}, section [{section}]"


def _read_section(parser: configparser.ConfigParser, section: str,
                  table: dict[str, Setting], path: Path, text: str) -> dict:
    """The values of one section, by the table. Raises ConfigError naming the line of
    the first unknown key or wrong value, in the order of the file."""
    values = {}
    for key, raw in parser.items(section):
        setting = table.get(key)
        try:
            if setting is None:
                raise ConfigError(f"unknown setting {key!r}.")
            values[key] = setting.read(raw, key)
        except ConfigError as exc:
            raise ConfigError(f"{_where(path, text, section, key)}: {exc.message}") from None
    return values


def load_settings(paths: Paths) -> Settings:
    """Read the config file (a missing file means defaults).

    Raises ConfigError naming the file, the line and what is wrong; FolderClash when
    two watched folders overlap.
    """
    path = paths.config_file
    try:
        text = path.read_text(encoding="utf-8-sig")  # Notepad saves a BOM first
    except FileNotFoundError:
        return Settings()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read the config file ({exc}).") from None
    parser = configparser.ConfigParser(interpolation=None)
    try:
        parser.read_string(text, source=str(path))
    except configparser.Error as exc:
        first = str(exc).replace("\n", " ")
        raise ConfigError(
            f"{path}: malformed config file: {first}. Fix or remove that line."
        ) from None
    for section in parser.sections():
        if section != MAIN and not section.startswith("folder "):
            raise ConfigError(
                f"{_where(path, text, section)}: unknown section [{section}] "
                f"(expected [{MAIN}] or [folder N])."
            )
    values = {}
    if parser.has_section(MAIN):
        values = _read_section(parser, MAIN, MAIN_SETTINGS, path, text)
    folders: list[Folder] = []
    lines: list[int] = []
    for section in parser.sections():
        if section.startswith("folder "):
            if not parser.get(section, "path", fallback=""):
                raise ConfigError(f"{_where(path, text, section)}: [{section}] has no path.")
            found = _read_section(parser, section, FOLDER_SETTINGS, path, text)
            lines.append(_line_of(text, section, "path") or _line_of(text, section, None))
            folders.append(Folder(**found))
    settings = Settings(folders=tuple(folders), **values)
    _check_folders(path, settings, lines)
    return settings


class FolderClash(ConfigError):
    """Two watched folders are one, or one holds the other. `settings` are those read,
    so that `unwatch` can still remove one of them."""

    def __init__(self, message: str, settings: Settings):
        super().__init__(message)
        self.settings = settings


def _check_folders(path: Path, settings: Settings, lines: list[int]) -> None:
    """Raises FolderClash, naming the lines, when two watched folders are the same folder
    or one holds the other (its files would go to two datasets)."""
    folders = settings.folders
    if len(folders) < 2:
        return
    from oort_lib.host import is_inside

    real = [os.path.realpath(f.path) for f in folders]
    for b in range(len(folders)):
        for a in range(b):
            if not (is_inside(real[a], real[b]) or is_inside(real[b], real[a])):
                continue
            where = f"{path}, lines {lines[a]} and {lines[b]}"
            first, second = folders[a].path, folders[b].path
            if is_inside(real[a], real[b]) and is_inside(real[b], real[a]):
                what = f"{first} and {second} are the same folder"
            elif is_inside(real[b], real[a]):
                what = f"{second} is inside {first}"
            else:
                what = f"{first} is inside {second}"
            raise FolderClash(f"{where}: {what}: its files would be uploaded twice. Keep "
                              f"one of the two sections (`oort-sync unwatch {second}` "
                              "removes the second).", settings)


def _main_value(settings: Settings, key: str) -> str | None:
    return _written(MAIN_SETTINGS[key], getattr(settings, key), Settings._field_defaults[key])


def _folder_value(folder: Folder, key: str) -> str | None:
    return _written(FOLDER_SETTINGS[key], getattr(folder, key), Folder._field_defaults[key])


def save_settings(paths: Paths, settings: Settings) -> None:
    """Write the config file atomically (a crash never leaves half a file).

    An existing file is edited, not rewritten (configfile.py): only the settings and
    folders that changed are touched; comments, order and other keys stay. Raises
    ConfigError for an existing file that cannot be read, OSError for one that cannot
    be written.
    """
    paths.config_dir.mkdir(parents=True, exist_ok=True)
    old = None
    if paths.config_file.exists():
        try:
            old = load_settings(paths)
        except FolderClash:
            # `unwatch` fixing two sections of one folder: edited by path they cannot be
            # told apart, so this once the file is written anew.
            old = None
    if old is not None:
        from oort_lib.state import configfile

        changes = {key: _main_value(settings, key) for key in MAIN_SETTINGS
                   if getattr(old, key) != getattr(settings, key)}
        before = {f.path: f for f in old.folders}
        folders = []
        for folder in settings.folders:
            was = before.get(folder.path)
            folders.append((folder.path, {
                key: _folder_value(folder, key) for key in _FOLDER_SAVED
                if was is None or getattr(was, key) != getattr(folder, key)}))
        kept = {f.path for f in settings.folders}
        text = configfile.update(paths.config_file, MAIN, changes, folders,
                                 [p for p in before if p not in kept],
                                 new_folder=lambda number: f"folder {number}")
        configfile.write(paths.config_file, text)
        return
    parser = configparser.ConfigParser(interpolation=None)
    parser[MAIN] = {}
    for key in MAIN_SETTINGS:
        value = _main_value(settings, key)
        if value is not None:
            parser[MAIN][key] = value
    for number, folder in enumerate(settings.folders, 1):
        section = {"path": folder.path}
        for key in _FOLDER_SAVED:
            value = _folder_value(folder, key)
            if value is not None:
                section[key] = value
        parser[f"folder {number}"] = section
    tmp = paths.config_file.with_suffix(".ini.tmp")
    with open(tmp, "w", encoding="utf-8") as handle:
        handle.write("# oort-sync settings; see `oort-sync --help` and the README.\n")
        parser.write(handle)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, paths.config_file)


def select_folders(folders: Iterable[Folder], only: Iterable[str] = ()) -> list[Folder]:
    """The watched folders, or those named. Raises ConfigError for unknown names."""
    folders = list(folders)
    if not folders:
        raise ConfigError("No folder is watched yet: run `oort-sync watch FOLDER` first.")
    only = list(only)
    if not only:
        return folders
    from oort_lib.host import path_key

    # As written, and where it points now (a folder watched through a symlink).
    by_path = {path_key(f.path): f for f in folders}
    for f in folders:
        by_path.setdefault(path_key(os.path.realpath(f.path)), f)
    chosen = []
    for name in only:
        given = os.path.expanduser(name)
        keys = (path_key(os.path.abspath(given)), path_key(os.path.realpath(given)))
        found = next((by_path[k] for k in keys if k in by_path), None)
        if found is None:
            raise ConfigError(f"{name} is not a watched folder (see `oort-sync status`).")
        if found not in chosen:
            chosen.append(found)
    return chosen


def with_api(settings: Settings, api: str) -> Settings:
    return settings._replace(api=api.rstrip("/"))


def with_folders(settings: Settings, folders: tuple[Folder, ...]) -> Settings:
    return settings._replace(folders=folders)
