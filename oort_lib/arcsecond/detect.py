"""Which API generation a server speaks, found without side effects.

In order (docs/arcsecond-api.md, "Detection"):
1. `POST /auth/key/verify/` with username + key: 2xx -> 2026, and the key is good;
   a refusal -> a 2026 server refusing the credentials (stop, no fallback); 404/405 -> on.
2. `OPTIONS [/<sub>]/datafiles/` with the key: 200 -> 2026 (the flat route exists).
3. `GET /profiles/<username>/` with the key (without a username: the personal
   telescopes): 2xx -> 2021.
4. Anything else: refuse, naming the probes. Never guess by uploading.
"""

from __future__ import annotations

from typing import NamedTuple
from urllib.parse import quote

from oort_lib.arcsecond.client import prefix
from oort_lib.arcsecond.gen2026 import verify_key
from oort_lib.errors import AuthError, ConfigError, NotFound, PermanentError


class Detected(NamedTuple):
    generation: str  # "2021" or "2026"
    key_verified: bool  # the server confirmed the username + key pair
    probes: tuple[str, ...]  # what was asked, and what it answered (for the log)
    profile: dict | None = None  # 2021: the profile the last probe read (login uses it)


def detect(client, username: str | None, key: str, organisation: str | None = None
           ) -> Detected:
    """Ask the server which generation it speaks (the client carries the key).

    Raises AuthError when the server refuses the credentials, ConfigError when no probe
    recognises the server, and the client's transport errors (unreachable...).
    """
    probes: list[str] = []
    if username:
        try:
            verify_key(client, username, key)
            return Detected("2026", True, ("POST /auth/key/verify/: accepted",))
        except NotFound:
            probes.append("POST /auth/key/verify/: no such route")
    else:
        probes.append("POST /auth/key/verify/: skipped (no username)")
    options = f"{prefix(organisation)}/datafiles/"
    try:
        client.request("OPTIONS", options, expect_json=False)
        return Detected("2026", False, (*probes, f"OPTIONS {options}: 200"))
    except (NotFound, PermanentError) as exc:
        probes.append(f"OPTIONS {options}: {exc.status or 'refused'}")
    if username:
        path = f"/profiles/{quote(username, safe='')}/"
    else:
        path = "/telescopes/"
    try:
        answer = client.request("GET", path)
        return Detected("2021", username is not None, (*probes, f"GET {path}: 200"),
                        answer if username and isinstance(answer, dict) else None)
    except AuthError:
        raise
    except (NotFound, PermanentError) as exc:
        probes.append(f"GET {path}: {exc.status or 'refused'}")
    raise ConfigError(
        f"{client.base} does not answer like an Arcsecond API server ("
        + "; ".join(probes) + "). Check the API URL, or set api_dialect in the config."
    )


def generation_for(client, settings, creds, *, redetect: bool = False) -> str:
    """The API generation to speak with `client`'s server: the config's `api_dialect`
    if set, else the one remembered at login for this very server, else detected now
    (also when `redetect`: a route of the remembered one was missing).

    Raises AuthError, ConfigError and the client's errors (see detect).
    """
    if settings.api_dialect in ("2021", "2026"):
        return settings.api_dialect
    same_server = (creds.api or "").rstrip("/") == client.base
    if creds.generation and same_server and not redetect:
        return creds.generation
    return detect(client, creds.username, creds.key).generation
