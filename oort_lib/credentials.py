"""The stored upload key: an owner-only JSON file (mode 0600 on POSIX, see host.py),
overridden by the environment."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import NamedTuple

from .errors import AuthError, ConfigError

ENV_KEYS = ("ARCSECOND_UPLOAD_KEY", "OORT_SYNC_KEY")


class Credentials(NamedTuple):
    """Who is logged in. ``key`` is the upload key; never log or print it."""

    key: str
    username: str | None = None
    api: str | None = None
    memberships: dict[str, str] | None = None  # subdomain -> role
    source: str = "file"

    def __repr__(self) -> str:  # the key must not reach a log through a repr
        return f"Credentials(username={self.username!r}, api={self.api!r}, key=****)"


def save(path: Path, creds: Credentials) -> None:
    """Write the credentials readable by their owner only from the first byte (no window
    where others read): mode 0600 on POSIX, an owner-only ACL on Windows (host.py)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    try:
        tmp.unlink()
    except FileNotFoundError:
        pass
    data = creds._asdict()
    data.pop("source")
    from .host import create_secret

    with os.fdopen(create_secret(tmp), "w", encoding="utf-8") as handle:
        json.dump(data, handle, indent=2)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def delete(path: Path) -> bool:
    """Remove the stored credentials; True if there were some."""
    try:
        path.unlink()
        return True
    except FileNotFoundError:
        return False


def permission_warning(path: Path) -> str | None:
    """A warning when the credentials file can be read by others, else None."""
    from .host import secret_warning

    return secret_warning(path)


def load(path: Path, environ: dict | os._Environ | None = None) -> Credentials | None:
    """The environment's key if set, else the file's, else None.

    Raises ConfigError when the file exists but cannot be read or parsed.
    """
    env = os.environ if environ is None else environ
    stored = None
    try:
        raw = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raw = None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the credentials ({exc.strerror}).") from None
    if raw is not None:
        try:
            data = json.loads(raw)
            stored = Credentials(
                key=str(data["key"]),
                username=data.get("username"),
                api=data.get("api"),
                memberships=dict(data.get("memberships") or {}),
            )
        except (ValueError, KeyError, TypeError):
            raise ConfigError(
                f"{path}: the credentials file is damaged; run `oort-sync login` again."
            ) from None
    for name in ENV_KEYS:
        if env.get(name):
            base = stored or Credentials(key="")
            return Credentials(
                key=env[name].strip(),
                username=base.username,
                api=base.api,
                memberships=base.memberships,
                source=f"${name}",
            )
    return stored


def require(path: Path, environ: dict | os._Environ | None = None) -> Credentials:
    """Like load(), but raises AuthError when nobody is logged in."""
    creds = load(path, environ)
    if creds is None or not creds.key:
        raise AuthError(
            "Not logged in: run `oort-sync login` (or set ARCSECOND_UPLOAD_KEY)."
        )
    return creds
