"""Answers shared by the sandbox's handlers: JSON bodies and the error they raise."""

from __future__ import annotations

import json

from werkzeug.wrappers import Response

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
