"""Answers shared by the sandbox's handlers: JSON bodies and the error they raise."""

from __future__ import annotations

import json
from urllib.parse import parse_qsl

from werkzeug.wrappers import Request, Response
from werkzeug.wsgi import get_input_stream

NOT_FOUND = {"detail": "Not found."}
NO_PERMISSION = {"detail": "You do not have permission to perform this action."}
NO_CREDENTIALS = {"detail": "Authentication credentials were not provided."}
INVALID_KEY = {"detail": "Invalid key."}


class ApiError(Exception):
    """Raised by a handler; the app turns it into a JSON answer."""

    def __init__(self, status: int, body: object, headers: dict[str, str] | None = None):
        super().__init__(status)
        self.status = status
        self.body = body
        self.headers = headers or {}


def json_response(status: int, body: object, headers: dict[str, str] | None = None) -> Response:
    return Response(json.dumps(body), status=status, headers=headers,
                    mimetype="application/json")


MAX_JSON_BODY = 1 << 20


def body_data(request: Request) -> object:
    """The JSON (or form-encoded) body of a small request.

    Raises ApiError: 413 for a body over 1 MiB, 400 for invalid JSON.
    """
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
