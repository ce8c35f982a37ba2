"""The sandbox's HTML page at ``/``: what it has received, for a person trying oort-sync.

Served without a key on purpose: it is a local viewer for a server bound to loopback by
default, and it shows names and sizes only, never keys or file contents. Plain HTML, no
script and no external resource; every name comes from a client and is escaped.
"""

from __future__ import annotations

from collections import defaultdict
from html import escape

from oort_lib.sandbox.store import Store

MAX_FILES_SHOWN = 500

_STYLE = """
body { font-family: sans-serif; margin: 2em; color: #222; }
h2 { border-bottom: 1px solid #ccc; padding-bottom: .2em; margin-top: 2em; }
ul { list-style: none; padding-left: 1.2em; }
li { margin: .3em 0; }
.kind { color: #666; font-size: .85em; text-transform: uppercase; }
table { border-collapse: collapse; margin: .3em 0 .6em 1.2em; font-size: .9em; }
td { padding: .1em .8em .1em 0; }
td.size { text-align: right; font-variant-numeric: tabular-nums; }
.empty { color: #888; }
"""


def render(store: Store) -> str:
    nightlogs = store.objects("nightlogs")
    children: dict[str, list[tuple[str, dict]]] = defaultdict(list)
    for kind in ("observations", "calibrations"):
        for row in store.objects(kind):
            children[row["night_log"]].append((kind, row))
    datasets: dict[str, list[dict]] = defaultdict(list)
    # 2026 datasets not (yet) in a night log: their files had no date, or none came.
    loose: dict[tuple, list[dict]] = defaultdict(list)
    for row in store.objects("datasets"):
        parent = row["observation"] or row["calibration"]
        if parent:
            datasets[parent].append(row)
        else:
            loose[(row["org"] is not None, row["org"] or row["owner"])].append(row)
    files: dict[str, list[dict]] = defaultdict(list)
    for row in store.objects("datafiles"):
        files[row["dataset"]].append(row)
    telescopes = {t["uuid"]: t["name"] for t in store.objects("telescopes")}

    spaces: dict[tuple, list[dict]] = defaultdict(list)
    for row in nightlogs:
        spaces[(row["org"] is not None, row["org"] or row["owner"])].append(row)
    for subdomain in store.organisations():
        spaces.setdefault((True, subdomain), [])
    for space in loose:
        spaces.setdefault(space, [])

    out = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
           "<title>oort-sync sandbox</title>", f"<style>{_STYLE}</style></head><body>",
           "<h1>oort-sync sandbox</h1>",
           f"<p>{_plural(len(nightlogs), 'night log')}, {_plural(_count(files), 'file')}, "
           f"{_size(sum(r['size'] for rows in files.values() for r in rows))} received.</p>"]
    for (is_org, name), logs in sorted(spaces.items()):
        if is_org:
            org = store.organisation(name)
            title = f"Organisation {escape(org['name'] if org else name)} ({escape(name)})"
        else:
            title = f"Personal account of {escape(name)}"
        out.append(f"<h2>{title}</h2>")
        if loose.get((is_org, name)):
            out.append('<ul><li><span class="kind">Not in a night log</span><ul>')
            for dataset in loose[(is_org, name)]:
                out.extend(_dataset(dataset, files.get(dataset["uuid"], [])))
            out.append("</ul></li></ul>")
        if not logs:
            if not loose.get((is_org, name)):
                out.append('<p class="empty">Nothing received yet.</p>')
            continue
        out.append("<ul>")
        for log in sorted(logs, key=lambda r: (r["date"], r["created"])):
            scope = telescopes.get(log["telescope"], "no telescope")
            out.append(f'<li id="nightlog-{escape(log["uuid"])}">'
                       f'<span class="kind">Night log</span> {escape(log["date"])}'
                       f" &middot; {escape(scope)}<ul>")
            for kind, parent in children.get(log["uuid"], []):
                label = "Observation" if kind == "observations" else "Calibration"
                target = ""
                if kind == "observations" and parent["target_name"] != parent["name"]:
                    target = f" (target {escape(parent['target_name'])})"
                out.append(f'<li><span class="kind">{label}</span> '
                           f"{escape(parent['name'])}{target}<ul>")
                for dataset in datasets.get(parent["uuid"], []):
                    out.extend(_dataset(dataset, files.get(dataset["uuid"], [])))
                out.append("</ul></li>")
            out.append("</ul></li>")
        out.append("</ul>")
    out.append("</body></html>")
    return "\n".join(out)


def _dataset(dataset: dict, rows: list[dict]) -> list[str]:
    total = sum(r["size"] for r in rows)
    out = [f'<li id="dataset-{escape(dataset["uuid"])}"><span class="kind">Dataset</span> '
           f'{escape(dataset["name"])}'
           f" &middot; {_plural(len(rows), 'file')}, {_size(total)}"]
    if rows:
        out.append("<table>")
        for row in rows[:MAX_FILES_SHOWN]:
            out.append(f"<tr><td>{escape(row['filename'])}</td>"
                       f'<td class="size">{_size(row["size"]) if row["size"] >= 1000 else ""}</td>'
                       f'<td class="size">{row["size"]} bytes</td></tr>')
        out.append("</table>")
        if len(rows) > MAX_FILES_SHOWN:
            out.append(f'<p class="empty">and {len(rows) - MAX_FILES_SHOWN} more files</p>')
    out.append("</li>")
    return out


def _plural(n: int, word: str) -> str:
    # The sandbox stands for the server: it borrows nothing of the client's views/.
    return f"{n} {word}" + ("" if n == 1 else "s")


def _count(files: dict[str, list[dict]]) -> int:
    return sum(len(rows) for rows in files.values())


def _size(n: int) -> str:
    value = float(n)
    for unit in ("bytes", "KB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{n} bytes" if unit == "bytes" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{n} bytes"
