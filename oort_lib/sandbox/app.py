"""The sandbox's WSGI application: the Arcsecond API surface of arcsecond-api.md.

Order of checks on a resource request, as Django REST framework does it: route (404),
key (401), organisation (404), membership and role (403), method (405), then the
request itself (404 for unknown objects, 400 for invalid data).
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from urllib.parse import parse_qsl, urlencode

from werkzeug.exceptions import ClientDisconnected
from werkzeug.wrappers import Request, Response
from werkzeug.wsgi import get_input_stream

from . import objects, page
from .admin import Admin
from .faults import DropConnection, Faults, Plan
from .multipart import MultipartError, boundary_of, receive_file
from .responses import (
    INVALID_KEY,
    NO_CREDENTIALS,
    NO_PERMISSION,
    NOT_FOUND,
    ApiError,
    json_response,
)
from .routes import METHODS, Route, raw_path, route
from .store import Space, Store

log = logging.getLogger("oort_lib.sandbox")

WRITERS = frozenset({"superadmin", "admin", "member"})
MAX_JSON_BODY = 1 << 20
RESET_READ = 256 * 1024  # bytes of an upload read before a "reset" fault cuts it


class App:
    def __init__(self, *, store: Store, faults: Faults, page_size: int,
                 revoked: set[str], record: Callable[[str, str, int], None],
                 stopping: threading.Event, admin: Admin):
        self.store = store
        self.faults = faults
        self.page_size = max(1, int(page_size))
        self.revoked = revoked
        self.record = record
        self.stopping = stopping
        self.admin = admin

    def __call__(self, environ, start_response):
        request = Request(environ)
        path = raw_path(environ)
        method = request.method
        rt = route(path)
        if rt is not None and rt.is_admin:
            try:
                response = self.admin.handle(rt, request, self._base(request))
            except ApiError as exc:
                response = json_response(exc.status, exc.body, exc.headers)
            return response(environ, start_response)
        plan = self.faults.plan(path, upload=rt is not None and rt.is_upload(method))
        try:
            response = self._answer(plan, rt, request)
        except (DropConnection, ConnectionError):
            self.record(method, path, 0)
            raise
        except Exception:
            # A bug or a full disk: answer like a real server would, and say why in the log.
            log.exception("sandbox: error while answering %s %s", method, path)
            response = json_response(500, {"detail": "A server error occurred."})
        self.record(method, path, response.status_code)
        if plan.delay:
            self.stopping.wait(plan.delay)
        return response(environ, start_response)

    # --- faults ---------------------------------------------------------------------------

    def _answer(self, plan: Plan, rt: Route | None, request: Request) -> Response:
        if plan.error == 502:
            return _bad_gateway()
        if plan.error:
            headers = {"Retry-After": self.faults.retry_after_header()}
            messages = {500: "A server error occurred.",
                        503: "Service temporarily unavailable, try again later."}
            return json_response(plan.error, {"detail": messages[plan.error]},
                                 headers if plan.error == 503 else None)
        if plan.throttle:
            wait = self.faults.retry_after_header()
            return json_response(
                429, {"detail": f"Request was throttled. Expected available in {wait} seconds."},
                {"Retry-After": wait},
            )
        try:
            response = self._dispatch(rt, request, plan.reset)
        except ApiError as exc:
            response = json_response(exc.status, exc.body, exc.headers)
        if plan.lost == "502":
            return _bad_gateway()
        if plan.lost == "drop":
            raise DropConnection()
        return response

    # --- dispatch -------------------------------------------------------------------------

    def _dispatch(self, rt: Route | None, request: Request, reset: bool) -> Response:
        if rt is None:
            raise ApiError(404, NOT_FOUND)
        method = "GET" if request.method == "HEAD" else request.method
        if rt.name == "page":
            self._allow(rt, method)
            html = page.render(self.store)
            return Response(html, mimetype="text/html")
        if not rt.is_resource:
            self._allow(rt, method)
            return getattr(self, "_" + rt.name)(request, *rt.args)
        user = self._key_user(request)
        space = self._space(rt.org, user["username"], method)
        self._allow(rt, method)
        handler = getattr(self, "_" + rt.name)
        return handler(request, method, space, *rt.args, reset=reset)

    def _allow(self, rt: Route, method: str) -> None:
        allowed = METHODS[rt.name]
        if method not in allowed:
            raise ApiError(405, {"detail": f'Method "{method}" not allowed.'},
                           {"Allow": ", ".join(allowed)})

    def _key_user(self, request: Request):
        header = request.headers.get("X-Arcsecond-API-Authorization", "")
        if not header.strip():
            raise ApiError(401, NO_CREDENTIALS, {"WWW-Authenticate": "Key"})
        word, _, key = header.strip().partition(" ")
        key = key.strip()
        user = self.store.user_by_key(key) if word.lower() == "key" and key else None
        if user is None or key in self.revoked:
            raise ApiError(401, INVALID_KEY, {"WWW-Authenticate": "Key"})
        return user

    def _token_user(self, request: Request, allow_key: bool):
        header = request.headers.get("Authorization", "").strip()
        if header:
            word, _, token = header.partition(" ")
            user = self.store.user_by_token(token.strip()) if word.lower() == "token" else None
            if user is None:
                raise ApiError(401, {"detail": "Invalid token."}, {"WWW-Authenticate": "Token"})
            return user
        if allow_key and request.headers.get("X-Arcsecond-API-Authorization"):
            return self._key_user(request)
        raise ApiError(401, NO_CREDENTIALS, {"WWW-Authenticate": "Token"})

    def _space(self, org: str | None, username: str, method: str) -> Space:
        if org is None:
            return (None, username)
        if self.store.organisation(org) is None:
            raise ApiError(404, NOT_FOUND)
        role = self.store.role(username, org)
        if role is None:
            raise ApiError(403, NO_PERMISSION)
        if method not in ("GET", "OPTIONS") and role not in WRITERS:
            raise ApiError(403, NO_PERMISSION)
        return (org, username)

    # --- authentication, profiles, organisations ------------------------------------------

    def _token(self, request: Request) -> Response:
        data = _body_data(request)
        errors = {k: ["This field is required."] for k in ("username", "password")
                  if not isinstance(data, dict) or not data.get(k)}
        if errors:
            raise ApiError(400, errors)
        user = self.store.user_by_login(str(data["username"]))
        if user is None or not self.store.check_password(user, str(data["password"])):
            raise ApiError(401, {"detail": "Unable to log in with provided credentials."})
        return json_response(200, {"token": self.store.new_token(user["username"])})

    def _own_profile(self, request: Request, ident: str, allow_key: bool):
        viewer = self._token_user(request, allow_key)
        target = self.store.user_by_login(ident)
        if target is None:
            raise ApiError(404, NOT_FOUND)
        if target["username"] != viewer["username"]:
            raise ApiError(403, NO_PERMISSION)
        return target

    def _profile(self, request: Request, ident: str) -> Response:
        user = self._own_profile(request, ident, allow_key=True)
        return json_response(200, self.store.profile(user))

    def _uploadkey(self, request: Request, ident: str) -> Response:
        user = self._own_profile(request, ident, allow_key=False)
        return json_response(200, {"upload_key": user["upload_key"]})

    def _apikey(self, request: Request, ident: str) -> Response:
        user = self._own_profile(request, ident, allow_key=False)
        return json_response(200, {"api_key": user["api_key"]})

    def _organisation(self, request: Request, subdomain: str) -> Response:
        self._token_user(request, allow_key=True)
        found = self.store.organisation(subdomain)
        if found is None:
            raise ApiError(404, NOT_FOUND)
        return json_response(200, found)

    # --- telescopes, night logs, observations, calibrations, datasets ---------------------

    def _telescopes(self, request, method, space, reset=False) -> Response:
        return json_response(200, self.store.telescopes(space))

    def _telescope(self, request, method, space, ident, reset=False) -> Response:
        found = self.store.telescope(space, ident)
        if found is None:
            raise ApiError(404, NOT_FOUND)
        return json_response(200, found)

    def _list(self, request, method, space, kind, reset=False) -> Response:
        if method == "POST":
            values, errors = objects.validate(self.store, kind, space, _body_data(request))
            if errors:
                raise ApiError(400, errors)
            return json_response(201, objects.public(kind, self.store.create(kind, space, values)))
        filters = {k: v for k, v in request.args.items() if k != "page" and v != ""}
        return self._paginated(request, lambda offset, limit: self.store.find(
            kind, space, filters, offset, limit), lambda row: objects.public(kind, row))

    def _detail(self, request, method, space, kind, uuid, reset=False) -> Response:
        row = self.store.get(kind, space, uuid)
        if row is None:
            raise ApiError(404, NOT_FOUND)
        return json_response(200, objects.public(kind, row))

    def _paginated(self, request: Request, fetch, show) -> Response:
        try:
            number = int(request.args.get("page", "1"))
        except ValueError:
            number = 0
        if number < 1:
            raise ApiError(404, {"detail": "Invalid page."})
        size = self.page_size
        count, rows = fetch((number - 1) * size, size)
        if number > 1 and not rows:
            raise ApiError(404, {"detail": "Invalid page."})
        more = (number - 1) * size + len(rows) < count
        return json_response(200, {
            "count": count,
            "next": self._page_url(request, number + 1) if more else None,
            "previous": self._page_url(request, number - 1) if number > 1 else None,
            "results": [show(row) for row in rows],
        })

    def _page_url(self, request: Request, number: int) -> str:
        query = [(k, v) for k, v in request.args.items(multi=True) if k != "page"]
        if number > 1:
            query.append(("page", str(number)))
        url = self._base(request) + raw_path(request.environ)
        return f"{url}?{urlencode(query)}" if query else url

    def _base(self, request: Request) -> str:
        return request.host_url.rstrip("/")

    # --- datafiles ------------------------------------------------------------------------

    def _dataset(self, space: Space, uuid: str) -> dict:
        dataset = self.store.get("datasets", space, uuid)
        if dataset is None:
            raise ApiError(404, NOT_FOUND)
        return dataset

    def _datafiles(self, request, method, space, dataset_uuid, reset=False) -> Response:
        dataset = self._dataset(space, dataset_uuid)
        if method == "GET":
            base = self._base(request)
            return self._paginated(
                request, lambda offset, limit: self.store.datafiles(dataset["uuid"], offset, limit),
                lambda row: objects.datafile_json(row, base))
        return self._receive(request, dataset, None, reset)

    def _datafile(self, request, method, space, dataset_uuid, filename, reset=False) -> Response:
        dataset = self._dataset(space, dataset_uuid)
        row = self.store.datafile(dataset["uuid"], filename)
        if row is None:
            raise ApiError(404, NOT_FOUND)
        if method == "GET":
            return json_response(200, objects.datafile_json(row, self._base(request)))
        return self._receive(request, dataset, filename, reset)

    def _receive(self, request: Request, dataset: dict, replacing: str | None, reset: bool
                 ) -> Response:
        """POST (``replacing`` None) or PATCH/PUT of a datafile's multipart body."""
        boundary = boundary_of(request.headers.get("Content-Type"))
        if boundary is None:
            kind = request.headers.get("Content-Type", "")
            raise ApiError(415, {"detail": f'Unsupported media type "{kind}" in request.'})
        stream = get_input_stream(request.environ)
        if reset:
            stream.read(min(RESET_READ, (request.content_length or 0) // 2))
            raise DropConnection()
        try:
            received = receive_file(stream, boundary, self.store.tmp_dir)
        except MultipartError as exc:
            raise ApiError(400, {"detail": f"Multipart form parse error - {exc}."}) from None
        except ClientDisconnected:
            raise ConnectionError("the client went away during the upload") from None
        if received is None:
            raise ApiError(400, {"file": ["No file was submitted."]})
        try:
            problem = objects.filename_problem(received.filename)
            if replacing is None and problem:
                raise ApiError(400, {"detail": problem})
            if received.size == 0:
                raise ApiError(400, {"file": ["The submitted file is empty."]})
            base = self._base(request)
            if replacing is None:
                row = self.store.add_datafile(dataset, received.filename, received.path,
                                              received.size, received.sha256)
                if row is None:
                    detail = f"{received.filename} already exists in dataset {dataset['uuid']}."
                    raise ApiError(400, {"detail": [detail]})
                return json_response(201, objects.datafile_json(row, base))
            row = self.store.replace_datafile(dataset["uuid"], replacing, received.path,
                                              received.size, received.sha256)
            if row is None:
                raise ApiError(404, NOT_FOUND)
            return json_response(200, objects.datafile_json(row, base))
        finally:
            if received.path.exists():
                received.path.unlink()


def _body_data(request: Request) -> object:
    length = request.content_length
    if length is not None and length > MAX_JSON_BODY:
        raise ApiError(413, {"detail": "Request body too large."})
    raw = get_input_stream(request.environ).read(MAX_JSON_BODY + 1)
    if len(raw) > MAX_JSON_BODY:
        raise ApiError(413, {"detail": "Request body too large."})
    if request.mimetype == "application/x-www-form-urlencoded":
        return dict(parse_qsl(raw.decode("utf-8", "replace")))
    if not raw.strip():
        return {}
    try:
        return json.loads(raw)
    except ValueError as exc:
        raise ApiError(400, {"detail": f"JSON parse error - {exc}"}) from None


def _bad_gateway() -> Response:
    # What a reverse proxy in front of the real API answers: HTML, not JSON.
    html = ("<html><head><title>502 Bad Gateway</title></head><body>"
            "<center><h1>502 Bad Gateway</h1></center><hr><center>nginx</center>"
            "</body></html>\n")
    return Response(html, status=502, mimetype="text/html")
