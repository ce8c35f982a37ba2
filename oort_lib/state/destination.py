"""Where uploads go: a server (base URL), an account and an organisation.

The manifest records each upload with its destination, so that nothing is ever taken as
uploaded to a server that did not receive it (trying the sandbox, then logging in to
the real server, uploads everything to the real server).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple


class Destination(NamedTuple):
    api: str  # base URL, no trailing slash
    account: str  # username ("" when only a key is known)
    organisation: str  # subdomain ("" for the personal account)

    def __str__(self) -> str:
        return f"{self.api}|{self.account}|{self.organisation}"

    def label(self) -> str:
        """For people: `astro @ https://api.arcsecond.io (organisation robotland)`."""
        who = self.account or "upload key"
        where = f" (organisation {self.organisation})" if self.organisation else ""
        return f"{who} @ {self.api}{where}"


def destination(api: str, account: str | None, organisation: str | None) -> str:
    """The manifest's key of a destination."""
    return str(Destination(api.rstrip("/"), account or "", organisation or ""))


def for_folders(api: str, account: str | None) -> Callable[[Any], str]:
    """The destination key of each watched folder (its organisation) for this login."""
    return lambda folder: destination(api, account, folder.organisation)


def parse(key: str | None) -> Destination | None:
    """The Destination of a manifest key (None for rows recorded before destinations)."""
    if not key or key.count("|") < 2:
        return None
    api, account, organisation = key.rsplit("|", 2)
    return Destination(api, account, organisation)
