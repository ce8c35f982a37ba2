"""What is known right now: counts per watched folder, the last runs, the lock holder,
how far behind the uploads are (the oldest file waiting) and when failed files are retried.

`status()` returns plain data with a stable, documented schema (README, "status --json"):
monitoring scripts read it, so fields are only ever added, never renamed.
"""

from __future__ import annotations

import time

from oort_lib.run.reasons import FOUND_SQL, kind_of
from oort_lib.state import manifest as mf
from oort_lib.state.config import Paths, Settings
from oort_lib.state.credentials import Credentials
from oort_lib.state.destination import Destination, destination
from oort_lib.state.lock import current_holder
from oort_lib.state.records import RunState, rfc3339, run_state

SCHEMA_VERSION = 1
MAX_CONFLICTS = 100  # listed one by one per folder (the counts say how many in all)
# The files waiting to go up: pending, deferred, and postponed (failed for a transient
# reason, retried at their retry_at). A permanent failure waits for a person, not a run.
WAITING_SQL = (f"(status IN ('{mf.PENDING}', '{mf.DEFERRED}') OR "
               f"(status = '{mf.FAILED}' AND transient = 1))")


def status(paths: Paths, settings: Settings, creds: Credentials | None = None) -> dict:
    """Per folder: where its files go (destination, API generation) and how many of
    them are there. Uploads recorded for another destination count as pending here.

    Raises ManifestError when the manifest is damaged.
    """
    holder = current_holder(paths.lock_file)
    now = time.time()
    account = creds.username if creds else None
    generation = settings.api_dialect if settings.api_dialect != "auto" else None
    if creds and creds.generation and (creds.api or "").rstrip("/") == settings.api:
        generation = generation or creds.generation
    result: dict = {
        "schema": SCHEMA_VERSION,
        "generated_at": _iso(now),
        "api": settings.api,
        "running": None,
        "last_run": None,
        "last_success": None,
        # The oldest file waiting: its age (the ingest lag) and since when; the first
        # retry of the postponed files. Null when none (per folder too).
        "lag_seconds": None,
        "waiting_since": None,
        "next_retry": None,
        "folders": [],
        "totals": {s: 0 for s in mf.STATUSES} | {"bytes_uploaded": 0, "already_on_server": 0},
    }
    result["paths"] = {"config": str(paths.config_file), "state": str(paths.state_dir),
                       "log": str(paths.log_file)}
    if holder is not None:
        result["running"] = {"pid": holder.pid, "since": _iso(holder.since)}
    with mf.Manifest(paths.manifest_file, create=False, origin=(settings.api, account),
                     readonly=True) as manifest:
        runs = manifest.last_runs(1)
        if runs:
            holder_pid = holder.pid if holder is not None else None
            result["last_run"] = run_record(runs[0], holder_pid=holder_pid)
            if result["running"] is not None and result["last_run"]["state"] == RunState.RUNNING:
                result["running"].update(_so_far(manifest, runs[0]["started_at"]))
        ok = manifest.rows(
            "SELECT * FROM runs WHERE exit_code IN (0, 1) ORDER BY id DESC LIMIT 1"
        )
        if ok:
            result["last_success"] = run_record(ok[0])
        times = []  # each folder's (waiting since, next retry)
        for folder in settings.folders:
            # Its files are recorded under the path it resolves to now (a symlink).
            root = _resolve(folder.path)
            entry = {
                "path": folder.path,
                "organisation": folder.organisation,
                "telescope": folder.telescope,
                "telescope_name": folder.telescope_name,
                "timezone": folder.timezone,
                "destination": Destination(settings.api, account or "",
                                           folder.organisation or "")._asdict(),
                "generation": generation,
                "counts": {s: 0 for s in mf.STATUSES},
                "bytes_uploaded": 0,
                # Of `counts["uploaded"]`: found there, not sent from here (no bytes).
                "already_on_server": 0,
                "reasons": [],
            }
            here = destination(settings.api, account, folder.organisation)
            for row in manifest.rows(
                f"SELECT CASE WHEN status = '{mf.UPLOADED}' AND destination IS NOT ? THEN "
                f"'{mf.PENDING}' ELSE status END AS state, COUNT(*) AS n, SUM(CASE WHEN "
                f"status = '{mf.UPLOADED}' AND destination IS ? AND NOT {FOUND_SQL} THEN "
                f"uploaded_size ELSE 0 END) AS b, SUM(destination IS ? AND {FOUND_SQL}) AS "
                "found FROM files WHERE root = ? GROUP BY state",
                (here, here, here, root),
            ):
                entry["counts"][row["state"]] += row["n"]
                entry["bytes_uploaded"] += row["b"] or 0
                entry["already_on_server"] += row["found"] or 0
            entry["reasons"] = _by_kind(manifest.rows(
                "SELECT status, reason, COUNT(*) AS files FROM files WHERE root = ? AND "
                f"(status IN ('{mf.FAILED}', '{mf.SKIPPED}', '{mf.DEFERRED}') OR (status = "
                f"'{mf.UPLOADED}' AND reason LIKE '%not verified%')) GROUP BY status, reason "
                "ORDER BY status, files DESC",
                (root,),
            ))
            # Each conflict with both paths: its own and the other's (in the reason).
            entry["conflicts"] = [
                {"path": row["relpath"], "reason": row["reason"]}
                for row in manifest.rows(
                    "SELECT relpath, reason FROM files WHERE root = ? AND status = ? "
                    "ORDER BY relpath LIMIT ?", (root, mf.CONFLICT, MAX_CONFLICTS))
            ]
            # Said once per folder, not per file: see localtime (the Oort docs' assumption).
            entry["assumed_local_time"] = manifest.rows(
                "SELECT COUNT(*) AS n FROM files WHERE root = ? AND time_source = ?",
                (root, "assumed local"),
            )[0]["n"]
            since, retry = waiting(manifest, root)
            entry.update(_lag(since, retry, now))
            times.append((since, retry))
            for key, value in entry["counts"].items():
                result["totals"][key] += value
            result["totals"]["bytes_uploaded"] += entry["bytes_uploaded"]
            result["totals"]["already_on_server"] += entry["already_on_server"]
            result["folders"].append(entry)
    result.update(_lag(min((s for s, _r in times if s is not None), default=None),
                       min((r for _s, r in times if r is not None), default=None), now))
    return result


_iso = rfc3339


def waiting(manifest: mf.Manifest, root: str | None = None) -> tuple[float | None, float | None]:
    """(since when the oldest file waits, the first retry time of the postponed files)
    among the files of `root` (all when None); None when there is none.

    A file waits since the manifest first saw it, or since it last changed if that is
    later (a file changed after its upload goes up again).
    """
    where, args = (" AND root = ?", (root,)) if root is not None else ("", ())
    row = manifest.rows(
        "SELECT MIN(MAX(COALESCE(first_seen, updated_at, 0), COALESCE(mtime_ns, 0) / 1e9)) "
        f"AS since, MIN(CASE WHEN status = '{mf.FAILED}' THEN retry_at END) AS retry "
        f"FROM files WHERE {WAITING_SQL}{where}", args)[0]
    return row["since"], row["retry"]


def _lag(since: float | None, retry: float | None, now: float) -> dict:
    """The fields of the lag (see waiting): its age in seconds, since when, next retry."""
    since = None if since is None else min(since, now)  # a file modified in the future
    # In whole seconds, as the stamps are written: generated_at - waiting_since.
    return {"lag_seconds": None if since is None else int(now) - int(since),
            "waiting_since": _iso(since), "next_retry": _iso(retry)}


def _by_kind(rows: list[dict]) -> list[dict]:
    """The (status, reason, files) rows, the reasons of one kind in one group (reasons.
    kind_of: "no date found", whatever each file's detail); a group with details names
    its most common one as `example`. Most files first within each status."""
    groups: dict[tuple, dict] = {}
    for row in rows:
        kind, detail = kind_of(row["reason"]) if row["reason"] else (None, None)
        group = groups.setdefault((row["status"], kind),
                                  {"status": row["status"], "reason": kind, "files": 0})
        group["files"] += row["files"]
        if detail and "example" not in group:  # rows come most files first
            group["example"] = detail
    return sorted(groups.values(), key=lambda g: (g["status"], -g["files"]))


def _resolve(path: str) -> str:
    import os

    try:
        return os.path.realpath(path)
    except (OSError, ValueError):
        return path


def _so_far(manifest: mf.Manifest, since: float) -> dict:
    """What the run in progress has done so far (the files it recorded)."""
    uploaded, failed, pending = mf.UPLOADED, mf.FAILED, mf.PENDING
    row = manifest.rows(
        f"SELECT SUM(status = '{uploaded}') AS uploaded, SUM(status = '{failed}') AS failed, "
        f"SUM(CASE WHEN status = '{uploaded}' THEN uploaded_size ELSE 0 END) AS bytes, "
        f"(SELECT COUNT(*) FROM files WHERE status = '{pending}') AS pending "
        f"FROM files WHERE updated_at >= ? AND status IN ('{uploaded}', '{failed}')",
        (since,))[0]
    return {"uploaded_so_far": row["uploaded"] or 0, "failed_so_far": row["failed"] or 0,
            "bytes_so_far": row["bytes"] or 0, "pending": row["pending"] or 0}


def run_record(row: dict, stamp=_iso, holder_pid: int | None = None) -> dict:
    """A row of the runs table as plain data, times written by `stamp`; `state` is
    finished, running (`holder_pid`, the lock holder, is its process) or did not finish."""
    ended = row.get("ended_at")
    return {
        "state": run_state(row, holder_pid),
        "pid": row.get("pid"),
        "started_at": stamp(row["started_at"]),
        "ended_at": stamp(ended),
        "seconds": round(ended - row["started_at"], 3) if ended else None,
        "exit_code": row.get("exit_code"),
        "uploaded": row.get("uploaded") or 0,
        "already": row.get("already") or 0,  # found on the server, not sent
        "failed": row.get("failed") or 0,
        "bytes": row.get("bytes") or 0,
        "message": row.get("message"),
    }
