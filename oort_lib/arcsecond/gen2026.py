"""The 2026 generation (today's cloud and Arcsecond.local): datasets and flat uploads.

The client verifies username + key, finds or creates one dataset per (organisation,
dataset name, telescope), and posts each file to the flat `datafiles/` route with the
parts the official client sends, in its order: `dataset`, `is_raw`, `tags` (only when
there are some), `file`. The server builds night logs, observations and calibrations
itself; this module never creates them, never touches the nested 2021 routes, and never
replaces a file's content (the generation cannot).
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from oort_lib.arcsecond.body import FileBody, Planned
from oort_lib.arcsecond.client import NO_KEY, prefix
from oort_lib.arcsecond.remote import Container, Remote
from oort_lib.errors import (
    AuthError,
    NotFound,
    PermanentError,
    WrongGeneration,
)

NEEDS_TELESCOPE = (
    "today's Arcsecond (2026) attaches every dataset to a telescope: watch the folder "
    "again with -t TELESCOPE (`oort-sync telescopes` lists them)"
)


class Gen2026(Remote):
    generation = "2026"
    can_check = False
    can_replace = False

    def _key(self, item, suffix: str) -> str:
        return f"{self.destination}|{item.folder.telescope or ''}|dataset{suffix}"

    def container(self, item) -> Container:
        telescope = item.folder.telescope
        if not telescope:
            raise PermanentError(f"no telescope: {NEEDS_TELESCOPE}")
        uuid = self._once(self._key(item, f"|{item.dataset}"), "datasets",
                          lambda: self._dataset(item.folder.organisation, item.dataset,
                                                telescope))
        return Container(dataset=uuid)

    def _dataset(self, org: str | None, name: str, telescope: str) -> str:
        """Find or create the dataset (only when the run has not resolved it yet)."""
        def find() -> str | None:
            found = find_datasets(self.client, org, name, telescope)
            return found[0] if found else None  # the oldest: the server lists by creation

        def create() -> dict:
            try:
                return self.client.create(org, "datasets", {"name": name, "telescope": telescope})
            except NotFound:
                raise WrongGeneration("POST datasets/: no such route on this server.",
                                      404) from None

        return self._find_or_create(find, create)

    def exists(self, item, container: Container):
        raise NotImplementedError("the 2026 generation has no existence check by name")

    def slot(self, destination, telescope, night, kind, dataset, filename) -> tuple:
        # One dataset per (telescope, name), whatever the night: see container().
        return (destination, telescope or "", dataset, filename)

    def send(self, item, container: Container, *, replace: bool = False,
             progress: Callable[[int], None] | None = None,
             abort: threading.Event | None = None) -> str:
        fields = [("dataset", container.dataset),
                  ("is_raw", "False" if item.folder.reduced else "True")]
        if item.folder.tags:
            fields.append(("tags", ",".join(item.folder.tags)))

        def body() -> FileBody:
            return FileBody(item.path, item.filename, planned=Planned.of(item), fields=fields,
                            filename_star=False, progress=progress, abort=abort)

        try:
            return self.client.send_file(f"{prefix(item.folder.organisation)}/datafiles/", body)
        except NotFound:
            raise WrongGeneration("POST datafiles/: no such route on this server.",
                                  404) from None
        except PermanentError as exc:
            if exc.status == 400 and "dataset" in exc.message and (
                    "does not exist" in exc.message or "not found" in exc.message.lower()):
                # The cached dataset was deleted on the server: the caller forgets it
                # and finds or creates it again.
                raise NotFound(exc.message, 400) from None
            raise


def find_datasets(client, org: str | None, name: str, telescope: str) -> list[str]:
    """UUIDs of the datasets named exactly `name` on `telescope`, oldest first.

    The server's `?name=` filter may not be exact (uncertain), and the official client
    refuses a dataset of another telescope: both are checked here.
    Raises WrongGeneration when the route is missing, and the client's errors.
    """
    try:
        found = client.find(org, "datasets", {"name": name})
    except NotFound:
        raise WrongGeneration("GET datasets/: no such route on this server.", 404) from None
    return [str(d["uuid"]) for d in found
            if d.get("name") == name and str(d.get("telescope") or "") == telescope
            and d.get("uuid")]


# --- keys and memberships --------------------------------------------------------------


def verify_key(client, username: str, key: str) -> None:
    """POST /auth/key/verify/ (no key header; the pair is in the body).

    Raises AuthError when the server refuses the pair, NotFound when the route does not
    exist (not a 2026 server), and the client's errors.
    """
    try:
        client.request("POST", "/auth/key/verify/", auth=NO_KEY, expect_json=False,
                       json={"username": username, "key": key})
    except PermanentError as exc:
        if exc.status == 405:
            raise NotFound(exc.message, 405) from None
        if exc.status == 400:
            raise AuthError(_refused(username), 400) from None
        raise
    except AuthError as exc:
        raise AuthError(_refused(username), exc.status) from None


def verify_organisation(client, username: str, key: str, organisation: str) -> dict:
    """The organisation (GET, with the key), then the membership check (POST, without).

    Raises NotFound for an unknown organisation, AuthError when the account may not
    upload there, and the client's errors.
    """
    org = client.organisation(organisation)
    try:
        client.request("POST", "/auth/key/verify-organisation/", auth=NO_KEY,
                       expect_json=False,
                       json={"username": username, "key": key, "organisation": organisation})
    except (AuthError, PermanentError) as exc:
        if isinstance(exc, NotFound):
            raise
        raise AuthError(
            f"{username} may not upload to organisation {organisation} (the server refused "
            "the membership: not a member, or a role that may only read).", exc.status,
        ) from None
    return org if isinstance(org, dict) else {}


def _refused(username: str) -> str:
    return (f"The server refused the username {username!r} with this key. Copy the upload "
            "key again from the settings page of your Arcsecond account (for "
            "Arcsecond.local, the settings page of that installation), and check the "
            "username (or use your primary e-mail address).")
