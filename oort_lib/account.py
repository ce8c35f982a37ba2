"""Logging in: a password (or an upload key) becomes stored credentials."""

from __future__ import annotations

from .credentials import Credentials


def login_with_password(client, username: str, password: str) -> Credentials:
    """Token, then profile and memberships, then the upload key. The token is not kept.

    Raises AuthError for refused credentials, and the api errors otherwise.
    """
    token = client.token(username, password)
    profile = client.profile(username, token)
    canonical = profile.get("username") or username
    key = client.upload_key(canonical, token)
    memberships = {}
    for membership in profile.get("memberships") or []:
        org = membership.get("organisation") or {}
        if org.get("subdomain"):
            memberships[org["subdomain"]] = membership.get("role") or "member"
    return Credentials(key=key, username=canonical, api=client.base, memberships=memberships)


def login_with_key(client, key: str) -> Credentials:
    """Check an upload key by reading the personal telescopes with it.

    Raises AuthError when the server refuses the key.
    """
    client.session.auth.key = key
    client.telescopes(None)
    return Credentials(key=key, username=None, api=client.base)
