"""``/_sandbox/``: control of a sandbox that runs in another process (demo, benchmarks).

Faults never apply here and these requests are not recorded in the request log. They need
the seeded main user's upload key, checked against the seed itself so that revoking that
key (a test scenario) never locks the operator out of the controls. Stored files, at
``/_sandbox/files/<dataset>/<name>``, take any key allowed to read their dataset.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Callable

from werkzeug.wrappers import Request, Response
from werkzeug.wsgi import get_input_stream, wrap_file

from oort_lib.sandbox import objects
from oort_lib.sandbox.faults import Faults
from oort_lib.sandbox.responses import NOT_FOUND, ApiError, json_response
from oort_lib.sandbox.seed import Seed
from oort_lib.sandbox.store import KINDS, Store

OBJECT_KINDS = (*KINDS, "datafiles", "telescopes")


class Admin:
    def __init__(self, *, store: Store, seed: Seed, faults: Faults, revoked: set[str],
                 requests: Callable[[], list], clear_requests: Callable[[], None]):
        self.store = store
        self.seed = seed
        self.faults = faults
        self.revoked = revoked
        self.requests = requests
        self.clear_requests = clear_requests

    def handle(self, rt, request: Request, base_url: str) -> Response:
        args = rt.args
        method = "GET" if request.method == "HEAD" else request.method
        if args[0] == "files":
            return self._file(request, *args[1:])
        self._check_key(request)
        if args == ("faults",) and method in ("GET", "POST"):
            if method == "POST":
                data = _json(request)
                try:
                    self.faults.update(data)
                except (ValueError, TypeError, AttributeError) as exc:
                    raise ApiError(400, {"detail": str(exc)}) from None
            return _ok(self.faults.as_dict())
        if args == ("faults", "clear") and method == "POST":
            self.faults.clear()
            return _ok(self.faults.as_dict())
        if args in (("revoke",), ("restore",)) and method == "POST":
            key = _json(request).get("key")
            if not isinstance(key, str) or not key:
                raise ApiError(400, {"key": ["This field is required."]})
            if args == ("revoke",):
                self.revoked.add(key)
            else:
                self.revoked.discard(key)
            return _ok({"detail": "Key revoked." if args == ("revoke",) else "Key restored."})
        if len(args) == 2 and args[0] == "objects" and method == "GET":
            if args[1] not in OBJECT_KINDS:
                raise ApiError(404, NOT_FOUND)
            return _ok(objects.inventory(self.store, args[1], base_url))
        if args == ("requests",) and method in ("GET", "DELETE"):
            if method == "DELETE":
                self.clear_requests()
            return _ok([list(item) for item in self.requests()])
        if args == ("seed",) and method == "GET":
            return _ok(self.seed.__dict__)
        raise ApiError(404, NOT_FOUND)

    def _check_key(self, request: Request) -> None:
        word, _, key = request.headers.get("X-Arcsecond-API-Authorization", "").partition(" ")
        if word.lower() != "key" or not hmac.compare_digest(key.strip(), self.seed.upload_key):
            raise ApiError(401, {"detail": "Invalid key."}, {"WWW-Authenticate": "Key"})

    def _file(self, request: Request, dataset_uuid: str, filename: str) -> Response:
        word, _, key = request.headers.get("X-Arcsecond-API-Authorization", "").partition(" ")
        key = key.strip()
        user = self.store.user_by_key(key) if word.lower() == "key" and key else None
        if user is None or key in self.revoked:
            raise ApiError(401, {"detail": "Invalid key."}, {"WWW-Authenticate": "Key"})
        row = self.store.datafile(dataset_uuid, filename)
        if row is None or not self._may_read(user["username"], row):
            raise ApiError(404, NOT_FOUND)
        path = self.store.file_path(dataset_uuid, filename)
        handle = open(path, "rb")  # closed by the server when the answer is sent
        body = wrap_file(request.environ, handle, buffer_size=1 << 20)
        return Response(body, mimetype="application/octet-stream", direct_passthrough=True,
                        headers={"Content-Length": str(path.stat().st_size)})

    def _may_read(self, username: str, row: dict) -> bool:
        if row["org"] is None:
            return row["owner"] == username
        return self.store.role(username, row["org"]) is not None


def _ok(body: object) -> Response:
    return json_response(200, body)


def _json(request: Request) -> dict:
    raw = get_input_stream(request.environ).read(1 << 20)
    try:
        data = json.loads(raw or b"{}")
    except ValueError as exc:
        raise ApiError(400, {"detail": f"JSON parse error - {exc}"}) from None
    if not isinstance(data, dict):
        raise ApiError(400, {"detail": "Expected a JSON object."})
    return data
