"""The sandbox's WSGI application: the Arcsecond API surface of docs/arcsecond-api.md.

Order of checks on a resource request, as Django REST framework does it: route (404,
also for a route of the generation the sandbox does not speak), key (401), organisation
(404), membership and role (403), method (405), then the request itself (404 for unknown
objects, 400 for invalid data). Logins and profiles are in auth.py, datafiles in
uploads.py.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from urllib.parse import urlencode

from werkzeug.wrappers import Request, Response

from oort_lib.sandbox import objects, page
from oort_lib.sandbox.admin import Admin
from oort_lib.sandbox.auth import WRITERS, AuthHandlers
from oort_lib.sandbox.faults import DropConnection, Faults, Plan
from oort_lib.sandbox.responses import NO_PERMISSION, NOT_FOUND, ApiError, body_data, json_response
from oort_lib.sandbox.routes import DIALECTS, LISTS, METHODS, Route, raw_path, route
from oort_lib.sandbox.store import Space, Store
from oort_lib.sandbox.trap import Traps
from oort_lib.sandbox.uploads import REFUSAL_KEY, UploadHandlers

log = logging.getLogger("oort_lib.sandbox")

OTHER_HOST = "http://evil.example:1"  # where "other-host" next links point
_PREFIX_KEY = "oort_sandbox.prefix"  # the request's /api prefix, for its page links
_NOUNS = {"telescopes": "Telescope", "files": "Data File", "datafiles": "Data File",
          "nightlogs": "Night Log", "observations": "Observation",
          "calibrations": "Calibration", "datasets": "Dataset"}


class App(AuthHandlers, UploadHandlers):
    """The WSGI application; ``dialect`` is "2021", "2026" or "both" (both route sets).

    Raises ValueError for an unknown dialect.
    """

    def __init__(self, *, store: Store, faults: Faults, page_size: int,
                 revoked: set[str], record: Callable[[str, str, int], None],
                 stopping: threading.Event, admin: Admin, dialect: str = "both",
                 traps: Traps | None = None):
        if dialect not in DIALECTS:
            raise ValueError(f"Unknown dialect {dialect!r}: use one of {', '.join(DIALECTS)}.")
        self.dialect = dialect
        self.store = store
        self.faults = faults
        self.page_size = max(1, int(page_size))
        self.revoked = revoked
        self.record = record
        self.stopping = stopping
        self.admin = admin
        self.traps = traps if traps is not None else Traps()

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
        traps = self.traps.strike(method, path)
        try:
            response = None
            for trap in traps:  # a trap may answer instead (a 5xx, a 429), or hold it
                response = trap.before() if response is None else response
            if response is None:
                response = self._answer(plan, rt, request)
            for trap in traps:
                response = trap.after(response, self.stopping)
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
        body = response(environ, start_response)
        for trap in traps:
            body = trap.sent(body)
        return body

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
        if plan.refusal:
            request.environ[REFUSAL_KEY] = plan.refusal
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
        if rt is None or not rt.served_by(self.dialect):
            raise ApiError(404, NOT_FOUND)
        request.environ[_PREFIX_KEY] = rt.prefix
        method = "GET" if request.method == "HEAD" else request.method
        if rt.name == "page":
            self._allow(rt, method)
            html = page.render(self.store)
            return Response(html, mimetype="text/html")
        if rt.name == "healthcheck":
            self._allow(rt, method)
            return json_response(200, {"status": "ok"})
        if not rt.is_resource:
            self._allow(rt, method)
            return getattr(self, "_" + rt.name)(request, *rt.args)
        user = self._key_user(request)
        space = self._space(rt.org, user["username"], method)
        self._allow(rt, method)
        if method == "OPTIONS":
            return self._options(rt)
        handler = getattr(self, "_" + rt.name)
        return handler(request, method, space, *rt.args, reset=reset)

    def _methods(self, rt: Route) -> tuple[str, ...]:
        allowed = METHODS[rt.name]
        if self.dialect == "2026" and rt.name == "list" and rt.args[0] != "datasets":
            # The server builds night logs, observations and calibrations itself.
            allowed = ("GET",)
        if self.dialect != "2021" and rt.name in LISTS:
            allowed = (*allowed, "OPTIONS")
        return allowed

    def _options(self, rt: Route) -> Response:
        """What DRF answers to OPTIONS on a list view (2026 clients probe with it)."""
        noun = rt.args[0] if rt.name == "list" else rt.name
        return json_response(200, {
            "name": f"{_NOUNS[noun]} List", "description": "",
            "renders": ["application/json"],
            "parses": ["application/json", "multipart/form-data"],
        }, {"Allow": ", ".join(self._methods(rt))})

    def _allow(self, rt: Route, method: str) -> None:
        allowed = self._methods(rt)
        if method not in allowed:
            raise ApiError(405, {"detail": f'Method "{method}" not allowed.'},
                           {"Allow": ", ".join(allowed)})

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

    # --- telescopes, night logs, observations, calibrations, datasets ---------------------

    def _shown(self, telescope: dict) -> dict:
        # The 2021 fields; a 2026 server may also give its site's time zone
        # (docs/arcsecond-api.md, "Telescopes and organisations").
        if self.dialect == "2021":
            return {k: v for k, v in telescope.items() if k != "time_zone"}
        return telescope

    def _telescopes(self, request, method, space, reset=False) -> Response:
        found = [self._shown(t) for t in self.store.telescopes(space)]
        if self.dialect == "2021":
            return json_response(200, found)
        return self._paginated(request, lambda offset, limit: (
            len(found), found[offset:offset + limit]), lambda row: row)

    def _telescope(self, request, method, space, ident, reset=False) -> Response:
        found = self.store.telescope(space, ident)
        if found is None:
            raise ApiError(404, NOT_FOUND)
        return json_response(200, self._shown(found))

    def _list(self, request, method, space, kind, reset=False) -> Response:
        if method == "POST":
            values, errors = objects.validate(self.store, kind, space, body_data(request),
                                              self.dialect)
            if errors:
                raise ApiError(400, errors)
            created = self.store.create(kind, space, values)
            return json_response(201, objects.public(kind, created, self.dialect))
        filters = {k: v for k, v in request.args.items() if k != "page" and v != ""}
        return self._paginated(request, lambda offset, limit: self.store.find(
            kind, space, filters, offset, limit),
            lambda row: objects.public(kind, row, self.dialect))

    def _detail(self, request, method, space, kind, uuid, reset=False) -> Response:
        row = self.store.get(kind, space, uuid)
        if row is None:
            raise ApiError(404, NOT_FOUND)
        return json_response(200, objects.public(kind, row, self.dialect))

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
        base, path = self._base(request), raw_path(request.environ)
        prefix = request.environ.get(_PREFIX_KEY, "")
        if self.faults.next_links == "other-host":
            base = OTHER_HOST
        elif self.faults.next_links == "no-prefix" and prefix and path.startswith(prefix + "/"):
            path = path[len(prefix):]
        url = base + path
        return f"{url}?{urlencode(query)}" if query else url

    def _base(self, request: Request) -> str:
        return request.host_url.rstrip("/")


def _bad_gateway() -> Response:
    # What a reverse proxy in front of the real API answers: HTML, not JSON.
    html = ("<html><head><title>502 Bad Gateway</title></head><body>"
            "<center><h1>502 Bad Gateway</h1></center><hr><center>nginx</center>"
            "</body></html>\n")
    return Response(html, status=502, mimetype="text/html")
