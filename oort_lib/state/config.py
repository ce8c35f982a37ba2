"""Where oort-sync keeps things, and the INI settings file with its watched folders."""

from __future__ import annotations

import configparser
import os
import re
from collections.abc import Iterable
from pathlib import Path
from typing import NamedTuple

from oort_lib.errors import ConfigError
from oort_lib.state.tags import parse_tags  # cfg.parse_tags for the CLI too

DEFAULT_API = "https://api.arcsecond.io"
APP = "oort-sync"
MAIN = "oort-sync"  # the section holding general settings


# The records of this module and of the others on the no-change path (credentials, lock,
# plan, sync) are NamedTuples or plain classes, not dataclasses: importing dataclasses and
# building frozen ones cost ~25 ms, a tenth of a cron tick over 20,000 files (measured).


class Paths(NamedTuple):
    """The files of one installation (or one profile, with --home)."""

    config_dir: Path
    state_dir: Path
    log_dir: Path | None = None  # None: the log sits in the state dir

    @property
    def config_file(self) -> Path:
        return self.config_dir / "config.ini"

    @property
    def credentials_file(self) -> Path:
        return self.config_dir / "credentials.json"

    @property
    def manifest_file(self) -> Path:
        return self.state_dir / "manifest.sqlite"

    @property
    def lock_file(self) -> Path:
        return self.state_dir / "run.lock"

    @property
    def log_file(self) -> Path:
        return (self.log_dir or self.state_dir) / "oort-sync.log"


def resolve_paths(home: str | None = None, environ: os._Environ | dict | None = None) -> Paths:
    """Paths from --home, else OORT_SYNC_HOME, else the platform's own folders (host.py:
    XDG on Linux, ~/Library on macOS, %APPDATA% and %LOCALAPPDATA% on Windows).

    Raises ConfigError for a home holding a NUL character, which no path can hold."""
    env = os.environ if environ is None else environ
    home = home or env.get("OORT_SYNC_HOME")
    if home and "\x00" in home:
        raise ConfigError(f"--home (or $OORT_SYNC_HOME) is {home!r}, which holds a NUL "
                          "character: no path can hold one.")
    if home:
        base = Path(home).expanduser().absolute()
        return Paths(base / "config", base / "state")
    from oort_lib.host import user_dirs

    dirs = user_dirs(APP, env)
    return Paths(dirs.config, dirs.state, None if dirs.logs == dirs.state else dirs.logs)


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
    jobs: int = 4
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
    api_dialect: str = "auto"  # auto | 2021 | 2026: which API generation to speak
    allow_http: bool = False  # plain http:// to a LAN server (Arcsecond.local)
    bwlimit: str | None = None  # total upload rate, or a timetable (bandwidth.py)
    folders: tuple[Folder, ...] = ()


_NUMBERS = {
    "jobs": (int, 1, 64),
    "min_age": (float, 0, 10**7),
    "connect_timeout": (float, 0.1, 3600),
    "read_timeout": (float, 0.1, 3600),
    "retries": (int, 0, 50),
    "backoff_base": (float, 0, 600),
    "backoff_max": (float, 0, 3600),
    "retry_delay": (float, 0, 86400),
    "partial_wait": (float, 0, 10**8),
    "log_max_bytes": (int, 10_000, 10**10),
    "log_backups": (int, 0, 100),
}
_FOLDER_KEYS = {"path", "organisation", "telescope", "telescope_name", "timezone", "reduced",
                "tags", "classify", "longitude", "exclude", "site_timezone"}
DIALECTS = ("auto", "2021", "2026")
_CLASSIFY = ("folder", "header")
_TRUE = {"1", "yes", "true", "on"}
_FALSE = {"0", "no", "false", "off", ""}


def _flag(raw: str, where: str, key: str) -> bool:
    value = raw.strip().lower()
    if value in _TRUE | _FALSE:
        return value in _TRUE
    raise ConfigError(f"{where}: {key} = {raw!r}: use true or false.")


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


def load_settings(paths: Paths) -> Settings:
    """Read the config file (a missing file means defaults).

    Raises ConfigError naming the file, the line and what is wrong.
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
    values: dict = {}
    for section in parser.sections():
        if section != MAIN and not section.startswith("folder "):
            raise ConfigError(
                f"{_where(path, text, section)}: unknown section [{section}] "
                f"(expected [{MAIN}] or [folder N])."
            )
    if parser.has_section(MAIN):
        for key, raw in parser.items(MAIN):
            where = _where(path, text, MAIN, key)
            if key == "api":
                values["api"] = raw.strip().rstrip("/")
            elif key == "ping_url":
                values["ping_url"] = raw.strip() or None
            elif key == "api_dialect":
                if raw.strip() not in DIALECTS:
                    raise ConfigError(f"{where}: api_dialect = {raw!r}: use auto, 2021 or 2026.")
                values["api_dialect"] = raw.strip()
            elif key == "allow_http":
                values["allow_http"] = _flag(raw, where, key)
            elif key == "bwlimit":
                from oort_lib.run.bandwidth import parse

                try:
                    parse(raw)
                except ConfigError as exc:
                    raise ConfigError(f"{where}: {exc.message}") from None
                values["bwlimit"] = raw.strip() or None
            elif key in _NUMBERS:
                kind, low, high = _NUMBERS[key]
                try:
                    number = kind(raw)
                except ValueError:
                    raise ConfigError(
                        f"{where}: {key} = {raw!r} is not a {kind.__name__} number."
                    ) from None
                if not low <= number <= high:
                    raise ConfigError(f"{where}: {key} = {raw} must be between {low} and {high}.")
                values[key] = number
            else:
                raise ConfigError(f"{where}: unknown setting {key!r}.")
    folders: list[Folder] = []
    lines: list[int] = []
    for section in parser.sections():
        if not section.startswith("folder "):
            continue
        items = dict(parser.items(section))
        unknown = set(items) - _FOLDER_KEYS
        if unknown:
            key = sorted(unknown)[0]
            raise ConfigError(f"{_where(path, text, section, key)}: unknown setting {key!r}.")
        if not items.get("path"):
            raise ConfigError(f"{_where(path, text, section)}: [{section}] has no path.")
        try:
            tags = parse_tags(items.get("tags"))
        except ConfigError as exc:
            raise ConfigError(f"{_where(path, text, section, 'tags')}: {exc.message}") from None
        if items.get("timezone"):
            _check_zone(items["timezone"], _where(path, text, section, "timezone"))
        classify = (items.get("classify") or "folder").strip().lower()
        if classify not in _CLASSIFY:
            raise ConfigError(f"{_where(path, text, section, 'classify')}: classify = "
                              f"{items['classify']!r} must be folder or header.")
        folder_path = _folder_path(items["path"], _where(path, text, section, "path"))
        if items.get("timezone"):
            _check_zone(items["timezone"], _where(path, text, section, "timezone"))
        lines.append(_line_of(text, section, "path") or _line_of(text, section, None))
        folders.append(
            Folder(
                path=folder_path,
                organisation=items.get("organisation") or None,
                telescope=items.get("telescope") or None,
                telescope_name=items.get("telescope_name") or None,
                timezone=items.get("timezone") or None,
                reduced=_flag(items.get("reduced", ""), _where(path, text, section, "reduced"),
                              "reduced"),
                tags=tags,
                classify=classify,
                longitude=_longitude(items.get("longitude"),
                                     _where(path, text, section, "longitude")),
                exclude=_excludes(items.get("exclude"), _where(path, text, section, "exclude")),
                site_timezone=_site_zone(items.get("site_timezone"),
                                         _where(path, text, section, "site_timezone")),
            )
        )
    settings = Settings(folders=tuple(folders), **values)
    _check_folders(path, settings, lines)
    return settings


class FolderClash(ConfigError):
    """Two watched folders are one, or one holds the other. `settings` are those read,
    so that `unwatch` can still remove one of them."""

    def __init__(self, message: str, settings: Settings):
        super().__init__(message)
        self.settings = settings


def _folder_path(raw: str, where: str) -> str:
    """A watched folder's path as written, `~` expanded; kept unresolved (a symlink such
    as `nights/current` is followed again at every run). Raises ConfigError when it is
    relative: it would depend on the folder cron happens to start in."""
    expanded = os.path.expanduser(raw.strip())
    if expanded.startswith("~"):
        raise ConfigError(f"{where}: path = {raw!r}: no such user's home.")
    if not os.path.isabs(expanded):
        raise ConfigError(f"{where}: path = {raw!r} is relative; write the full path "
                          "(e.g. /home/you/data or ~/data).")
    return os.path.normpath(expanded)


def _check_zone(name: str, where: str) -> None:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(name.strip())
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"{where}: timezone = {name!r} is not an IANA time zone name "
                          "(e.g. Europe/Paris, America/Santiago, UTC).") from None


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


def _check_zone(name: str, where: str) -> None:
    """Raises ConfigError naming the line unless `name` is an IANA time zone: a typo
    (America/Santigo) must stop with a message at load, not fail every file later."""
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"{where}: timezone = {name}: not an IANA time zone name (e.g. "
                          "Europe/Paris, America/Santiago, UTC).") from None


def _site_zone(raw: str | None, where: str) -> str | None:
    """`site_timezone` of a folder (written by `watch`). Raises ConfigError naming the
    line for a name that is no IANA zone."""
    if raw is None or not raw.strip():
        return None
    from oort_lib.local.rules import zone

    try:
        zone(raw.strip())
    except ValueError:
        raise ConfigError(f"{where}: site_timezone = {raw.strip()}: not an IANA time zone "
                          "name; watch the folder again to read the telescope's site.") from None
    return raw.strip()


def _longitude(raw: str | None, where: str) -> float | None:
    if raw is None or not raw.strip():
        return None
    try:
        value = float(raw)
    except ValueError:
        value = float("nan")
    if not -180.0 <= value <= 360.0:  # also refuses nan
        raise ConfigError(f"{where}: longitude = {raw!r}: degrees east, -180 to 360.")
    return value
_MAIN_KEYS = ("api", *_NUMBERS, "ping_url", "api_dialect", "allow_http", "bwlimit")
_FOLDER_SAVED = ("organisation", "telescope", "telescope_name", "timezone", "reduced", "tags",
                 "classify", "longitude", "exclude", "site_timezone")


def _main_value(settings: Settings, key: str) -> str | None:
    """A general setting as the file writes it; None for a default (not written)."""
    value = getattr(settings, key)
    if value is None or (key != "api" and value == getattr(Settings(), key)):
        return None
    return str(value).lower() if isinstance(value, bool) else str(value)


def _folder_value(folder: Folder, key: str) -> str | None:
    value = getattr(folder, key)
    if key == "reduced":
        return "true" if value else None
    if key == "tags":
        return ",".join(value) if value else None
    if key == "classify":
        return value if value != "folder" else None
    if key == "exclude":
        return "\n".join(value) if value else None
    if key == "longitude":
        return repr(value) if value is not None else None
    return value or None


def _excludes(raw: str | None, where: str) -> tuple[str, ...]:
    """`exclude` of a folder: one pattern per line (indented continuation lines)."""
    if not raw:
        return ()
    from oort_lib.local.exclude import check

    try:
        return check(line for line in raw.splitlines() if line.strip())
    except ConfigError as exc:
        raise ConfigError(f"{where}: {exc.message}") from None


def save_settings(paths: Paths, settings: Settings) -> None:
    """Write the config file atomically (a crash never leaves half a file).

    An existing file is edited, not rewritten (configfile.py): only the settings and
    folders that changed are touched; comments, order and other keys stay.
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

        changes = {key: _main_value(settings, key) for key in _MAIN_KEYS
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
    for key in _MAIN_KEYS:
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
