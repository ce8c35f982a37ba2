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
    # A second personal telescope, whose site has a time zone (a server may give one):
    # its nights follow Hawaii's clock, not mean solar time at its longitude.
    zoned_telescope_uuid: str = "7e1e5c0e-5a4d-4b0c-8000-000000000006"
    zoned_telescope_name: str = "Mauna Kea Astrograph"
    zoned_telescope_zone: str = "Pacific/Honolulu"
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
    # Arcsecond.local: a self-hosted install is one organisation, always called "local".
    local_organisation: str = "local"
    local_organisation_name: str = "Arcsecond.local"
    local_role: str = "owner"
    local_telescope_uuid: str = "7e1e5c0e-5a4d-4b0c-8000-000000000005"
    local_telescope_name: str = "Local Dobsonian"

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
            f"organisation: {self.local_organisation} ({self.local_organisation_name}), "
            f"role: {self.local_role}",
            f"telescope: {self.local_telescope_name} (no alias, "
            f"uuid {self.local_telescope_uuid}) in {self.local_organisation}",
            f"personal telescope: {self.personal_telescope_name} "
            f"(alias {self.personal_telescope_alias}, uuid {self.personal_telescope_uuid})",
            f"personal telescope: {self.zoned_telescope_name} (no alias, "
            f"uuid {self.zoned_telescope_uuid}, time zone {self.zoned_telescope_zone})",
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
            (self.local_organisation, self.local_organisation_name),
        ]

    def memberships(self) -> list[tuple[str, str, str]]:
        """(username, subdomain, role)."""
        return [
            (self.username, self.organisation, self.role),
            (self.member_username, self.organisation, "member"),
            (self.member_username, self.other_organisation, "admin"),
            (self.guest_username, self.organisation, "guest"),
            (self.username, self.local_organisation, self.local_role),
            (self.member_username, self.local_organisation, "member"),
        ]

    def telescopes(self) -> list[dict[str, object]]:
        """Each with ``org`` (subdomain) or ``owner`` (username) for personal ones, and
        ``time_zone`` (an IANA name or None: the site's, where the server knows it)."""
        site = "0b5e0000-5a4d-4b0c-8000-000000000001"
        return [dict({"time_zone": None}, **t) for t in self._telescopes(site)]

    def _telescopes(self, site: str) -> list[dict[str, object]]:
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
            # Nine hours east of Greenwich: its local nights differ visibly from UTC ones.
            {"uuid": self.local_telescope_uuid, "name": self.local_telescope_name,
             "alias": "", "org": self.local_organisation, "owner": None,
             "coordinates": {"longitude": 135.0, "latitude": 35.0, "height": 100.0},
             "observing_site": None},
            {"uuid": self.zoned_telescope_uuid, "name": self.zoned_telescope_name,
             "alias": "", "org": None, "owner": self.username,
             "coordinates": {"longitude": -155.4681, "latitude": 19.8207, "height": 4205.0},
             "observing_site": None, "time_zone": self.zoned_telescope_zone},
        ]


def banner_lines(seed: Seed, url: str, dialect: str, api_prefix: str) -> list[str]:
    """What a person needs to point a client at a running sandbox, one labelled fact a line."""
    lines = [
        f"API URL: {url}",
        f"dialect: {dialect}",
        f"page: {url}/",
        f"username: {seed.username}",
        f"e-mail: {seed.email}",
        f"password: {seed.password}",
        f"upload key: {seed.upload_key}",
        f"access key: {seed.api_key}",
    ]
    roles = {sub: role for user, sub, role in seed.memberships() if user == seed.username}
    names = dict(seed.organisations())
    for subdomain, role in roles.items():
        lines.append(f"organisation: {subdomain} ({names[subdomain]}), role: {role}")
    for t in seed.telescopes():
        alias = f" (alias {t['alias']})" if t["alias"] else ""
        if t["owner"] == seed.username:
            lines.append(f"personal telescope: {t['name']} {t['uuid']}{alias}")
        elif t["org"] in roles:
            lines.append(f"organisation telescope ({t['org']}): {t['name']} {t['uuid']}{alias}")
    lines += [
        f"other user: {seed.member_username}, upload key {seed.member_key} "
        f"(member of {seed.organisation} and {seed.local_organisation}, "
        f"admin of {seed.other_organisation})",
        f"other user: {seed.guest_username}, upload key {seed.guest_key} "
        f"(guest of {seed.organisation})",
    ]
    if dialect != "2021":
        lines.append(f"Arcsecond.local style: {url}{api_prefix} with organisation "
                     f"{seed.local_organisation}")
    return lines
