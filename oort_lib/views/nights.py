"""`oort-sync nights`: what each night got, per destination: frames per target, filter
and frame type (light, flat, dark, bias, other), their count and total exposure, how many
are on the server and how many still wait, and the datasets they went to.

Everything comes from the manifest (the header facts the planning read stored there:
decision.FRAME_FACTS); nothing is read again from the files and nothing is asked of the
server. `collect` gives plain data (the `--json` output, and the report's table);
`nights_lines` and `nights_html` render it.
"""

from __future__ import annotations

import html
from datetime import date

from oort_lib.errors import UsageError
from oort_lib.local.rules import FRAME_CLASSES, frame_class
from oort_lib.state import manifest as mf
from oort_lib.state.config import Paths, Settings
from oort_lib.state.destination import parse
from oort_lib.state.migrations import DIR_SQL
from oort_lib.views import weblinks
from oort_lib.views.render import plural

SCHEMA_VERSION = 1
UNKNOWN = "unknown"  # how the text and the page show a fact the header did not give
# Not on the server yet, and will be (or needs a person: failed, conflict). A skipped
# file is not a frame to send and is not counted at all.
WAITING = (mf.PENDING, mf.DEFERRED, mf.FAILED, mf.CONFLICT)
_COUNTS = ("frames", "exposure_s", "without_exposure", "uploaded", "waiting")


def since_date(text: str | None) -> date | None:
    """The date of `--since=DATE` (YYYY-MM-DD), None without it. Raises UsageError."""
    if text is None:
        return None
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        raise UsageError(f"--since={text}: not a date; give the first night as YYYY-MM-DD, "
                         "e.g. --since=2024-03-01.") from None


def nights(paths: Paths, settings: Settings, since: date | None = None) -> dict:
    """`collect` over the manifest of `paths` (opened read-only: a run may be going on).

    Raises ManifestError when the manifest is damaged or written by a newer oort-sync.
    """
    from oort_lib.state import credentials

    creds = credentials.load(paths.credentials_file)
    origin = (settings.api, creds.username if creds else None)
    with mf.Manifest(paths.manifest_file, create=False, origin=origin,
                     readonly=True) as manifest:
        return collect(manifest, since)


def collect(manifest: mf.Manifest, since: date | None = None) -> dict:
    """Nights (newest first, from `since` on) > destinations > rows of (frame type,
    target, filter), with totals at each level. A fact the header did not give is None
    (rows read before the manifest kept it too: migration 0009_frame_facts).

    Files that wait before their header was read (too new, not whole yet) have no night
    yet: `waiting_undated` counts them by status. Raises sqlite3.Error only if the
    manifest cannot be queried.
    """
    where, params = f"night IS NOT NULL AND status != '{mf.SKIPPED}'", []
    if since is not None:
        where += " AND night >= ?"
        params.append(since.isoformat())
    found: dict[str, dict] = {}
    for row in manifest.rows(
        f"SELECT night, destination, {DIR_SQL} AS folder, kind, frame_type, object_name, "
        "filter_name, dataset, dataset_uuid, status, COUNT(*) AS n, SUM(exposure) AS seconds, "
        f"COUNT(exposure) AS timed FROM files WHERE {where} GROUP BY night, destination, "
        "folder, kind, frame_type, object_name, filter_name, dataset, dataset_uuid, status",
        params,
    ):
        night = found.setdefault(row["night"], {"night": row["night"], "destinations": {}})
        dest = night["destinations"].setdefault(row["destination"] or "", {"rows": {}})
        frame = frame_class(row["frame_type"], (row["folder"] or "").rstrip("/"), row["kind"])
        key = (frame, row["object_name"], row["filter_name"])
        entry = dest["rows"].setdefault(key, dict(
            frame=frame, target=row["object_name"], filter=row["filter_name"],
            **_zero(), datasets={}))
        entry["frames"] += row["n"]
        entry["exposure_s"] += row["seconds"] or 0.0
        entry["without_exposure"] += row["n"] - row["timed"]
        entry["uploaded" if row["status"] == mf.UPLOADED else "waiting"] += row["n"]
        link = weblinks.dataset(weblinks.site(row["destination"]), row["dataset_uuid"])
        name = row["dataset"] or ""
        entry["datasets"][name] = entry["datasets"].get(name) or link
    result = {
        "schema": SCHEMA_VERSION,
        "since": since.isoformat() if since else None,
        "nights": [_night(found[night]) for night in sorted(found, reverse=True)],
        "totals": _zero(),
        "waiting_undated": {
            r["status"]: r["n"] for r in manifest.rows(
                "SELECT status, COUNT(*) AS n FROM files WHERE night IS NULL AND status IN "
                f"({', '.join('?' for _ in WAITING)}) GROUP BY status", WAITING)},
    }
    _add(result["totals"], (night["totals"] for night in result["nights"]))
    return result


def _zero() -> dict:
    return {name: 0 for name in _COUNTS} | {"exposure_s": 0.0}


def _add(total: dict, parts) -> dict:
    for part in parts:
        for name in _COUNTS:
            total[name] += part[name]
    total["exposure_s"] = round(total["exposure_s"], 3)
    return total


def _night(night: dict) -> dict:
    destinations = []
    for key, dest in night["destinations"].items():
        parsed = parse(key or None)
        rows = sorted(dest["rows"].values(), key=_order)
        for row in rows:
            row["exposure_s"] = round(row["exposure_s"], 3)
            row["datasets"] = [{"name": name, "link": link}
                               for name, link in sorted(row["datasets"].items())]
        destinations.append({
            "destination": parsed._asdict() if parsed else None,
            "label": parsed.label() if parsed else "destination not recorded",
            "rows": rows,
            "totals": _add(_zero(), rows),
        })
    destinations.sort(key=lambda d: d["label"])
    return {"night": night["night"], "destinations": destinations,
            "totals": _add(_zero(), (d["totals"] for d in destinations))}


def _order(row: dict) -> tuple:
    """Lights first, then flats, darks, biases, others; a known name before unknown."""
    return (FRAME_CLASSES.index(row["frame"]), row["target"] is None, row["target"] or "",
            row["filter"] is None, row["filter"] or "")


# --- text ---------------------------------------------------------------------------------


def duration(seconds: float) -> str:
    """`0.001 s`, `30 s`, `5 min`, `12 min 30 s`, `2 h 05 min` (seconds >= 0)."""
    if seconds < 60:
        return f"{round(seconds, 3):g} s"
    whole = round(seconds)
    if whole < 3600:
        minutes, secs = divmod(whole, 60)
        return f"{minutes} min {secs} s" if secs else f"{minutes} min"
    hours, minutes = divmod(round(seconds / 60), 60)
    return f"{hours} h {minutes:02d} min"


def exposure_text(part: dict) -> str:
    """The total exposure of a row or total, and how many frames did not say theirs."""
    missing = part["without_exposure"]
    if missing and missing == part["frames"]:
        return UNKNOWN
    text = duration(part["exposure_s"])
    return f"{text} (+{missing} {UNKNOWN})" if missing else text


def _state(part: dict) -> str:
    return f"{part['uploaded']} uploaded" + (f", {part['waiting']} waiting"
                                             if part["waiting"] else "")


def nights_lines(data: dict) -> list[str]:
    """`oort-sync nights` as text: per night and destination, an aligned table."""
    lines: list[str] = []
    if not data["nights"]:
        lines.append(f"No night since {data['since']} in the manifest." if data["since"] else
                     "No night in the manifest yet: `oort-sync run` uploads the watched "
                     "folders and records each file's night.")
    for night in data["nights"]:
        t = night["totals"]
        lines += [*_gap(lines), f"Night {night['night']}: {plural(t['frames'], 'frame')}, "
                  f"{exposure_text(t)}, {_state(t)}"]
        for dest in night["destinations"]:
            lines.append(f"  {dest['label']}")
            table = [("frame", "target", "filter", "frames", "exposure", "uploaded", "waiting")]
            table += [(r["frame"], r["target"] or UNKNOWN, r["filter"] or UNKNOWN,
                       str(r["frames"]), exposure_text(r), str(r["uploaded"]),
                       str(r["waiting"])) for r in dest["rows"]]
            widths = [max(len(cells[i]) for cells in table) for i in range(len(table[0]))]
            for cells in table:
                lines.append("    " + "  ".join(
                    cell.rjust(width) if i >= 3 else cell.ljust(width)
                    for i, (cell, width) in enumerate(zip(cells, widths))).rstrip())
            links = sorted({(d["name"], d["link"]) for r in dest["rows"] for d in r["datasets"]
                            if d["link"]})
            lines += [f"    dataset {name}: {link}" for name, link in links]
    undated = data["waiting_undated"]
    if undated:
        said = ", ".join(f"{count} {status}" for status, count in sorted(undated.items()))
        lines += [*_gap(lines), "Also waiting, their night known once their header is read "
                  f"(too new, not whole yet, unreadable: see `oort-sync status`): {said}."]
    return lines


def _gap(lines: list[str]) -> list[str]:
    """A blank line between blocks, none before the first."""
    return [""] if lines else []


# --- HTML (the report's "Frames per night") -----------------------------------------------


def nights_html(data: dict, open_nights: int = 14) -> list[str]:
    """The report's section: a folding table per night (the newest `open_nights` open)."""
    out = ["<h2>Frames per night</h2>"]
    if not data["nights"]:
        return out + ["<p>No night yet.</p>"]
    for index, night in enumerate(data["nights"]):
        t = night["totals"]
        out.append(f'<details class="frames"{" open" if index < open_nights else ""}><summary>'
                   f"Night {_e(night['night'])} <span class=\"muted\">"
                   f"{_e(plural(t['frames'], 'frame'))}, {_e(exposure_text(t))}, "
                   f"{_e(_state(t))}</span></summary>")
        out.append("<table><tr><th>Frame</th><th>Target</th><th>Filter</th><th>Frames</th>"
                   "<th>Exposure</th><th>Uploaded</th><th>Waiting</th><th>Datasets</th></tr>")
        for dest in night["destinations"]:
            out.append(f'<tr><th colspan="8">{_e(dest["label"])}</th></tr>')
            for r in dest["rows"]:
                datasets = ", ".join(f"{_e(d['name'])}{weblinks.anchor(d['link'], 'on the server')}"
                                     for d in r["datasets"])
                waiting = f'<span class="warn">{r["waiting"]}</span>' if r["waiting"] else "0"
                out.append(
                    f"<tr><td>{_e(r['frame'])}</td><td>{_e(r['target'] or UNKNOWN)}</td>"
                    f"<td>{_e(r['filter'] or UNKNOWN)}</td><td class=\"n\">{r['frames']}</td>"
                    f"<td class=\"n\">{_e(exposure_text(r))}</td>"
                    f"<td class=\"n\">{r['uploaded']}</td><td class=\"n\">{waiting}</td>"
                    f"<td>{datasets}</td></tr>")
        out.append("</table></details>")
    return out


def _e(value) -> str:
    return html.escape("" if value is None else str(value), quote=True)
