"""The 2021 generation (the Oort-Cloud docs): the client builds the whole chain.

Night log -> observation or calibration -> dataset, each found by a filtered list or
created, then the file posted into the dataset's nested `datafiles/` route; a file that
changed is PATCHed in place. Login may exchange a password for the upload key.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from urllib.parse import quote

from oort_lib.arcsecond.body import FileBody, Planned
from oort_lib.arcsecond.client import NO_KEY, prefix
from oort_lib.arcsecond.remote import Container, Remote, RemoteFile
from oort_lib.errors import AuthError, NotFound, PermanentError, WrongGeneration


class Gen2021(Remote):
    generation = "2021"
    can_check = True
    can_replace = True

    def _key(self, item, suffix: str) -> str:
        return f"{self.destination}|{item.folder.telescope or ''}|{item.night}{suffix}"

    def container(self, item) -> Container:
        org = item.folder.organisation
        telescope = item.folder.telescope
        filters = {"date": item.night}
        body = {"date": item.night}
        if telescope:
            filters["telescope"] = body["telescope"] = telescope
        nightlog = self._object(self._key(item, "|nightlog"), org, "nightlogs", filters, body)
        kind = "observations" if item.kind == "observation" else "calibrations"
        body = {"night_log": nightlog, "name": item.dataset}
        if item.kind == "observation":
            body["target_name"] = item.target
        parent = self._object(
            self._key(item, f"|{item.kind}|{item.dataset}"), org, kind,
            {"night_log": nightlog, "name": item.dataset}, body,
        )
        link = {item.kind: parent, "name": item.dataset}
        dataset = self._object(self._key(item, f"|dataset|{item.kind}|{item.dataset}"), org,
                               "datasets", link, link)
        return Container(dataset=dataset, nightlog=nightlog, parent=parent)

    def _object(self, key: str, org: str | None, kind: str, filters: dict, body: dict) -> str:
        return self._once(key, kind, lambda: self._find_or_make(org, kind, filters, body))

    def _find_or_make(self, org: str | None, kind: str, filters: dict, body: dict) -> str:
        """Find or create one object (only when the run has not resolved it yet)."""
        def find() -> str | None:
            try:
                found = self.client.find(org, kind, filters)
            except NotFound:
                # The list route itself is missing: not a 2021 server (any more).
                raise WrongGeneration(f"GET {kind}/: no such route on this server "
                                      "(it does not speak the 2021 generation).", 404) from None
            matches = [obj for obj in found
                       if all(str(obj.get(k)) == str(v) for k, v in filters.items())]
            return str(matches[0]["uuid"]) if matches else None  # the oldest: listed first

        def create() -> dict:
            try:
                return self.client.create(org, kind, body)
            except PermanentError as exc:
                if exc.status == 405:  # readable, not writable: a 2026 server
                    raise WrongGeneration(f"POST {kind}/: not allowed on this server (it "
                                          "builds them itself: 2026 generation).", 405) from None
                raise

        return self._find_or_create(find, create)

    def slot(self, destination, telescope, night, kind, dataset, filename) -> tuple:
        # One dataset per (night log, observation or calibration, name): see container().
        return (destination, telescope or "", night, kind, dataset, filename)

    def exists(self, item, container: Container) -> RemoteFile | None:
        try:
            found = self.client.request("GET", _datafile_path(item.folder.organisation,
                                                              container.dataset,
                                                              item.filename))
        except NotFound:
            return None
        if not isinstance(found, dict):
            return RemoteFile()
        size = found.get("size")
        return RemoteFile(size=size if isinstance(size, int) and size >= 0 else None,
                          modified=_epoch(found.get("modified")))

    def send(self, item, container: Container, *, replace: bool = False,
             progress: Callable[[int], None] | None = None,
             abort: threading.Event | None = None) -> str:
        org = item.folder.organisation

        def body() -> FileBody:
            return FileBody(item.path, item.filename, planned=Planned.of(item),
                            progress=progress, abort=abort)

        if replace:
            try:
                return self.client.send_file(
                    _datafile_path(org, container.dataset, item.filename), body,
                    method="PATCH")
            except NotFound:
                pass  # no longer on the server: send it anew
        return self.client.send_file(
            f"{prefix(org)}/datasets/{container.dataset}/datafiles/", body)


def _epoch(value) -> float | None:
    """Epoch seconds of an ISO 8601 timestamp with a zone ("...Z"), else None."""
    if not isinstance(value, str):
        return None
    from datetime import datetime

    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return when.timestamp() if when.tzinfo is not None else None


def _datafile_path(organisation: str | None, dataset: str, filename: str) -> str:
    return f"{prefix(organisation)}/datasets/{dataset}/datafiles/{quote(filename, safe='')}/"


# --- logging in ------------------------------------------------------------------------


def password_login(client, username: str, password: str) -> tuple[str, str, dict[str, str]]:
    """Password -> token -> profile and upload key: (canonical username, upload key,
    memberships {subdomain: role}). The token is used for these calls only.

    Raises AuthError for refused credentials, and WrongGeneration when the server answers
    the 2026 token shape (a JWT pair: today's servers need a key, not a password).
    """
    try:
        data = client.request("POST", "/auth/token/", auth=NO_KEY,
                              json={"username": username, "password": password})
    except PermanentError as exc:
        if exc.status == 400:
            raise AuthError(f"Login refused: {exc.message.split(': ', 1)[-1]}", 400) from None
        raise
    if isinstance(data, dict) and not data.get("token") and data.get("access"):
        raise WrongGeneration(
            "This server speaks today's API (2026): it does not give upload keys for a "
            "password. Log in with your username and upload key instead (without --password).")
    if not isinstance(data, dict) or not data.get("token"):
        raise PermanentError("The server's login answer has no token.")
    token = str(data["token"])
    headers = {"Authorization": f"Token {token}"}
    profile = client.request("GET", f"/profiles/{quote(username, safe='')}/", headers=headers,
                             auth=NO_KEY)
    canonical = (profile or {}).get("username") or username
    keys = client.request("GET", f"/profiles/{quote(canonical, safe='')}/uploadkey/",
                          headers=headers, auth=NO_KEY)
    if not isinstance(keys, dict) or not keys.get("upload_key"):
        raise PermanentError("The server's answer has no upload key.")
    return canonical, str(keys["upload_key"]), memberships(profile)


def memberships(profile: dict | None) -> dict[str, str]:
    """{subdomain: role} from a profile answer."""
    found = {}
    for membership in (profile or {}).get("memberships") or []:
        org = membership.get("organisation") or {}
        if isinstance(org, dict) and org.get("subdomain"):
            found[org["subdomain"]] = membership.get("role") or "member"
    return found
