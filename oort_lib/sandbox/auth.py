"""Who is asking: key and token checks, logins of both generations, profiles, organisations.

A mixin of ``App``: it reads ``self.store``, ``self.revoked`` and ``self.dialect``.
"""

from __future__ import annotations

import hmac
import secrets
from datetime import datetime, timedelta, timezone

from werkzeug.wrappers import Request, Response

from oort_lib.sandbox.responses import (
    INVALID_KEY,
    NO_CREDENTIALS,
    NO_PERMISSION,
    NOT_FOUND,
    ApiError,
    body_data,
    json_response,
)
from oort_lib.sandbox.store import Store

# Roles that may write in an organisation: 2026 calls the top role "owner", 2021
# called it "superadmin".
WRITERS = frozenset({"owner", "superadmin", "admin", "member"})
REQUIRED = "This field is required."
BAD_PAIR = {"detail": "Invalid username or key."}
BAD_MEMBERSHIP = {"detail": "Invalid or unknown membership."}


class AuthHandlers:
    store: Store
    revoked: set[str]
    dialect: str

    # --- checks ---------------------------------------------------------------------------

    def _key_user(self, request: Request):
        """The user of the request's key header. Raises ApiError 401 without a valid one."""
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
        """The user of an ``Authorization: Token`` header (also ``Bearer`` for 2026 JWTs),
        or of the key header when ``allow_key``. Raises ApiError 401 otherwise."""
        header = request.headers.get("Authorization", "").strip()
        words = ("token",) if self.dialect == "2021" else ("token", "bearer")
        if header:
            word, _, token = header.partition(" ")
            user = self.store.user_by_token(token.strip()) if word.lower() in words else None
            if user is None:
                raise ApiError(401, {"detail": "Invalid token."}, {"WWW-Authenticate": "Token"})
            return user
        if allow_key and request.headers.get("X-Arcsecond-API-Authorization"):
            return self._key_user(request)
        raise ApiError(401, NO_CREDENTIALS, {"WWW-Authenticate": "Token"})

    def _pair_user(self, data: dict):
        """The user whose username (or e-mail) and key (upload or access) these are."""
        user = self.store.user_by_login(str(data["username"]))
        key = str(data["key"])
        if user is None or key in self.revoked:
            return None
        known = (user["upload_key"], user["api_key"])
        return user if any(hmac.compare_digest(key, k) for k in known) else None

    # --- logins ---------------------------------------------------------------------------

    def _token(self, request: Request) -> Response:
        data = body_data(request)
        _require(data, ("username", "password"))
        user = self.store.user_by_login(str(data["username"]))
        if user is None or not self.store.check_password(user, str(data["password"])):
            raise ApiError(401, {"detail": "Unable to log in with provided credentials."})
        body: dict[str, object] = {}
        if self.dialect != "2026":
            body["token"] = self.store.new_token(user["username"])
        if self.dialect != "2021":
            # The web and desktop apps' JWT pair; opaque tokens are enough for a sandbox.
            stamp = datetime.now(timezone.utc)
            body.update({
                "access": self.store.new_token(user["username"]),
                "refresh": secrets.token_hex(32),
                "username": user["username"],
                "access_exp": _iso(stamp + timedelta(minutes=30)),
                "refresh_exp": _iso(stamp + timedelta(days=7)),
            })
        return json_response(200, body)

    def _verify(self, request: Request) -> Response:
        data = body_data(request)
        _require(data, ("username", "key"))
        if self._pair_user(data) is None:
            raise ApiError(401, BAD_PAIR)
        return Response(status=204)

    def _verify_org(self, request: Request) -> Response:
        data = body_data(request)
        _require(data, ("username", "key", "organisation"))
        user = self._pair_user(data)
        role = self.store.role(user["username"], str(data["organisation"])) if user else None
        if role not in WRITERS:
            raise ApiError(403, BAD_MEMBERSHIP)
        return Response(status=204)

    # --- profiles and organisations -------------------------------------------------------

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


def _require(data: object, names: tuple[str, ...]) -> None:
    """Raises ApiError 400, DRF style, when a field is missing or empty."""
    errors = {k: [REQUIRED] for k in names if not isinstance(data, dict) or not data.get(k)}
    if errors:
        raise ApiError(400, errors)


def _iso(when: datetime) -> str:
    return when.isoformat(timespec="seconds").replace("+00:00", "Z")
