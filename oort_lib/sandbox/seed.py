"""The accounts, keys, organisations and telescopes every sandbox starts with.

The keys are fixed, documented test values (not secrets): tests and the demo need to know
them in advance, and their shared prefix ``5a4db0c5e7e57ca11ab1e`` makes them easy to grep
for when checking that a key never leaks into logs or files.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Seed:
    """What a fresh sandbox knows. All seeded users share ``password``."""

    username: str = "astro"
    password: str = "sandbox-password"
    email: str = "astro@sandbox.example"
    upload_key: str = "5a4db0c5e7e57ca11ab1e0000000c0de"
    api_key: str = "5a4db0c5e7e57ca11ab1e00000a91c0d"
    organisation: str = "robotland"
    organisation_name: str = "Robot Land"
    role: str = "admin"
    telescope_uuid: str = "7e1e5c0e-5a4d-4b0c-8000-000000000001"
    telescope_name: str = "Robot Refractor 1"
    telescope_alias: str = "rt1"
    # A second organisation telescope, without alias (the contract says it may be empty).
    spectro_telescope_uuid: str = "7e1e5c0e-5a4d-4b0c-8000-000000000003"
    spectro_telescope_name: str = "Robot Spectrograph"
    personal_telescope_uuid: str = "7e1e5c0e-5a4d-4b0c-8000-000000000002"
    personal_telescope_name: str = "Backyard Newtonian"
    personal_telescope_alias: str = "backyard"
    member_username: str = "comet"
    member_email: str = "comet@sandbox.example"
    member_key: str = "5a4db0c5e7e57ca11ab1e00000000b0b"
    member_api_key: str = "5a4db0c5e7e57ca11ab1e0000a91b0b0"
    guest_username: str = "meteor"
    guest_email: str = "meteor@sandbox.example"
    guest_key: str = "5a4db0c5e7e57ca11ab1e0000000f00d"
    guest_api_key: str = "5a4db0c5e7e57ca11ab1e0000a91f00d"
    # The main user is not a member here; the member user is its admin.
    other_organisation: str = "farland"
    other_organisation_name: str = "Far Land"
    other_telescope_uuid: str = "7e1e5c0e-5a4d-4b0c-8000-000000000004"
    other_telescope_name: str = "Far Away Astrograph"
    other_telescope_alias: str = "fa1"

    def describe(self) -> list[str]:
        """Lines for the CLI to print when the sandbox starts (it prints the URL itself)."""
        return [
            f"username: {self.username} (or {self.email})",
            f"password: {self.password}",
            f"upload key: {self.upload_key}",
            f"organisation: {self.organisation} ({self.organisation_name}), "
            f"role: {self.role}",
            f"telescope: {self.telescope_name} (alias {self.telescope_alias}, "
            f"uuid {self.telescope_uuid}) in {self.organisation}",
            f"telescope: {self.spectro_telescope_name} (no alias, "
            f"uuid {self.spectro_telescope_uuid}) in {self.organisation}",
            f"personal telescope: {self.personal_telescope_name} "
            f"(alias {self.personal_telescope_alias}, uuid {self.personal_telescope_uuid})",
            f"other users (same password): {self.member_username} "
            f"(member of {self.organisation}, upload key {self.member_key}), "
            f"{self.guest_username} (guest of {self.organisation}, "
            f"upload key {self.guest_key})",
        ]

    def users(self) -> list[dict[str, str]]:
        return [
            {"username": self.username, "email": self.email,
             "upload_key": self.upload_key, "api_key": self.api_key},
            {"username": self.member_username, "email": self.member_email,
             "upload_key": self.member_key, "api_key": self.member_api_key},
            {"username": self.guest_username, "email": self.guest_email,
             "upload_key": self.guest_key, "api_key": self.guest_api_key},
        ]

    def organisations(self) -> list[tuple[str, str]]:
        return [
            (self.organisation, self.organisation_name),
            (self.other_organisation, self.other_organisation_name),
        ]

    def memberships(self) -> list[tuple[str, str, str]]:
        """(username, subdomain, role)."""
        return [
            (self.username, self.organisation, self.role),
            (self.member_username, self.organisation, "member"),
            (self.member_username, self.other_organisation, "admin"),
            (self.guest_username, self.organisation, "guest"),
        ]

    def telescopes(self) -> list[dict[str, object]]:
        """Each with ``org`` (subdomain) or ``owner`` (username) for personal ones."""
        site = "0b5e0000-5a4d-4b0c-8000-000000000001"
        return [
            {"uuid": self.telescope_uuid, "name": self.telescope_name,
             "alias": self.telescope_alias, "org": self.organisation, "owner": None,
             "coordinates": {"longitude": -70.7375, "latitude": -30.1692, "height": 2207.0},
             "observing_site": site},
            {"uuid": self.spectro_telescope_uuid, "name": self.spectro_telescope_name,
             "alias": "", "org": self.organisation, "owner": None,
             "coordinates": None, "observing_site": site},
            {"uuid": self.personal_telescope_uuid, "name": self.personal_telescope_name,
             "alias": self.personal_telescope_alias, "org": None, "owner": self.username,
             "coordinates": None, "observing_site": None},
            {"uuid": self.other_telescope_uuid, "name": self.other_telescope_name,
             "alias": self.other_telescope_alias, "org": self.other_organisation,
             "owner": None, "coordinates": None, "observing_site": None},
        ]
