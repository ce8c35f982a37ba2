"""Where oort-sync keeps things: the files of one installation (or one profile, --home)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import NamedTuple

from oort_lib.errors import ConfigError

APP = "oort-sync"


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
