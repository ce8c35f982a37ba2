"""Logging in: username + key (or a 2021 password) become verified, stored credentials."""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

from oort_lib.arcsecond import gen2021
from oort_lib.arcsecond.detect import detect
from oort_lib.errors import ConfigError, PermanentError, TransientError, server_problem
from oort_lib.state import credentials
from oort_lib.state.config import Paths, Settings, save_settings, with_api
from oort_lib.state.credentials import Credentials


class Login(NamedTuple):
    """A login verified and stored, as `login` tells of it."""

    creds: Credentials
    base: str  # the server's API address

    def warning(self) -> str | None:
        """Said when the key and the files would cross the network unencrypted."""
        from oort_lib.arcsecond.address import plain_http_off_loopback

        if not plain_http_off_loopback(self.base):
            return None
        return (f"{self.base} is plain http://: the key and your files travel unencrypted "
                "on your network.")

    def summary(self) -> str:
        who = self.creds.username or "an upload key"
        roles = ", ".join(f"{org} ({role})"
                          for org, role in sorted((self.creds.memberships or {}).items()))
        return (f"Logged in to {self.base} as {who} (API generation {self.creds.generation})."
                + (f" Organisations: {roles}." if roles else ""))


def login(paths: Paths, settings: Settings, username: str | None,
          key: Callable[[], tuple[str, str]], *,
          password: Callable[[str | None], str] | None = None,
          ask_username: Callable[[], str] | None = None,
          api: str | None = None, allow_http: bool = False) -> Login:
    """`login`: verify the credentials with the server, then store them (and the server
    in the config when `api` or `allow_http` changes it). Without `username`,
    `ask_username()` gives it, if given. `password(username)` gives a 2021 password to
    log in with; without it, `key()` gives (the upload key, where it came from).

    Raises ConfigError for a bad `api` URL, what the callables raise (UsageError), what
    credentials.check_key, login_with_key and login_with_password raise, and OSError when
    the credentials or the config cannot be written.
    """
    from oort_lib.arcsecond.client import Client

    allow_http = bool(allow_http or settings.allow_http)
    client = Client.from_settings(settings, api=api, allow_http=allow_http)
    if not username and ask_username is not None:
        username = ask_username()
    if password is not None:
        creds = login_with_password(client, username, password(username))
    else:
        text, where = key()
        creds = login_with_key(client, username or None, credentials.check_key(text, where),
                               dialect=settings.api_dialect)
    credentials.save(paths.credentials_file, creds)
    if api or allow_http != settings.allow_http:
        save_settings(paths, with_api(settings, client.base)._replace(allow_http=allow_http))
    return Login(creds, client.base)


def login_with_key(client, username: str | None, key: str, *, dialect: str = "auto"
                   ) -> Credentials:
    """Find the server's API generation and verify the key there, before anything is
    stored. `dialect` ("auto", "2021" or "2026") forces a generation.

    Raises AuthError when the server refuses the pair, ConfigError when the server is
    not recognised (or a 2026 server is given no username), ServerProblem when it gives
    no usable answer (trickles, errors through every retry), and the client's other
    errors (ServerUnreachable, NotFound...).
    """
    try:
        return _login_with_key(client, username, key, dialect)
    except (PermanentError, TransientError) as exc:
        raise server_problem(exc, "Not logged in") from None


def _login_with_key(client, username: str | None, key: str, dialect: str) -> Credentials:
    client.session.auth.key = client.key = key
    profile = None
    if dialect == "2026" or dialect == "auto":
        found = detect(client, username, key)
        generation, profile = found.generation, found.profile
        if dialect == "2026" and generation != "2026":
            raise ConfigError(f"{client.base} does not speak the 2026 generation "
                              "(api_dialect = 2026 in the config).")
    else:
        generation = "2021"
    if generation == "2026" and not username:
        raise ConfigError("Today's Arcsecond (2026) checks the username with the key: "
                          "add --username=NAME.")
    memberships = {}
    if generation == "2021":
        if username:
            if profile is None:  # detection did not read it already
                profile = client.request("GET", f"/profiles/{_quote(username)}/")
            username = (profile or {}).get("username") or username
            memberships = gen2021.memberships(profile)
        else:
            client.telescopes(None)  # any authenticated read proves the key
    return Credentials(key=key, username=username, api=client.base, memberships=memberships,
                       generation=generation)


def login_with_password(client, username: str, password: str) -> Credentials:
    """The 2021 exchange: password -> token -> upload key. The token is not kept.

    Raises AuthError for refused credentials, WrongGeneration for a 2026 server (which
    needs a key), ServerProblem when the server gives no usable answer, and the client's
    other errors.
    """
    try:
        canonical, key, memberships = gen2021.password_login(client, username, password)
    except (PermanentError, TransientError) as exc:
        raise server_problem(exc, "Not logged in") from None
    return Credentials(key=key, username=canonical, api=client.base, memberships=memberships,
                       generation="2021")


def _quote(text: str) -> str:
    from urllib.parse import quote

    return quote(text, safe="")
