"""The sandbox stores datafiles as the contract says and shows them on its page."""

from __future__ import annotations

import threading
from urllib.parse import quote

import pytest
import requests
from sandbox_api import DATE, SEED, Api, org

# --- datafiles ----------------------------------------------------------------------------


def test_datafile_upload_existence_duplicate_and_replace(sb):
    api = org(sb)
    ds = api.chain(telescope=SEED.telescope_uuid)["uuid"]
    detail = f"/datasets/{ds}/datafiles/m31_001.fits/"
    r = api.get(detail)
    assert (r.status_code, r.json()) == (404, {"detail": "Not found."})
    r = api.upload(ds, "m31_001.fits", b"SIMPLE  =                    T" * 100)
    assert r.status_code == 201, r.text
    created = r.json()
    assert created["size"] == 3000 and created["file"].startswith(sb.url)
    r = api.get(detail)
    assert r.status_code == 200
    assert {k: r.json()[k] for k in ("pk", "file", "size", "created")} == {
        k: created[k] for k in ("pk", "file", "size", "created")}
    download = api.session.get(created["file"], timeout=10)
    assert download.content == b"SIMPLE  =                    T" * 100
    r = api.upload(ds, "m31_001.fits", b"other")
    assert r.status_code == 400
    assert r.json() == {"detail": [f"m31_001.fits already exists in dataset {ds}."]}
    r = api.upload(ds, "m31_001.fits", b"new content", method="patch")
    assert r.status_code == 200, r.text
    assert r.json()["size"] == 11 and r.json()["pk"] == created["pk"]
    assert api.session.get(created["file"], timeout=10).content == b"new content"
    assert api.upload(ds, "absent.fits", b"x", method="patch").status_code == 404
    # Unique per dataset only.
    other = api.chain(telescope=SEED.telescope_uuid)["uuid"]
    assert api.upload(other, "m31_001.fits", b"x").status_code == 201
    listed = api.get(f"/datasets/{ds}/datafiles/").json()
    assert listed["count"] == 1 and listed["results"][0]["filename"] == "m31_001.fits"
    files = sb.objects("datafiles")
    assert [(f["dataset"], f["filename"], f["size"]) for f in files] == [
        (ds, "m31_001.fits", 11), (other, "m31_001.fits", 1)]
    assert files[0]["organisation"] == SEED.organisation


def test_datafile_refusals(sb):
    api = Api(sb)
    ds = api.chain()["uuid"]
    assert api.upload("00000000-0000-0000-0000-000000000000", "a.fits", b"x").status_code == 404
    r = api.post(f"/datasets/{ds}/datafiles/", json={"file": "a.fits"})
    assert r.status_code == 415
    r = api.post(f"/datasets/{ds}/datafiles/", files={"other": ("a.fits", b"x")})
    assert (r.status_code, r.json()) == (400, {"file": ["No file was submitted."]})
    r = api.upload(ds, "empty.fits", b"")
    assert (r.status_code, r.json()) == (400, {"file": ["The submitted file is empty."]})
    broken = api.post(f"/datasets/{ds}/datafiles/", data=b"--zz\r\nnonsense",
                      headers={"Content-Type": "multipart/form-data; boundary=zz"})
    assert broken.status_code == 400 and "detail" in broken.json()
    assert sb.objects("datafiles") == []
    assert list((sb.data_dir / "tmp").iterdir()) == []


@pytest.mark.parametrize("name", ["../evil.fits", "a/b.fits", "a\\b.fits", "..", ".",
                                  "nul\x00.fits", "/etc/passwd"])
def test_path_traversal_is_refused(sb, name):
    api = Api(sb)
    ds = api.chain()["uuid"]
    r = api.upload(ds, name, b"data")
    assert r.status_code == 400, r.text
    assert "detail" in r.json()
    assert sb.objects("datafiles") == []
    stored = [p for p in sb.data_dir.rglob("*") if p.is_file()]
    assert all(p.name.startswith("sandbox.sqlite") for p in stored), stored


@pytest.mark.parametrize("name", ["a b#c?d%e'f\".fits", "Ωmega été 星雲.fits",
                                  "NGC.3603.fits.fz", "100% [x] {y} ;,=+&.fit"])
def test_odd_filenames_are_kept_intact(sb, name):
    api = Api(sb)
    ds = api.chain()["uuid"]
    r = api.upload(ds, name, b"content")
    assert r.status_code == 201, r.text
    assert r.json()["filename"] == name
    r = api.get(f"/datasets/{ds}/datafiles/{quote(name, safe='')}/")
    assert r.status_code == 200 and r.json()["filename"] == name
    assert api.session.get(r.json()["file"], timeout=10).content == b"content"
    assert sb.objects("datafiles")[0]["filename"] == name
    assert (sb.data_dir / "files" / ds / name).read_bytes() == b"content"
    again = api.upload(ds, name, b"content")
    assert again.json() == {"detail": [f"{name} already exists in dataset {ds}."]}


def test_rfc5987_filename_star_is_honoured(sb):
    api = Api(sb)
    ds = api.chain()["uuid"]
    name = 'literal%22percent "quote".fits'
    body = (b"--b0undary\r\nContent-Disposition: form-data; name=\"file\"; "
            b"filename=\"fallback.fits\"; filename*=UTF-8''" + quote(name).encode()
            + b"\r\nContent-Type: application/octet-stream\r\n\r\nDATA\r\n--b0undary--\r\n")
    r = api.post(f"/datasets/{ds}/datafiles/", data=body,
                 headers={"Content-Type": "multipart/form-data; boundary=b0undary"})
    assert r.status_code == 201, r.text
    assert r.json()["filename"] == name


def test_simultaneous_uploads_of_one_name_give_one_file(sb):
    api = Api(sb)
    ds = api.chain()["uuid"]
    statuses: list[int] = []

    def send():
        statuses.append(Api(sb).upload(ds, "same.fits", b"y" * 200_000).status_code)

    threads = [threading.Thread(target=send) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(statuses) == [201, 400, 400, 400]
    assert len(sb.objects("datafiles")) == 1


# --- the page -----------------------------------------------------------------------------


def test_page_shows_what_was_received_escaped(sb):
    api = org(sb)
    log = api.create("nightlogs", date=DATE, telescope=SEED.telescope_uuid)
    obs = api.create("observations", night_log=log["uuid"], name="<b>M31</b>",
                     target_name="Andromeda")
    ds = api.create("datasets", name="<b>M31</b>", observation=obs["uuid"])
    r = api.upload(ds["uuid"], "<img src=x onerror=alert(1)>.fits", b"x" * 1234)
    assert r.status_code == 201, r.text
    cal = api.create("calibrations", night_log=log["uuid"], name="darks & flats")
    api.create("datasets", name="darks & flats", calibration=cal["uuid"])
    r = requests.get(sb.url + "/", timeout=10)  # no key: a local viewer
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("text/html")
    page = r.text
    assert "<img" not in page and "<b>M31</b>" not in page
    assert "&lt;img src=x onerror=alert(1)&gt;.fits" in page
    assert "&lt;b&gt;M31&lt;/b&gt;" in page and "darks &amp; flats" in page
    assert DATE in page and SEED.telescope_name in page and "1234 bytes" in page
    assert "Robot Land" in page
    assert SEED.upload_key not in page
    assert "http" not in page.lower().replace('lang="en"', "")  # no external resource
