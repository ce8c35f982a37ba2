"""The sandbox server honours the Arcsecond API contract, over real HTTP."""

from __future__ import annotations

import re

import requests
from sandbox_api import DATE, SEED, Api, org

from oort_lib.sandbox import Sandbox

# --- seed ---------------------------------------------------------------------------------


def test_seed_keys_are_distinct_documented_test_values():
    keys = [SEED.upload_key, SEED.api_key, SEED.member_key, SEED.guest_key,
            SEED.member_api_key, SEED.guest_api_key]
    assert len(set(keys)) == len(keys)
    assert all(re.fullmatch(r"[0-9a-f]{32}", k) for k in keys)
    text = "\n".join(SEED.describe())
    for expected in (SEED.username, SEED.password, SEED.upload_key, SEED.organisation,
                     "role: admin", SEED.telescope_name, SEED.telescope_alias):
        assert expected in text


def test_seeding_is_idempotent_across_restarts(tmp_path):
    with Sandbox(tmp_path / "data") as first:
        ds = Api(first).chain()
        token = first_token(first)
    with Sandbox(tmp_path / "data") as second:
        api = Api(second)
        assert api.get(f"/datasets/{ds['uuid']}/").json() == ds
        assert len(second.objects("nightlogs")) == 1
        assert org(second).get("/telescopes/").json()["count"] == 2
        profile = api.get(f"/profiles/{SEED.username}/").json()
        assert [m["organisation"]["subdomain"] for m in profile["memberships"]] == [
            "robotland", "local"]
        # Login tokens are for the login exchange only, but they survive a restart too.
        assert api.get(f"/profiles/{SEED.username}/uploadkey/",
                       headers={"Authorization": f"Token {token}"}).status_code == 200


def first_token(sb: Sandbox) -> str:
    r = requests.post(sb.url + "/auth/token/", timeout=10,
                      json={"username": SEED.username, "password": SEED.password})
    assert r.status_code == 200, r.text
    return r.json()["token"]


# --- authentication -----------------------------------------------------------------------


def test_login_with_username_or_email_then_profile_and_keys(sb):
    anon = Api(sb, key=None)
    for login in (SEED.username, SEED.email, SEED.email.upper()):
        r = anon.post("/auth/token/", json={"username": login, "password": SEED.password})
        assert r.status_code == 200, r.text
        token = {"Authorization": f"Token {r.json()['token']}"}
        profile = anon.get(f"/profiles/{login}/", headers=token)
        assert profile.status_code == 200
        body = profile.json()
        assert body["username"] == SEED.username
        assert body["memberships"][0] == {
            "pk": body["memberships"][0]["pk"], "date_joined": "2020-09-01", "role": "admin",
            "organisation": {"pk": body["memberships"][0]["organisation"]["pk"],
                             "name": SEED.organisation_name, "subdomain": SEED.organisation},
        }
        assert [(m["role"], m["organisation"]["subdomain"])
                for m in body["memberships"][1:]] == [("owner", "local")]
        assert set(body) >= {"pk", "first_name", "last_name", "email", "membership_date"}
        assert anon.get(f"/profiles/{SEED.username}/uploadkey/", headers=token).json() == {
            "upload_key": SEED.upload_key}
        assert anon.get(f"/profiles/{SEED.username}/apikey/", headers=token).json() == {
            "api_key": SEED.api_key}


def test_login_refusals(sb):
    anon = Api(sb, key=None)
    r = anon.post("/auth/token/", json={"username": SEED.username, "password": "nope"})
    assert r.status_code == 401
    assert r.json() == {"detail": "Unable to log in with provided credentials."}
    r = anon.post("/auth/token/", json={"username": "nobody", "password": SEED.password})
    assert r.status_code == 401
    r = anon.post("/auth/token/", json={"username": SEED.username})
    assert r.status_code == 400 and r.json() == {"password": ["This field is required."]}
    assert anon.get(f"/profiles/{SEED.username}/uploadkey/").status_code == 401
    bad = {"Authorization": "Token 0000"}
    assert anon.get(f"/profiles/{SEED.username}/uploadkey/", headers=bad).status_code == 401
    token = {"Authorization": f"Token {first_token(sb)}"}
    assert anon.get(f"/profiles/{SEED.guest_username}/apikey/", headers=token).status_code == 403
    assert anon.get("/profiles/ghost/", headers=token).status_code == 404


def test_profile_with_key_but_keys_need_a_token(sb):
    api = Api(sb)
    assert api.get(f"/profiles/{SEED.username}/").json()["username"] == SEED.username
    assert api.get(f"/profiles/{SEED.username}/apikey/").status_code == 401


def test_key_header_is_checked_on_every_resource(sb):
    for path in ("/nightlogs/", "/telescopes/", "/robotland/nightlogs/",
                 "/robotland/telescopes/rt1/", "/datasets/x/datafiles/"):
        r = Api(sb, key=None).get(path)
        assert r.status_code == 401, path
        assert "detail" in r.json()
        r = Api(sb, key="0" * 32).get(path)
        assert (r.status_code, r.json()) == (401, {"detail": "Invalid key."}), path
    wrong_word = requests.get(sb.url + "/nightlogs/", timeout=10, headers={
        "X-Arcsecond-API-Authorization": f"Token {SEED.upload_key}"})
    assert wrong_word.status_code == 401
    assert Api(sb, key=SEED.api_key).get("/nightlogs/").status_code == 200


def test_revoked_key_is_refused_until_restored(sb):
    api = Api(sb)
    assert api.get("/nightlogs/").status_code == 200
    sb.revoke_key(SEED.upload_key)
    r = api.get("/nightlogs/")
    assert (r.status_code, r.json()) == (401, {"detail": "Invalid key."})
    assert Api(sb, key=SEED.api_key).get("/nightlogs/").status_code == 200
    sb.restore_key(SEED.upload_key)
    assert api.get("/nightlogs/").status_code == 200


# --- organisations and roles --------------------------------------------------------------


def test_organisations_and_roles(sb):
    api = Api(sb)
    assert api.get("/organisations/robotland/").json() == {
        "pk": 1, "subdomain": "robotland", "name": "Robot Land"}
    assert api.get("/organisations/nowhere/").json() == {"detail": "Not found."}
    assert api.get("/organisations/nowhere/").status_code == 404
    assert org(sb, subdomain="nowhere").get("/nightlogs/").status_code == 404
    assert org(sb, subdomain="nowhere").get("/nightlogs/").json() == {"detail": "Not found."}
    # The main user is not a member of the other organisation: 403, reads included.
    outsider = org(sb, subdomain=SEED.other_organisation)
    assert outsider.get("/nightlogs/").status_code == 403
    assert outsider.post("/nightlogs/", json={"date": DATE}).status_code == 403
    # Guests read, never write.
    guest = org(sb, SEED.guest_key)
    assert guest.get("/nightlogs/").status_code == 200
    assert guest.get("/telescopes/").status_code == 200
    r = guest.post("/nightlogs/", json={"date": DATE, "telescope": SEED.telescope_uuid})
    assert r.status_code == 403 and "detail" in r.json()
    # Members write, and everyone in the organisation sees the same objects.
    member = org(sb, SEED.member_key)
    log = member.create("nightlogs", date=DATE, telescope=SEED.telescope_uuid)
    assert guest.get("/nightlogs/").json()["results"] == [log]
    assert org(sb).get(f"/nightlogs/{log['uuid']}/").json() == log
    assert Api(sb).get(f"/nightlogs/{log['uuid']}/").status_code == 404  # not personal


def test_guest_cannot_upload_to_an_existing_dataset(sb):
    ds = org(sb).chain(telescope=SEED.telescope_uuid)
    r = org(sb, SEED.guest_key).upload(ds["uuid"], "a.fits", b"x" * 10)
    assert r.status_code == 403
    assert sb.objects("datafiles") == []


def test_personal_spaces_are_private(sb):
    mine = Api(sb).chain()
    theirs = Api(sb, SEED.member_key)
    assert theirs.get("/datasets/").json()["count"] == 0
    assert theirs.get(f"/datasets/{mine['uuid']}/").status_code == 404
    assert theirs.upload(mine["uuid"], "a.fits", b"x").status_code == 404


# --- telescopes ---------------------------------------------------------------------------


def test_telescopes_are_plain_arrays_with_detail_by_uuid_or_alias(tmp_path):
    # Plain arrays are the 2021 generation's; the 2026 one pages them (test_sandbox_2026).
    with Sandbox(tmp_path / "sandbox", dialect="2021") as sb:
        _check_telescopes(sb)


def _check_telescopes(sb):
    api = org(sb)
    telescopes = api.get("/telescopes/").json()
    assert isinstance(telescopes, list)
    assert {t["uuid"] for t in telescopes} == {SEED.telescope_uuid, SEED.spectro_telescope_uuid}
    for t in telescopes:
        assert set(t) == {"uuid", "name", "alias", "coordinates", "observing_site"}
    by_alias = api.get("/telescopes/rt1/").json()
    assert by_alias == api.get(f"/telescopes/{SEED.telescope_uuid}/").json()
    assert by_alias["name"] == SEED.telescope_name
    assert api.get(f"/telescopes/{SEED.spectro_telescope_uuid}/").json()["alias"] == ""
    assert api.get("/telescopes/nope/").status_code == 404
    personal = Api(sb).get("/telescopes/").json()
    assert [t["uuid"] for t in personal] == [SEED.personal_telescope_uuid,
                                             SEED.zoned_telescope_uuid]
    assert Api(sb).get("/telescopes/rt1/").status_code == 404


# --- lists, filters, creation -------------------------------------------------------------


def test_pagination_follows_next_to_the_end(tmp_path):
    with Sandbox(tmp_path / "p", page_size=1) as sb:
        api = Api(sb)
        made = [api.create("nightlogs", date=f"2024-05-0{i}")["uuid"] for i in range(1, 4)]
        url, seen, pages = sb.url + "/nightlogs/", [], 0
        while url:
            page = api.session.get(url, timeout=10).json()
            assert page["count"] == 3 and len(page["results"]) == 1
            assert page["previous"] is None if pages == 0 else page["previous"].startswith(sb.url)
            seen += [n["uuid"] for n in page["results"]]
            url, pages = page["next"], pages + 1
        assert seen == made and pages == 3
        # Filters are kept in next links.
        api.create("nightlogs", date="2024-05-01")
        first = api.get("/nightlogs/", params={"date": "2024-05-01"}).json()
        assert first["count"] == 2 and "date=2024-05-01" in first["next"]
        second = api.session.get(first["next"], timeout=10).json()
        assert second["next"] is None and second["results"][0]["date"] == "2024-05-01"
        assert api.get("/nightlogs/", params={"page": 9}).status_code == 404
        assert api.get("/nightlogs/", params={"page": "x"}).status_code == 404


def test_filters_are_exact_matches(sb):
    api = org(sb)
    odd = "NGC 3603/mosaic & Hα ?#%"
    a = api.create("nightlogs", date=DATE, telescope=SEED.telescope_uuid)
    b = api.create("nightlogs", date=DATE, telescope=SEED.spectro_telescope_uuid)
    api.create("nightlogs", date="2024-05-02", telescope=SEED.telescope_uuid)
    found = api.get("/nightlogs/", params={"date": DATE, "telescope": SEED.telescope_uuid})
    assert found.json()["results"] == [a]
    assert api.get("/nightlogs/", params={"date": DATE}).json()["count"] == 2
    obs = api.create("observations", night_log=a["uuid"], name=odd, target_name="NGC 3603")
    api.create("observations", night_log=b["uuid"], name=odd, target_name="NGC 3603")
    api.create("observations", night_log=a["uuid"], name="NGC 3603", target_name="NGC 3603")
    found = api.get("/observations/", params={"night_log": a["uuid"], "name": odd}).json()
    assert found["results"] == [obs]
    cal = api.create("calibrations", night_log=a["uuid"], name="flats")
    assert api.get("/calibrations/", params={"night_log": a["uuid"], "name": "flats"}).json()[
        "results"] == [cal]
    assert api.get("/calibrations/", params={"name": "Flats"}).json()["count"] == 0
    ds1 = api.create("datasets", name=odd, observation=obs["uuid"])
    ds2 = api.create("datasets", name="flats", calibration=cal["uuid"])
    assert ds1 == {"uuid": ds1["uuid"], "name": odd, "observation": obs["uuid"],
                   "calibration": None, "telescope": None, "data_files_count": 0}
    assert api.get("/datasets/", params={"name": odd, "observation": obs["uuid"]}).json()[
        "results"] == [ds1]
    assert api.get("/datasets/", params={"calibration": cal["uuid"]}).json()[
        "results"] == [ds2]


def test_duplicates_are_allowed_and_listed_in_creation_order(sb):
    api = Api(sb)
    first = api.create("nightlogs", date=DATE)
    second = api.create("nightlogs", date=DATE)
    listed = api.get("/nightlogs/", params={"date": DATE}).json()["results"]
    assert [n["uuid"] for n in listed] == [first["uuid"], second["uuid"]]


def test_creation_validation(sb):
    api, team = Api(sb), org(sb)
    cases = [
        (api, "nightlogs", {}, {"date": ["This field is required."]}),
        (api, "nightlogs", {"date": "01/05/2024"},
         {"date": ["Date has wrong format. Use one of these formats instead: YYYY-MM-DD."]}),
        (api, "nightlogs", {"date": "2024-02-30"}, None),
        (team, "nightlogs", {"date": DATE}, {"telescope": ["This field is required."]}),
        (api, "nightlogs", {"date": DATE, "telescope": SEED.telescope_uuid}, None),
        (api, "observations", {"name": "x"}, {"night_log": ["This field is required."]}),
        (api, "observations", {"night_log": "nope", "name": "x"}, None),
        (api, "calibrations", {"night_log": None, "name": "x"},
         {"night_log": ["This field may not be null."]}),
        (api, "datasets", {"name": ""}, {"name": ["This field may not be blank."]}),
        (api, "datasets", {"name": 3}, {"name": ["Not a valid string."]}),
        (api, "datasets", {"name": "x"}, None),
        (api, "nightlogs", [], None),
    ]
    for client, kind, body, expected in cases:
        r = client.post(f"/{kind}/", json=body)
        assert r.status_code == 400, (kind, body, r.text)
        if expected is not None:
            assert r.json() == expected, (kind, body)
        assert all(isinstance(v, list) for v in r.json().values()), r.text
    r = api.post("/nightlogs/", data="{not json", headers={"Content-Type": "application/json"})
    assert r.status_code == 400 and "detail" in r.json()
    personal_log = api.create("nightlogs", date=DATE)
    r = team.post("/observations/", json={"night_log": personal_log["uuid"], "name": "x"})
    assert r.status_code == 400 and "night_log" in r.json()
    log = api.create("nightlogs", date=DATE, telescope=SEED.personal_telescope_uuid)
    obs = api.create("observations", night_log=log["uuid"], name="o")
    cal = api.create("calibrations", night_log=log["uuid"], name="c")
    both = api.post("/datasets/", json={"name": "d", "observation": obs["uuid"],
                                        "calibration": cal["uuid"]})
    assert both.status_code == 400 and "non_field_errors" in both.json()
    assert api.get(f"/observations/{obs['uuid']}/").json() == obs
    assert sb.objects("datasets") == []


def test_unknown_routes_and_methods(sb):
    api = Api(sb)
    for path in ("/nope/", "/nightlogs", "/robotland/unknown/", "/auth/", "/x/y/z/",
                 "/datasets/a/b/", "/datasets/a/datafiles/b/c/"):
        r = api.get(path)
        assert (r.status_code, r.json()) == (404, {"detail": "Not found."}), path
    assert api.get("/auth/token/").status_code == 405
    assert api.session.delete(sb.url + "/nightlogs/", timeout=10).status_code == 405
    assert api.get("/nightlogs/00000000-0000-0000-0000-000000000000/").status_code == 404
