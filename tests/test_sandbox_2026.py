"""The sandbox's 2026 generation: key verification, paged telescopes, datasets with a
telescope, flat datafile uploads, and what a client probes to tell the generations apart."""

from __future__ import annotations

import pytest
import requests
from sandbox_api import SEED, Api, org

from oort_lib.sandbox import Sandbox

NO_SUCH = "00000000-0000-4000-8000-000000000000"


# A sandbox that speaks the 2026 generation, alone or beside the 2021 one.
ALONE_OR_BESIDE_2021 = pytest.mark.parametrize("sb26", ["2026", "both"], indirect=True)


def anon(sb: Sandbox, prefix: str = "") -> Api:
    return Api(sb, key=None, prefix=prefix)


def test_unknown_dialect_is_refused(tmp_path):
    with pytest.raises(ValueError, match="dialect"):
        Sandbox(tmp_path, dialect="1999")


# --- the page, the healthcheck, the /api prefix -------------------------------------------


@ALONE_OR_BESIDE_2021
def test_root_and_healthcheck_answer_without_a_key(sb26):
    for prefix in ("", "/api"):
        assert anon(sb26, prefix).get("/").status_code == 200
        r = anon(sb26, prefix).get("/healthcheck/")
        assert r.status_code == 200, prefix
    assert anon(sb26).get("/api").status_code == 200  # what `arcsecond api use` probes


def test_2021_mode_has_no_2026_routes(sb21):
    api = Api(sb21)
    assert anon(sb21).get("/").status_code == 200
    assert anon(sb21).get("/healthcheck/").status_code == 404
    r = anon(sb21).post("/auth/key/verify/",
                        json={"username": SEED.username, "key": SEED.upload_key})
    assert (r.status_code, r.json()) == (404, {"detail": "Not found."})
    assert anon(sb21).post("/auth/key/verify-organisation/", json={}).status_code == 404
    assert api.options("/datafiles/").status_code == 404
    assert api.post("/datafiles/", files={"file": ("a.fits", b"x")}).status_code == 404
    # Its telescopes are plain arrays, and its profile answers the key (2021 detection).
    assert isinstance(api.get("/telescopes/").json(), list)
    assert api.get(f"/profiles/{SEED.username}/").status_code == 200


# --- key verification ---------------------------------------------------------------------


@ALONE_OR_BESIDE_2021
def test_verify_accepts_username_or_email_with_either_key(sb26):
    pairs = [(SEED.username, SEED.upload_key), (SEED.username, SEED.api_key),
             (SEED.email, SEED.upload_key), (SEED.email.upper(), SEED.api_key),
             (SEED.member_username, SEED.member_key)]
    for prefix in ("", "/api"):
        for username, key in pairs:
            r = anon(sb26, prefix).post("/auth/key/verify/",
                                        json={"username": username, "key": key})
            assert (r.status_code, r.content) == (204, b""), (prefix, username)


@ALONE_OR_BESIDE_2021
def test_verify_refusals(sb26):
    a = anon(sb26)
    for body in ({"username": SEED.username, "key": SEED.member_key},
                 {"username": "nobody", "key": SEED.upload_key},
                 {"username": SEED.username, "key": "0" * 32}):
        r = a.post("/auth/key/verify/", json=body)
        assert (r.status_code, r.json()) == (401, {"detail": "Invalid username or key."}), body
    r = a.post("/auth/key/verify/", json={"key": SEED.upload_key})
    assert (r.status_code, r.json()) == (400, {"username": ["This field is required."]})
    r = a.post("/auth/key/verify/", json={})
    assert r.json() == {"username": ["This field is required."],
                        "key": ["This field is required."]}
    sb26.revoke_key(SEED.upload_key)
    r = a.post("/auth/key/verify/", json={"username": SEED.username, "key": SEED.upload_key})
    assert r.status_code == 401
    assert a.get("/auth/key/verify/").status_code == 405


@ALONE_OR_BESIDE_2021
def test_verify_organisation_needs_a_writer_role(sb26):
    def verify(username, key, organisation):
        return anon(sb26).post("/auth/key/verify-organisation/", json={
            "username": username, "key": key, "organisation": organisation})

    assert verify(SEED.username, SEED.upload_key, "robotland").status_code == 204
    assert verify(SEED.username, SEED.api_key, "local").status_code == 204  # owner
    assert verify(SEED.member_username, SEED.member_key, "local").status_code == 204
    refused = [
        (SEED.guest_username, SEED.guest_key, "robotland"),  # a guest may not write
        (SEED.username, SEED.upload_key, "farland"),  # not a member
        (SEED.username, SEED.upload_key, "nowhere"),  # unknown organisation
        (SEED.username, SEED.member_key, "robotland"),  # someone else's key
    ]
    for case in refused:
        r = verify(*case)
        assert (r.status_code, r.json()) == (403, {"detail": "Invalid or unknown membership."})
    r = anon(sb26).post("/auth/key/verify-organisation/",
                        json={"username": SEED.username, "key": SEED.upload_key})
    assert (r.status_code, r.json()) == (400, {"organisation": ["This field is required."]})


def test_token_shapes_follow_the_dialect(tmp_path):
    shapes = {"2021": {"token"},
              "2026": {"access", "refresh", "username", "access_exp", "refresh_exp"}}
    shapes["both"] = shapes["2021"] | shapes["2026"]
    for dialect, keys in shapes.items():
        with Sandbox(tmp_path / dialect, dialect=dialect) as sb:
            r = anon(sb).post("/auth/token/",
                              json={"username": SEED.email, "password": SEED.password})
            assert r.status_code == 200 and set(r.json()) == keys, dialect
            if dialect != "2021":
                assert r.json()["username"] == SEED.username
                bearer = {"Authorization": f"Bearer {r.json()['access']}"}
                assert anon(sb).get(f"/profiles/{SEED.username}/",
                                    headers=bearer).status_code == 200


# --- OPTIONS, the 2026 probe --------------------------------------------------------------


@ALONE_OR_BESIDE_2021
def test_options_on_list_routes_needs_a_key(sb26):
    for path in ("/datafiles/", "/datasets/", "/telescopes/", "/nightlogs/",
                 "/robotland/datafiles/", "/api/local/datafiles/", "/api/datasets/"):
        r = Api(sb26).options(path)
        assert r.status_code == 200, path
        assert {"name", "renders", "parses"} <= set(r.json())
        assert anon(sb26).options(path).status_code == 401, path
    assert Api(sb26).options("/farland/datafiles/").status_code == 403
    assert "POST" in Api(sb26).options("/datafiles/").headers["Allow"]


# --- telescopes ---------------------------------------------------------------------------


def test_telescopes_are_paged(tmp_path):
    with Sandbox(tmp_path / "s", page_size=1, dialect="2026") as sb:
        api = org(sb)
        page = api.get("/telescopes/").json()
        seen = []
        while True:
            assert set(page) == {"count", "next", "previous", "results"}
            seen += page["results"]
            if page["next"] is None:
                break
            page = requests.get(page["next"], headers=api.session.headers, timeout=10).json()
        assert [t["uuid"] for t in seen] == [SEED.telescope_uuid, SEED.spectro_telescope_uuid]
        assert all(set(t) == {"uuid", "name", "alias", "coordinates", "observing_site",
                              "time_zone"} for t in seen)
        one = api.get(f"/telescopes/{SEED.telescope_uuid}/").json()
        assert one == seen[0]
        local = Api(sb, prefix="/api/local").get("/telescopes/").json()["results"]
        assert [(t["uuid"], t["name"]) for t in local] == [
            (SEED.local_telescope_uuid, "Local Dobsonian")]
        assert local[0]["coordinates"]["longitude"] == 135.0


# --- datasets -----------------------------------------------------------------------------


@ALONE_OR_BESIDE_2021
def test_datasets_with_a_telescope(sb26):
    api, team = Api(sb26), org(sb26)
    ds = api.dataset("M31")
    expected = {"uuid", "name", "telescope", "data_files_count"}
    if sb26.dialect == "both":
        expected |= {"observation", "calibration"}
    assert set(ds) == expected
    assert (ds["name"], ds["telescope"], ds["data_files_count"]) == (
        "M31", SEED.personal_telescope_uuid, 0)
    assert api.get(f"/datasets/{ds['uuid']}/").json() == ds
    other = api.dataset("M31 b")
    found = api.get("/datasets/", params={"name": "M31"}).json()
    assert (found["count"], found["results"]) == (1, [ds])
    assert api.get("/datasets/").json()["count"] == 2 and other["uuid"] != ds["uuid"]
    # Another space's telescope, or none that exists: the DRF "invalid pk" refusal.
    for client, telescope in ((api, SEED.telescope_uuid), (team, NO_SUCH),
                              (team, SEED.personal_telescope_uuid)):
        r = client.post("/datasets/", json={"name": "x", "telescope": telescope})
        assert (r.status_code, r.json()) == (400, {"telescope": [
            f'Invalid pk "{telescope}" - object does not exist.']})
    assert team.dataset("T", SEED.telescope_uuid)["telescope"] == SEED.telescope_uuid
    assert org(sb26, SEED.guest_key).post("/datasets/", json={
        "name": "g", "telescope": SEED.telescope_uuid}).status_code == 403


def test_a_dataset_needs_its_telescope_in_2026_mode(sb26):
    r = Api(sb26).post("/datasets/", json={"name": "M31"})
    assert (r.status_code, r.json()) == (400, {"telescope": ["This field is required."]})


def test_both_mode_takes_a_telescope_or_the_2021_chain(tmp_path):
    with Sandbox(tmp_path / "s") as sb:
        api = Api(sb)
        r = api.post("/datasets/", json={"name": "M31"})
        assert r.status_code == 400 and "non_field_errors" in r.json()
        chained = api.chain("M31")
        assert chained["observation"] and chained["telescope"] is None
        assert api.dataset("M31")["telescope"] == SEED.personal_telescope_uuid


# --- flat datafile uploads ----------------------------------------------------------------


@ALONE_OR_BESIDE_2021
def test_flat_upload_answers_and_stores_is_raw_and_tags(sb26):
    api = Api(sb26)
    ds = api.dataset()["uuid"]
    r = api.send(ds, "m31 é.fits", b"SIMPLE" * 50,
                 [("is_raw", "False"), ("tags", "night 1, flat,,")])
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["id"] == body["pk"] and body["dataset"] == ds
    assert (body["is_raw"], body["tags"]) == (False, ["night 1", "flat"])
    stored = requests.get(body["file"], headers=api.session.headers, timeout=10)
    assert stored.content == b"SIMPLE" * 50
    cases = {"a.fits": [("is_raw", "True")], "b.fits": [("is_raw", "true")],
             "c.fits": [("is_raw", "0")], "d.fits": [("is_raw", "1"), ("tags", "x"),
                                                     ("tags", "y")],
             "e.fits": []}
    for name, fields in cases.items():
        assert api.send(ds, name, b"data", fields).status_code == 201, name
    rows = {f["filename"]: f for f in sb26.datafiles(ds)}
    assert rows["m31 é.fits"]["tags"] == ["night 1", "flat"]
    assert [rows[f"{n}.fits"]["is_raw"] for n in "abcde"] == [True, True, False, True, True]
    assert rows["d.fits"]["tags"] == ["x", "y"] and rows["e.fits"]["tags"] == []
    assert api.get(f"/datasets/{ds}/").json()["data_files_count"] == 6


@ALONE_OR_BESIDE_2021
def test_flat_upload_refusals(sb26):
    api = Api(sb26)
    ds = api.dataset()["uuid"]
    team_ds = org(sb26).dataset("T", SEED.telescope_uuid)["uuid"]
    r = api.send(None, "a.fits", b"data")
    assert (r.status_code, r.json()) == (400, {"dataset": ["This field is required."]})
    for unknown in (NO_SUCH, team_ds):  # a dataset of another space is unknown here
        r = api.send(unknown, "a.fits", b"data")
        assert (r.status_code, r.json()) == (400, {"dataset": [
            f'Invalid pk "{unknown}" - object does not exist.']})
    r = api.send(ds, "a.fits", b"data", [("is_raw", "maybe")])
    assert r.status_code == 400 and "is_raw" in r.json()
    assert api.send(ds, "empty.fits", b"").status_code == 400
    no_file = api.post("/datafiles/", files={"dataset": (None, ds)})  # multipart, no file
    assert (no_file.status_code, no_file.json()) == (400, {"file": ["No file was submitted."]})
    assert org(sb26, SEED.guest_key).send(team_ds, "g.fits", b"data").status_code == 403
    assert anon(sb26).send(ds, "a.fits", b"data").status_code == 401
    assert sb26.datafiles() == []


@ALONE_OR_BESIDE_2021
def test_a_name_already_in_the_dataset_is_refused_after_the_body(sb26):
    api = Api(sb26)
    ds = api.dataset()["uuid"]
    other = api.dataset("M31 again")["uuid"]
    assert api.send(ds, "m31_001.fits", b"first").status_code == 201
    r = api.send(ds, "m31_001.fits", b"second")
    assert (r.status_code, r.json()) == (400, {
        "detail": f"m31_001.fits already exists in dataset {ds}."})
    assert api.send(other, "m31_001.fits", b"second").status_code == 201  # per dataset
    [row] = sb26.datafiles(ds)
    assert open(row["path"], "rb").read() == b"first"


@ALONE_OR_BESIDE_2021
def test_flat_list_is_paged_and_filtered_by_dataset(sb26):
    api = Api(sb26, prefix="/api/local")
    ds = api.dataset("M42", SEED.local_telescope_uuid)["uuid"]
    other = api.dataset("M43", SEED.local_telescope_uuid)["uuid"]
    names = [f"f{i}.fits" for i in range(5)]
    for name in names:
        assert api.send(ds, name, b"data").status_code == 201
    assert api.send(other, "g.fits", b"data").status_code == 201
    page = api.get("/datafiles/", params={"dataset": ds}).json()
    seen = []
    while True:
        seen += [f["filename"] for f in page["results"]]
        if page["next"] is None:
            break
        assert page["next"].startswith(sb26.url + "/api/local/datafiles/?")
        page = requests.get(page["next"], headers=api.session.headers, timeout=10).json()
    assert seen == names
    assert api.get("/datafiles/").json()["count"] == 6
    assert Api(sb26).get("/datafiles/").json()["count"] == 0  # the personal space


# --- the 2021 routes in 2026 mode ---------------------------------------------------------


def test_2026_mode_has_no_2021_only_routes(sb26):
    api = Api(sb26)
    ds = api.dataset()["uuid"]
    assert api.send(ds, "a.fits", b"data").status_code == 201
    for path in (f"/datasets/{ds}/datafiles/", f"/datasets/{ds}/datafiles/a.fits/",
                 f"/profiles/{SEED.username}/uploadkey/", f"/profiles/{SEED.username}/apikey/"):
        assert api.get(path).status_code == 404, path
    assert api.upload(ds, "b.fits", b"data").status_code == 404
    # Night logs and the rest stay readable, but the server alone creates them.
    for kind in ("nightlogs", "observations", "calibrations"):
        assert api.get(f"/{kind}/").status_code == 200
        assert api.post(f"/{kind}/", json={}).status_code == 405
    assert api.get(f"/profiles/{SEED.username}/").status_code == 200
    assert api.get("/organisations/local/").json()["name"] == "Arcsecond.local"
