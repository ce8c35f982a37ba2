"""An explanation of what the rules decide for one file, and why (`oort-sync explain`).

Offline: from the config, the manifest and the file's own header; the same decision code
as the planner (decision.decide), so what is explained is what a run does.
"""

from __future__ import annotations

import os
from datetime import timezone

from oort_lib.errors import FileProblem
from oort_lib.escape import escaped
from oort_lib.local.decision import decide, header_facts
from oort_lib.local.localtime import LONGITUDE, TIMEZONE
from oort_lib.local.servernight import SITE_LONGITUDE, SITE_ZONE
from oort_lib.state.config import Folder, Settings
from oort_lib.state.credentials import known_generation
from oort_lib.state.destination import destination

__all__ = ["explain", "explain_lines", "watched_folder"]


def watched_folder(path: str, folders: tuple[Folder, ...] | list[Folder]) -> Folder | None:
    """The watched folder holding ``path`` (an absolute, symlink-free path), or None; its
    path is where it points now (a run resolves a watched symlink the same way)."""
    best = None
    for folder in folders:
        folder = folder._replace(path=os.path.realpath(folder.path))
        root = folder.path.rstrip(os.sep) + os.sep
        if path.startswith(root) and (best is None or len(folder.path) > len(best.path)):
            best = folder
    return best


def explain(path: str, settings: Settings, manifest=None, creds=None) -> dict:
    """Everything the rules decide for the file at ``path``, and why, as plain data.

    ``manifest`` (a manifest.Manifest, or None) gives the file's recorded state;
    ``creds`` (credentials.Credentials, or None) the server's API generation as login
    found it: for a 2026 server the night is the one it will give the file. Never
    raises for a problem with the file: it is the explanation (``skipped``). Raises
    ValueError only for a folder whose time zone or classification mode is invalid.
    """
    from oort_lib.local.scan import NOT_CANDIDATE, display_name, is_candidate

    full = os.path.realpath(os.path.abspath(os.path.expanduser(path)))
    folder = watched_folder(full, settings.folders)
    if folder is None:
        relpath = os.path.basename(full)
        rules_folder = Folder(path=os.path.dirname(full))
    else:
        relpath = os.path.relpath(full, folder.path).replace(os.sep, "/")
        rules_folder = folder
    result: dict = {
        "file": display_name(full),
        "watched_folder": folder.path if folder else None,
        "relpath": relpath,
        "skipped": None,
        "destination": _destination(folder, settings),
        "manifest": _manifest_state(manifest, folder, relpath),
        "notes": [],
    }
    if folder is None:
        result["notes"].append("not inside a watched folder: a run would not upload it; "
                               "shown with the default rules (no time zone, folder names)")
    reason = None
    if folder is not None and folder.exclude:
        from oort_lib.local.exclude import EXCLUDED, excluded_by

        pattern = excluded_by(relpath, folder.exclude)
        if pattern is not None:
            reason = f"{EXCLUDED}{pattern} (the folder's exclude patterns; not uploaded)"
    reason = reason or _skip_reason(full, relpath, is_candidate, NOT_CANDIDATE)
    if reason is None:
        reason = _whole_part(result, full)
    if reason is None:
        from oort_lib.local.headers import read_header

        try:
            info = read_header(full)
        except FileProblem as exc:
            reason = exc.reason
        else:
            result["header"] = _header_part(info)
            if info.date is None:
                reason = f"no date found ({info.date_problem})"
            else:
                generation = (known_generation(creds, settings.api, settings.api_dialect)
                              if folder is not None else None)
                _decide_part(result, rules_folder, relpath, info, generation)
                if generation == "2026":
                    _server_part(result, folder, manifest,
                                 destination(settings.api, creds and creds.username,
                                             folder.organisation))
    result["skipped"] = reason
    return result


def _whole_part(result: dict, full: str) -> str | None:
    """Whether the file is a whole frame (its checksums verified, which a run does as
    the file streams to the server): result["whole"], and why it is not sent if not."""
    from oort_lib.errors import ChecksumMismatch, NotWhole
    from oort_lib.local.wholeness import check

    try:
        whole = check(full, verify_checksums=True)
    except NotWhole as exc:
        if not exc.short and not isinstance(exc, ChecksumMismatch):
            # As a run decides (reading.inspect): a damaged file whose header cannot be
            # read is skipped for that.
            from oort_lib.local.headers import read_header

            try:
                read_header(full)
            except FileProblem as unreadable:
                return unreadable.reason
        result["whole"] = {"whole": False, "reason": exc.reason, "short": exc.short}
        if exc.short:
            return (f"not whole: {exc.reason} (waits while it may still be arriving, "
                    "up to partial_wait after its last change; never uploaded as it is)")
        return f"not whole: {exc.reason} (never uploaded as it is)"
    except FileProblem as exc:
        return exc.reason
    result["whole"] = {"whole": True, "summary": whole.summary}
    return None


def _skip_reason(full: str, relpath: str, is_candidate, not_candidate: str) -> str | None:
    if any(part.startswith(".") for part in relpath.split("/")):
        return "hidden file or folder (ignored)"
    if not os.path.isfile(full):
        return "no such file" if not os.path.exists(full) else "not a regular file"
    if not is_candidate(os.path.basename(full)):
        return not_candidate
    if os.path.getsize(full) == 0:
        return "empty file"
    return None


def _header_part(info) -> dict:
    return {
        "date_keyword": info.date_keyword,
        "date_hdu": info.date_hdu,
        "date_raw": info.date_raw,
        "timesys": info.timesys,
        "passed_over": list(info.notes),
        "date_loc": info.date_loc.isoformat() if info.date_loc else None,
        "longitude": info.longitude,
        "longitude_source": info.longitude_keyword,
        "frame_type": info.frame_type,
        "frame_keyword": info.frame_keyword,
        "object": info.target,
        "object_hdu": info.target_hdu,
    }


def _decide_part(result: dict, folder: Folder, relpath: str, info,
                 generation: str | None = None) -> None:
    decided = decide(relpath, folder, info.date.isoformat(), header_facts(info), generation)
    local = decided.local
    when = info.date
    # The UTC instant is known when the header says so, or when a source reads it as UTC.
    if when.tzinfo is not None:
        utc = when.astimezone(timezone.utc).replace(tzinfo=None).isoformat()
    elif (local.source in (TIMEZONE, LONGITUDE, SITE_ZONE, SITE_LONGITUDE)
          or info.date_loc is not None):
        utc = when.isoformat()
    else:
        utc = None
    result.update(
        header_time=when.isoformat(),
        utc=utc,
        local_time=local.when.isoformat(),
        local_time_source=local.source,
        local_time_detail=local.detail,
        night=decided.night,
        kind=decided.kind,
        kind_reason=decided.kind_reason,
        dataset=decided.dataset,
        target=decided.target(info.target) if decided.kind == "observation" else None,
        **({"night_by": decided.night_by} if decided.night_by else {}),
    )
    result["notes"].extend(local.warnings)


def _server_part(result: dict, folder: Folder, manifest, dest: str) -> None:
    """2026: the night log the file's dataset is filed under (the earliest night of its
    files, those uploaded included: run/filing.py), and what the folder's site means."""
    from oort_lib.local.site import Site, site_warnings
    from oort_lib.run.filing import known_filings

    key = (folder.organisation or "", folder.telescope or "", result["dataset"])
    filed = known_filings(manifest, [dest]).get(key) if manifest is not None else None
    result["filed_under"] = min(filter(None, (filed, result["night"])))
    if folder.telescope:
        result["notes"].extend(site_warnings(
            Site(folder.longitude, folder.site_timezone), timezone=folder.timezone,
            telescope=folder.telescope_name or folder.telescope))


def _destination(folder: Folder | None, settings: Settings) -> dict:
    return {
        "api": settings.api,
        "organisation": folder.organisation if folder else None,
        "telescope": folder.telescope if folder else None,
        "telescope_name": folder.telescope_name if folder else None,
        "timezone": folder.timezone if folder else None,
        "classify": folder.classify if folder else "folder",
    }


def _manifest_state(manifest, folder: Folder | None, relpath: str) -> dict | None:
    if manifest is None or folder is None:
        return None
    row = manifest.file(folder.path, relpath)
    if row is None:
        return {"status": "not seen by a run yet"}
    keep = ("status", "reason", "night", "kind", "dataset", "attempts", "uploaded_at",
            "time_source")  # fmt: skip
    return {key: row.get(key) for key in keep}


def explain_lines(data: dict) -> list[str]:
    """The explanation of one file, for people."""
    lines = [data["file"]]
    add = lines.append
    header = data.get("header") or {}
    if header.get("date_keyword"):
        hdu = header["date_hdu"]
        where = f" in HDU {hdu}" if hdu is not None else " (XISF property)"
        add(f"  date:        {header['date_keyword']}{where} = '{header['date_raw']}'"
            + (f", TIMESYS {header['timesys']} converted to UTC" if header["timesys"] else ""))
    for note in header.get("passed_over", []):
        add(f"               passed over: {note}")
    whole = data.get("whole")
    if whole:
        add(f"  whole:       yes ({whole['summary']})" if whole["whole"]
            else f"  whole:       no, {whole['reason']}")
    if data.get("skipped"):
        add(f"  skipped:     {data['skipped']}")
    else:
        add(f"  UTC:         {data['utc'] or 'unknown (the header time is taken as local)'}")
        add(f"  local time:  {data['local_time']}, from {data['local_time_detail']}")
        by = f"{data['night_by']}; " if data.get("night_by") else ""
        add(f"  night:       {data['night']} ({by}nights run from local noon to local noon)")
        if data.get("filed_under") not in (None, data["night"]):
            add(f"  night log:   {data['filed_under']} (a 2026 server files a dataset whole "
                "under the earliest night of its files)")
        add(f"  type:        {data['kind']} ({data['kind_reason']})")
        add(f"  dataset:     {data['dataset']}")
        if data["target"] is not None:
            source = (f"OBJECT in HDU {header['object_hdu']}" if header.get("object")
                      and header.get("object_hdu") is not None
                      else "OBJECT" if header.get("object") else "the dataset name")
            add(f"  target:      {data['target']} (from {source})")
    dest = data["destination"]
    if data["watched_folder"]:
        to = dest["organisation"] or "personal account"
        if dest["telescope"]:
            to += f", telescope {dest['telescope_name'] or dest['telescope']}"
        add(f"  destination: {dest['api']} -> {to} (watched folder {data['watched_folder']})")
    state = data.get("manifest")
    if state:
        text = state["status"] + (f": {state['reason']}" if state.get("reason") else "")
        add(f"  manifest:    {text}")
    lines.extend(f"  note:        {note}" for note in data["notes"])
    return [escaped(line) for line in lines]  # header values and names: escape.py


def explain_files(paths, settings: Settings, files: list[str]) -> list[dict]:
    """`explain`: explain() for each file, with the manifest's record of it and the API
    generation login found (credentials that cannot be read count as none). Raises
    ManifestError when the manifest cannot be read, and what explain() raises."""
    from oort_lib.errors import OortError
    from oort_lib.state import credentials
    from oort_lib.state import manifest as mf

    try:  # offline: only the API generation login found is read
        creds = credentials.load(paths.credentials_file)
    except OortError:
        creds = None
    with mf.Manifest(paths.manifest_file, create=False, readonly=True) as manifest:
        return [explain(path, settings, manifest, creds) for path in files]
