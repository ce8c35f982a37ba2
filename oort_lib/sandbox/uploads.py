"""Datafiles: the nested 2021 routes and the flat 2026 upload, both streamed to disk.

A mixin of ``App``: it reads ``self.store`` and uses ``self._base`` and
``self._paginated``.
"""

from __future__ import annotations

from werkzeug.exceptions import ClientDisconnected
from werkzeug.wrappers import Request, Response
from werkzeug.wsgi import get_input_stream

from oort_lib.sandbox import objects
from oort_lib.sandbox.faults import DropConnection
from oort_lib.sandbox.multipart import Form, MultipartError, boundary_of, receive_form
from oort_lib.sandbox.organise import organise
from oort_lib.sandbox.responses import NOT_FOUND, ApiError, json_response
from oort_lib.sandbox.store import Space, Store

RESET_READ = 256 * 1024  # bytes of an upload read before a "reset" fault cuts it
REFUSAL_KEY = "oort_sandbox.refusal"  # the environ entry of an "upload_refusal" fault
TRUE = ("true", "1")
FALSE = ("false", "0")


class UploadHandlers:
    store: Store

    def _dataset(self, space: Space, uuid: str) -> dict:
        dataset = self.store.get("datasets", space, uuid)
        if dataset is None:
            raise ApiError(404, NOT_FOUND)
        return dataset

    # --- 2021: /datasets/<uuid>/datafiles/[<name>/] ----------------------------------------

    def _datafiles(self, request, method, space, dataset_uuid, reset=False) -> Response:
        dataset = self._dataset(space, dataset_uuid)
        if method == "GET":
            base = self._base(request)
            return self._paginated(
                request, lambda offset, limit: self.store.datafiles(dataset["uuid"], offset, limit),
                lambda row: objects.datafile_json(row, base))
        return self._receive(request, dataset, None, reset)

    def _datafile(self, request, method, space, dataset_uuid, filename, reset=False) -> Response:
        dataset = self._dataset(space, dataset_uuid)
        row = self.store.datafile(dataset["uuid"], filename)
        if row is None:
            raise ApiError(404, NOT_FOUND)
        if method == "GET":
            return json_response(200, objects.datafile_json(row, self._base(request)))
        return self._receive(request, dataset, filename, reset)

    def _receive(self, request: Request, dataset: dict, replacing: str | None, reset: bool
                 ) -> Response:
        """POST (``replacing`` None) or PATCH/PUT of a datafile's multipart body."""
        form = self._read_form(request, reset)
        received = form.file
        if received is None:
            raise ApiError(400, {"file": ["No file was submitted."]})
        try:
            problem = objects.filename_problem(received.filename)
            if replacing is None and problem:
                raise ApiError(400, {"detail": problem})
            if received.size == 0:
                raise ApiError(400, {"file": ["The submitted file is empty."]})
            base = self._base(request)
            if replacing is None:
                row = self.store.add_datafile(dataset, received.filename, received.path,
                                              received.size, received.sha256)
                if row is None:
                    detail = f"{received.filename} already exists in dataset {dataset['uuid']}."
                    raise ApiError(400, {"detail": [detail]})
                return json_response(201, objects.datafile_json(row, base))
            row = self.store.replace_datafile(dataset["uuid"], replacing, received.path,
                                              received.size, received.sha256)
            if row is None:
                raise ApiError(404, NOT_FOUND)
            return json_response(200, objects.datafile_json(row, base))
        finally:
            if received.path.exists():
                received.path.unlink()

    # --- 2026: [/<sub>]/datafiles/ --------------------------------------------------------

    def _files(self, request, method, space, reset=False) -> Response:
        if method == "GET":
            base = self._base(request)
            dataset = request.args.get("dataset") or None
            return self._paginated(
                request,
                lambda offset, limit: self.store.datafiles_in(space, dataset, offset, limit),
                lambda row: objects.datafile_json(row, base))
        form = self._read_form(request, reset)
        try:
            return self._store_flat(request, space, form)
        finally:
            if form.file is not None and form.file.path.exists():
                form.file.path.unlink()

    def _store_flat(self, request: Request, space: Space, form: Form) -> Response:
        errors: dict[str, list[str]] = {}
        dataset = None
        given = (form.fields.get("dataset") or [""])[0].strip()
        if not given:
            errors["dataset"] = [objects.REQUIRED]
        else:
            dataset = self.store.get("datasets", space, given)
            if dataset is None:
                errors["dataset"] = [f'Invalid pk "{given}" - object does not exist.']
        is_raw = _boolean(form.fields.get("is_raw"))
        if is_raw is None:
            errors["is_raw"] = ["Must be a valid boolean."]
        received = form.file
        if received is None:
            errors["file"] = ["No file was submitted."]
        elif received.size == 0:
            errors["file"] = ["The submitted file is empty."]
        if errors:
            raise ApiError(400, errors)
        assert dataset is not None and received is not None and is_raw is not None
        problem = objects.filename_problem(received.filename)
        if problem:
            raise ApiError(400, {"detail": problem})
        row = self.store.add_datafile(dataset, received.filename, received.path,
                                      received.size, received.sha256, is_raw,
                                      _tags(form.fields.get("tags", [])))
        if row is None:
            # A plain string: the 2026 client looks for this phrase anywhere in the body.
            raise ApiError(400, {
                "detail": f"{received.filename} already exists in dataset {dataset['uuid']}."})
        organise(self.store, dataset, self.store.file_path(dataset["uuid"], row["filename"]))
        return json_response(201, objects.datafile_json(row, self._base(request)))

    # --- the body -------------------------------------------------------------------------

    def _read_form(self, request: Request, reset: bool) -> Form:
        """The whole multipart body, file part on disk. Raises ApiError (415, 400; and
        the 400 of an "upload_refusal" fault), DropConnection for a "reset" fault,
        ConnectionError if the client went away.

        A body cut before its final boundary is refused and nothing is stored: the
        connection closed early (ConnectionError) or the body ended early (400); either
        way receive_form has removed the part it spooled.
        """
        boundary = boundary_of(request.headers.get("Content-Type"))
        if boundary is None:
            kind = request.headers.get("Content-Type", "")
            raise ApiError(415, {"detail": f'Unsupported media type "{kind}" in request.'})
        stream = get_input_stream(request.environ)
        if reset:
            stream.read(min(RESET_READ, (request.content_length or 0) // 2))
            raise DropConnection()
        try:
            form = receive_form(stream, boundary, self.store.tmp_dir)
        except MultipartError as exc:
            raise ApiError(400, {"detail": f"Multipart form parse error - {exc}."}) from None
        except ClientDisconnected:
            raise ConnectionError("the client went away during the upload") from None
        refusal = request.environ.get(REFUSAL_KEY)
        if refusal:
            name = form.file.filename if form.file is not None else ""
            if form.file is not None:
                form.file.path.unlink()
            raise ApiError(400, {"detail": refusal.replace("{filename}", name)})
        return form


def _boolean(values: list[str] | None) -> bool | None:
    """``is_raw`` as the official client writes it (True/False, or true/false from
    httpx for a bool); absent means raw. None when unreadable."""
    if not values:
        return True
    value = values[0].strip().lower()
    return True if value in TRUE else False if value in FALSE else None


def _tags(values: list[str]) -> tuple[str, ...]:
    """One comma-joined value or one part per tag, both as the official client sends."""
    return tuple(t.strip() for v in values for t in v.split(",") if t.strip())
