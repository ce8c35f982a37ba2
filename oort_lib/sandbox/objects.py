"""How sandbox objects look in answers, and how creations are checked.

Validation errors follow Django REST framework's shape, as the real API does: a 400 whose
body maps each field name to a list of messages.
"""

from __future__ import annotations

import json
import re
from datetime import date
from urllib.parse import quote

from oort_lib.sandbox.store import API_FIELDS, KINDS, Space, Store

REQUIRED = "This field is required."
NOT_NULL = "This field may not be null."
NOT_BLANK = "This field may not be blank."
NOT_STRING = "Not a valid string."
BAD_DATE = "Date has wrong format. Use one of these formats instead: YYYY-MM-DD."

_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def public(kind: str, row: dict, dialect: str = "both") -> dict:
    """The API answer for a stored object; a 2026 server shows no 2021 dataset links."""
    hidden = ("observation", "calibration") if dialect == "2026" else ()
    return {name: row.get(name) for name in API_FIELDS[kind] if name not in hidden}


def datafile_json(row: dict, base_url: str) -> dict:
    return {
        "id": row["pk"],
        "pk": row["pk"],
        "filename": row["filename"],
        "file": file_url(base_url, row["dataset"], row["filename"]),
        "size": row["size"],
        "dataset": row["dataset"],
        "created": row["created"],
        "modified": row["modified"],
        "is_raw": bool(row.get("is_raw", 1)),
        "tags": json.loads(row.get("tags") or "[]"),
    }


def file_url(base_url: str, dataset: str, filename: str) -> str:
    return f"{base_url}/_sandbox/files/{dataset}/{quote(filename, safe='')}"


def inventory(store: Store, kind: str, base_url: str) -> list[dict]:
    """Every object of a kind, all spaces: the API fields plus where it lives."""
    rows = store.objects(kind)
    if kind == "telescopes":
        return rows
    out = []
    for row in rows:
        if kind == "datafiles":
            item = datafile_json(row, base_url)
            item["sha256"] = row["sha256"]
            item["path"] = str(store.file_path(row["dataset"], row["filename"]))
        else:
            item = public(kind, row)
            item["created"] = row["created"]
        item["organisation"] = row["org"]
        item["owner"] = row["owner"]
        out.append(item)
    return out


def filename_problem(name: str) -> str | None:
    """Why a datafile name cannot be stored as one file in its dataset's folder."""
    if not name:
        return "Invalid filename: it is empty."
    if name in (".", ".."):
        return f"Invalid filename {name!r}: it is a relative path component."
    if "/" in name or "\\" in name:
        return f"Invalid filename {name!r}: it contains a path separator."
    if "\x00" in name:
        return "Invalid filename: it contains a NUL character."
    if len(name.encode("utf-8")) > 255:
        return "Invalid filename: it is longer than 255 bytes."
    return None


def validate(store: Store, kind: str, space: Space, data: object, dialect: str = "both"
             ) -> tuple[dict, dict]:
    """(values to store, errors): errors maps field names to lists of messages.

    Datasets follow the generation: 2021 links one observation or calibration, 2026
    names a telescope, and "both" accepts either. Raises ValueError for an unknown kind.
    """
    if kind not in KINDS:
        raise ValueError(kind)
    if not isinstance(data, dict):
        got = type(data).__name__
        return {}, {"non_field_errors": [f"Invalid data. Expected a dictionary, but got {got}."]}
    check = _Checker(store, space, data)
    if kind == "nightlogs":
        check.date("date")
        # An organisation's night log belongs to one of its telescopes (an organisation
        # upload needs a telescope: docs/arcsecond-api.md, "2021: the object chain"); a
        # personal one may have none.
        check.ref("telescope", "telescopes", required=space[0] is not None)
    elif kind in ("observations", "calibrations"):
        check.ref("night_log", "nightlogs", required=True)
        check.text("name")
        if kind == "observations":
            check.text("target_name", required=False)
            check.values.setdefault("target_name", "")
    else:
        _dataset(check, dialect)
    return check.values, check.errors


def _dataset(check: _Checker, dialect: str) -> None:
    check.text("name")
    check.ref("telescope", "telescopes", required=dialect == "2026")
    if dialect == "2026":
        return  # the server links it to observations or calibrations itself
    check.ref("observation", "observations", required=False)
    check.ref("calibration", "calibrations", required=False)
    given = [k for k in ("observation", "calibration") if check.values.get(k)]
    if check.errors:
        return
    if len(given) > 1 or (not given and (dialect == "2021" or not check.values.get("telescope"))):
        check.errors["non_field_errors"] = [
            "A dataset belongs to exactly one observation or one calibration."
            if dialect == "2021" or given else
            "A dataset needs a telescope, or exactly one observation or one calibration."
        ]


class _Checker:
    def __init__(self, store: Store, space: Space, data: dict):
        self.store = store
        self.space = space
        self.data = data
        self.values: dict[str, object] = {}
        self.errors: dict[str, list[str]] = {}

    def _present(self, name: str, required: bool) -> bool:
        if name not in self.data:
            if required:
                self.errors[name] = [REQUIRED]
            return False
        if self.data[name] is None:
            if required:
                self.errors[name] = [NOT_NULL]
            return False
        return True

    def text(self, name: str, required: bool = True) -> None:
        if not self._present(name, required):
            return
        value = self.data[name]
        if not isinstance(value, str):
            self.errors[name] = [NOT_STRING]
        elif not value.strip() and required:
            self.errors[name] = [NOT_BLANK]
        else:
            self.values[name] = value

    def date(self, name: str) -> None:
        if not self._present(name, True):
            return
        value = self.data[name]
        try:
            if not isinstance(value, str) or not _DATE.fullmatch(value):
                raise ValueError
            date.fromisoformat(value)
        except ValueError:
            self.errors[name] = [BAD_DATE]
            return
        self.values[name] = value

    def ref(self, name: str, kind: str, required: bool) -> None:
        if not self._present(name, required):
            return
        value = self.data[name]
        if value == "" and not required:
            return
        found = None
        if isinstance(value, str) and value:
            if kind == "telescopes":
                telescope = self.store.telescope(self.space, value)
                found = telescope["uuid"] if telescope and telescope["uuid"] == value else None
            elif self.store.get(kind, self.space, value) is not None:
                found = value
        if found is None:
            self.errors[name] = [f'Invalid pk "{value}" - object does not exist.']
        else:
            self.values[name] = found
