"""The report's problems: files failed, in conflict or skipped, grouped by reason.

A reason of a kind whose detail differs from file to file ("no date found (DATE-OBS 'x'
is not a valid date)") is one group, each path listed with its own detail
(reasons.kind_of), as `status` groups them.
"""

from __future__ import annotations

import html
import os

from oort_lib.run.reasons import kind_of
from oort_lib.state import manifest as mf
from oort_lib.views import weblinks
from oort_lib.views.render import plural

# A reason shared by thousands of files lists only the first ones.
MAX_PATHS = 50


def _e(value) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def problems(manifest: mf.Manifest, status: str) -> list[dict]:
    """Files of one status grouped by the kind of their reason, biggest group first:
    each with `paths`, their `details` (None for a reason of no kind) and, for a failed
    file whose dataset has others on the server, a `links` to it.

    Raises sqlite3.Error only if the manifest cannot be queried.
    """
    groups: dict[str, dict] = {}
    known: dict[tuple, str | None] = {}
    if status == mf.FAILED:
        for row in manifest.rows(
                "SELECT root, night, dataset, MAX(dataset_uuid) AS ds, "
                "MAX(destination) AS dest FROM files WHERE dataset_uuid IS NOT NULL "
                "GROUP BY root, night, dataset"):
            known[(row["root"], row["night"], row["dataset"])] = weblinks.dataset(
                weblinks.site(row["dest"]), row["ds"])
    for row in manifest.rows("SELECT root, relpath, reason, transient, night, dataset "
                             "FROM files WHERE status = ? ORDER BY root, relpath", (status,)):
        reason, detail = kind_of(row["reason"] or "no reason recorded")
        group = groups.setdefault(reason, {"reason": reason, "transient": bool(row["transient"]),
                                           "count": 0, "paths": [], "details": [], "links": []})
        group["count"] += 1
        if len(group["paths"]) < MAX_PATHS:
            group["paths"].append(os.path.join(row["root"], row["relpath"]))
            group["details"].append(detail)
            group["links"].append(known.get((row["root"], row["night"], row["dataset"])))
    return sorted(groups.values(), key=lambda g: (-g["count"], g["reason"]))


def problem_sections(found: dict) -> list[str]:
    """The HTML sections of `found` (status -> problems()): failures, conflicts (when
    there are some) and skipped files."""
    out = []
    for status, title, empty in (
        (mf.FAILED, "Failures", "No failed file."),
        (mf.CONFLICT, "Conflicts", None),
        (mf.SKIPPED, "Skipped files", "No skipped file."),
    ):
        if empty is None and not found.get(status):
            continue  # conflicts: a section only when there are some
        out.append(f"<h2>{title}</h2>")
        if status == mf.CONFLICT:
            out.append("<p>Each of these files has the same name on the server as another "
                       "(named in the reason) with another content: nothing was sent for "
                       "it. Rename or move one of the two; the next run sends it.</p>")
        if not found.get(status):
            out.append(f"<p>{empty}</p>")
        for group in found.get(status) or ():
            retry = ""
            if status == mf.FAILED:
                retry = (" (transient: retried automatically)" if group["transient"]
                         else " (retried when the file changes, or with run --retry-failed)")
            out.append(f'<details class="{status}"><summary>{_e(group["reason"])} '
                       f'<span class="muted">{_e(plural(group["count"], "file"))}'
                       f"{_e(retry)}</span></summary><ul class=\"paths\">")
            count = len(group["paths"])
            for path, detail, link in zip(group["paths"],
                                          group.get("details") or [None] * count,
                                          group.get("links") or [None] * count):
                out.append(f"<li>{_e(path)}{_e(': ' + detail) if detail else ''}"
                           f"{weblinks.anchor(link, 'its dataset on the server')}</li>")
            more = group["count"] - count
            if more > 0:
                out.append(f"<li>&hellip; and {more} more (oort-sync status)</li>")
            out.append("</ul></details>")
    return out
