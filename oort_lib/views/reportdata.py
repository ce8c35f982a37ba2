"""What the report shows, gathered from the manifest and the settings as plain data
(report.py turns it into HTML)."""

from __future__ import annotations

import time
from urllib.parse import urlsplit

from oort_lib.local.localtime import folder_clock
from oort_lib.run.reasons import FOUND_SQL
from oort_lib.run.result import Outcome
from oort_lib.state import manifest as mf
from oort_lib.state.config import Settings
from oort_lib.views import weblinks
from oort_lib.views.nights import collect as frames_per_night
from oort_lib.views.problems import problems
from oort_lib.views.render import lag_lines
from oort_lib.views.status import run_record, waiting

RECENT_RUNS = 10
# Bytes sent to the server: only uploaded rows count, not files found there already.
_BYTES = (f"SUM(CASE WHEN status = '{mf.UPLOADED}' AND NOT {FOUND_SQL} "
          "THEN COALESCE(uploaded_size, size, 0) ELSE 0 END)")
# A file found on the server is counted apart from the uploads.
_STATE = f"CASE WHEN {FOUND_SQL} THEN '{Outcome.ALREADY}' ELSE status END"


def _stamp(seconds: float | None) -> str | None:
    if seconds is None:
        return None
    return time.strftime("%Y-%m-%d %H:%M:%S %z", time.localtime(seconds))


def _run(row: dict) -> dict:
    return run_record(row, stamp=_stamp)


def collect(manifest: mf.Manifest, settings: Settings, generation: str | None = None) -> dict:
    """Everything the page shows, as plain data; `generation`, the server's API
    generation if known, says who dates the folders' nights (a 2026 server does).

    Raises sqlite3.Error only if the manifest cannot be queried.
    """
    summary: dict = {status: 0 for status in mf.STATUSES}
    summary["bytes"] = summary[Outcome.ALREADY] = 0  # `uploaded` counts only files sent
    for row in manifest.rows(f"SELECT {_STATE} AS state, COUNT(*) AS n, {_BYTES} AS b "
                             "FROM files GROUP BY state"):
        summary[row["state"]] = row["n"]
        summary["bytes"] += row["b"] or 0
    runs = manifest.last_runs(RECENT_RUNS)
    summary["runs"] = manifest.rows("SELECT COUNT(*) AS n FROM runs")[0]["n"]
    summary["last_run"] = _run(runs[0]) if runs else None
    # How far behind the uploads are: the oldest file waiting, the next retry (status).
    summary["lag"] = lag_lines(*waiting(manifest), time.time(), _stamp)
    names = {f.telescope: f.telescope_name for f in settings.folders if f.telescope}
    return {
        "generated_at": _stamp(time.time()),
        # The host alone: the page shows where files went without holding any URL.
        "api": urlsplit(settings.api).netloc or settings.api,
        "folders": [{"path": f.path, "organisation": f.organisation,
                     "telescope": f.telescope_name or f.telescope, "timezone": f.timezone,
                     "nights_by": _nights_by(f, generation)}
                    for f in settings.folders],
        "summary": summary,
        "runs": [_run(r) for r in runs],
        "night_logs": _night_logs(manifest, names),
        "frames": frames_per_night(manifest),  # what `oort-sync nights` shows
        "problems": {status: problems(manifest, status)
                     for status in (mf.FAILED, mf.CONFLICT, mf.SKIPPED)},
        "history": [
            {"night": r["night"], "files": r["n"], "bytes": r["b"] or 0}
            for r in manifest.rows(
                f"SELECT night, COUNT(*) AS n, {_BYTES} AS b FROM files "
                f"WHERE status = '{mf.UPLOADED}' AND NOT {FOUND_SQL} AND night IS NOT NULL "
                "GROUP BY night ORDER BY night")
        ],
    }


def _nights_by(folder, generation: str | None) -> str:
    """What dates the folder's nights, for people: on a 2026 server the telescope's site
    (servernight.py); else the local time of a header without DATE-LOC or a longitude."""
    if generation == "2026":
        from oort_lib.local.servernight import night_label
        from oort_lib.local.site import Site

        return night_label(Site(folder.longitude, folder.site_timezone))
    return folder_clock(folder.timezone, folder.longitude)


def _night_logs(manifest: mf.Manifest, telescope_names: dict) -> list[dict]:
    """Night logs, newest first; each observation/calibration has its one dataset."""
    logs: dict[tuple, dict] = {}
    # Skipped files never reach a night log (most have no date at all).
    for row in manifest.rows(
        f"SELECT night, organisation, telescope, kind, dataset, target, {_STATE} AS status, "
        f"COUNT(*) AS n, SUM(COALESCE(size, 0)) AS size, {_BYTES} AS b, "
        "MAX(nightlog_uuid) AS nl, MAX(dataset_uuid) AS ds, MAX(destination) AS dest FROM files "
        f"WHERE night IS NOT NULL AND status != '{mf.SKIPPED}' "
        "GROUP BY night, organisation, telescope, kind, dataset, target, status"
    ):
        org, telescope = row["organisation"] or None, row["telescope"] or None
        log = logs.setdefault((row["night"], org or "", telescope or ""), {
            "night": row["night"], "organisation": org,
            "telescope": telescope_names.get(telescope) or telescope, "files": 0, "bytes": 0,
            "observations": {}, "calibrations": {}, "link": None})
        where = weblinks.site(row["dest"])
        log["link"] = log["link"] or weblinks.night_log(where, row["nl"], row["night"])
        group = "calibrations" if row["kind"] == "calibration" else "observations"
        name = row["dataset"] or ""
        entry = log[group].setdefault(name, {"name": name, "target": set(), "datasets": [
            {"name": name, "files": 0, "size": 0, "bytes": 0, mf.UPLOADED: 0, Outcome.ALREADY: 0,
             mf.PENDING: 0, mf.DEFERRED: 0, mf.FAILED: 0}]})
        if group == "observations" and row["target"]:
            entry["target"].add(row["target"])
        dataset = entry["datasets"][0]
        dataset["link"] = dataset.get("link") or weblinks.dataset(where, row["ds"])
        for key, value in (("files", row["n"]), ("size", row["size"]), ("bytes", row["b"]),
                           (row["status"], row["n"])):
            dataset[key] = dataset.get(key, 0) + (value or 0)
        log["files"] += row["n"]
        log["bytes"] += row["b"] or 0
    result = [logs[key] for key in sorted(logs, reverse=True)]
    for log in result:
        for group in ("observations", "calibrations"):
            log[group] = [dict(e, target=", ".join(sorted(e["target"])) or None)
                          for _, e in sorted(log[group].items())]
    return result
