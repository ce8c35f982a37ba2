"""The stored upload key: an owner-only JSON file (mode 0600 on POSIX, see host.py),
overridden by the environment."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import NamedTuple

from oort_lib.errors import AuthError, ConfigError, OortError

ENV_KEYS = ("ARCSECOND_UPLOAD_KEY", "OORT_SYNC_KEY")


class Credentials(NamedTuple):
    """Who is logged in, where, and which API generation that server speaks.

    ``key`` is the upload (or access) key; never log or print it.
    """

    key: str
    username: str | None = None
    api: str | None = None
    memberships: dict[str, str] | None = None  # subdomain -> role (2021 generation)
    source: str = "file"
    generation: str | None = None  # "2021" or "2026", as detected for `api`

    def __repr__(self) -> str:  # the key must not reach a log through a repr
        return (f"Credentials(username={self.username!r}, api={self.api!r}, "
                f"generation={self.generation!r}, key=****)")


# Keys seen in the wild are 32 hex characters; anything printable without blanks or
# quotes is accepted, so a future key format still works.
_KEY = re.compile(r"[\x21-\x7e]{8,512}")


def check_key(key: str, where: str) -> str:
    """The key without surrounding blanks, if it looks like a key.

    Raises AuthError naming `where` it came from, with a masked hint only (a key pasted
    with quotes or a line break must not end up in logs or status, even mangled).
    """
    key = key.strip()
    if _KEY.fullmatch(key) and not any(q in key for q in "\"'`"):
        return key
    hint = f"{len(key)} characters"
    if any(ch.isspace() for ch in key):
        hint += ", with spaces or line breaks inside"
    if any(ch in key for ch in "\"'`\u2018\u2019\u201c\u201d"):
        hint += ", with quotes"
    if any(not ch.isascii() for ch in key):
        hint += ", with non-ASCII characters"
    raise AuthError(
        f"The key from {where} does not look like an Arcsecond key ({hint}). Copy it again "
        "from your account's settings page, without quotes or spaces."
    )


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
    from oort_lib.host import create_secret

    try:
        with os.fdopen(create_secret(tmp), "w", encoding="utf-8") as handle:
            json.dump(data, handle, indent=2)
            handle.flush()
            os.fsync(handle.fileno())
    except BaseException:
        # A full disk or an I/O error: no partial copy of the key is left behind.
        tmp.unlink(missing_ok=True)
        raise
    os.replace(tmp, path)


def known_generation(creds: Credentials | None, api: str, dialect: str = "auto"
                     ) -> str | None:
    """The API generation of the server at ``api`` as known without asking it: the
    config's ``api_dialect`` if set, else the one detected at login (or by a run) for
    that very server; None when unknown (the next run detects it)."""
    if dialect in ("2021", "2026"):
        return dialect
    if creds is not None and creds.generation and (
            (creds.api or "").rstrip("/") == api.rstrip("/")):
        return creds.generation
    return None


def remember_generation(path: Path, api: str, generation: str) -> bool:
    """Store the API generation detected for `api` in the credentials file, if they
    are that server's and it changed. True when the file was rewritten. Never raises:
    detection simply runs again next time."""
    try:
        stored = load(path, environ={})
    except OortError:
        return False
    if stored is None or (stored.api or "").rstrip("/") != api.rstrip("/"):
        return False
    if stored.generation == generation:
        return False
    try:
        save(path, stored._replace(generation=generation))
    except OSError:
        return False
    return True


def delete(path: Path) -> bool:
    """Remove the stored credentials; True if there were some."""
    try:
        path.unlink()
        return True
    except FileNotFoundError:
        return False


def permission_warning(path: Path) -> str | None:
    """A warning when the credentials file can be read by others, else None."""
    from oort_lib.host import secret_warning

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
                generation=data.get("generation"),
            )
        except (ValueError, KeyError, TypeError):
            raise ConfigError(
                f"{path}: the credentials file is damaged; run `oort-sync login` again."
            ) from None
    if stored is not None:
        stored = stored._replace(key=check_key(stored.key, str(path)))
    for name in ENV_KEYS:
        # A blank variable (`ARCSECOND_UPLOAD_KEY=` in a unit file) means "not set".
        if (env.get(name) or "").strip():
            base = stored or Credentials(key="")
            return base._replace(key=check_key(env[name], f"${name}"), source=f"${name}")
    return stored


def blank_variables(environ: dict | os._Environ | None = None) -> list[str]:
    """The key variables set to blanks only (a space, a line break): ignored by load(),
    worth a warning, as they usually mean a broken unit file or script."""
    env = os.environ if environ is None else environ
    return [name for name in ENV_KEYS if env.get(name) and not env[name].strip()]


def require(path: Path, environ: dict | os._Environ | None = None) -> Credentials:
    """Like load(), but raises AuthError when nobody is logged in."""
    creds = load(path, environ)
    if creds is None or not creds.key:
        raise AuthError(
            "Not logged in: run `oort-sync login` (or set ARCSECOND_UPLOAD_KEY)."
        )
    return creds
