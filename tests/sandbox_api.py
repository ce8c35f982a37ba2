"""A tiny contract-shaped client of the sandbox, shared by the sandbox's own tests."""

from __future__ import annotations

from urllib.parse import quote

import requests

from oort_lib.sandbox import Sandbox, Seed

SEED = Seed()
DATE = "2024-05-01"


class Api:
    """A tiny client for one key, so the tests read like the contract."""

    def __init__(self, sb: Sandbox, key: str | None = SEED.upload_key, prefix: str = ""):
        self.url = sb.url + prefix
        self.session = requests.Session()
        if key is not None:
            self.session.headers["X-Arcsecond-API-Authorization"] = f"Key {key}"

    def get(self, path: str, **kw) -> requests.Response:
        return self.session.get(self.url + path, timeout=10, **kw)

    def post(self, path: str, **kw) -> requests.Response:
        return self.session.post(self.url + path, timeout=10, **kw)

    def patch(self, path: str, **kw) -> requests.Response:
        return self.session.patch(self.url + path, timeout=10, **kw)

    def create(self, kind: str, **fields) -> dict:
        r = self.post(f"/{kind}/", json=fields)
        assert r.status_code == 201, r.text
        return r.json()

    def chain(self, name: str = "M31", telescope: str | None = None) -> dict:
        """night log -> observation -> dataset; returns the dataset."""
        log = self.create("nightlogs", date=DATE, **({"telescope": telescope} if telescope else {}))
        obs = self.create("observations", night_log=log["uuid"], name=name, target_name=name)
        return self.create("datasets", name=name, observation=obs["uuid"])

    def options(self, path: str, **kw) -> requests.Response:
        return self.session.options(self.url + path, timeout=10, **kw)

    def dataset(self, name: str = "M31", telescope: str = SEED.personal_telescope_uuid) -> dict:
        """A 2026 dataset: a name and a telescope."""
        return self.create("datasets", name=name, telescope=telescope)

    def send(self, dataset: str | None, filename: str, content: bytes,
             fields: list[tuple[str, str]] | None = None) -> requests.Response:
        """A 2026 flat upload, parts in the official client's order (dataset, is_raw,
        tags, then the file)."""
        data = [("dataset", dataset)] if dataset is not None else []
        data += fields if fields is not None else [("is_raw", "True")]
        return self.post("/datafiles/", data=data,
                         files={"file": (filename, content, "application/octet-stream")})

    def upload(self, dataset: str, filename: str, content: bytes, method: str = "post"):
        path = f"/datasets/{dataset}/datafiles/"
        if method == "patch":
            path += quote(filename, safe="") + "/"
        return getattr(self, method)(path, files={"file": (filename, content)})


def org(sb: Sandbox, key: str = SEED.upload_key, subdomain: str = SEED.organisation) -> Api:
    return Api(sb, key, prefix=f"/{subdomain}")
