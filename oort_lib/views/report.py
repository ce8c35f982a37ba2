"""`oort-sync report`: one self-contained HTML page of what the manifest knows.

It stands in for the Oort-Cloud web monitor in a daemon-free design, so it must open from
a USB stick or an e-mail attachment on a machine with no network: inline CSS, an inline
SVG chart, no script, and a Content-Security-Policy that forbids loading anything at all.
reportdata.collect gathers plain data, `render_report` turns it into HTML (pure, for tests).
"""

from __future__ import annotations

import contextlib
import html
import os
from pathlib import Path

from oort_lib.errors import EXIT_CODES, ConfigError
from oort_lib.run.result import Outcome
from oort_lib.state import manifest as mf
from oort_lib.state.config import Paths, Settings
from oort_lib.views import weblinks
from oort_lib.views.chart import bar_chart
from oort_lib.views.nights import nights_html
from oort_lib.views.problems import problem_sections
from oort_lib.views.render import human_bytes, plural
from oort_lib.views.reportdata import collect

DEFAULT_OUTPUT = "oort-sync-report.html"
# Older night logs start folded so a years-long history stays readable.
OPEN_NIGHTS = 14


# --- HTML ------------------------------------------------------------------------------

_CSS = """
body{font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1d2330;
background:#f4f5f8;margin:0}
main{max-width:1100px;margin:0 auto;padding:24px}
h1{font-size:1.6em;margin:0 0 4px}h2{margin:32px 0 10px;font-size:1.25em}
.muted{color:#5f6878;font-size:.9em}
.cards{display:grid;grid-template-columns:repeat(auto-fit,minmax(118px,1fr));gap:10px}
.card{background:#fff;border:1px solid #dde1e8;border-radius:8px;padding:10px 14px}
.card b{display:block;font-size:1.5em}.card.bad b{color:#b42318}.card.warn b{color:#9a6700}
table{border-collapse:collapse;width:100%;background:#fff;margin:6px 0 14px}
th,td{text-align:left;padding:5px 9px;border-bottom:1px solid #e6e9ef;vertical-align:top}
th{background:#eef1f6;font-weight:600}td.n{text-align:right;white-space:nowrap}
details{background:#fff;border:1px solid #dde1e8;border-radius:8px;margin:10px 0;padding:8px 14px}
summary{cursor:pointer;font-weight:600}summary .muted{font-weight:400}
.tag{display:inline-block;border-radius:4px;padding:0 6px;font-size:.85em;background:#e3ecfb}
.tag.cal{background:#efe6fa}.bad{color:#b42318}.warn{color:#9a6700}
ul.paths{margin:4px 0 8px;font-family:ui-monospace,Menlo,Consolas,monospace;font-size:.85em}
svg{background:#fff;border:1px solid #dde1e8;border-radius:8px;width:100%;height:auto}
svg text{font:12px system-ui,sans-serif;fill:#444}svg .bar{fill:#3466c2}
svg .grid{stroke:#e3e6ec}svg .axis{stroke:#555}
"""


def _e(value) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def render_report(data: dict) -> str:
    """The complete HTML page for ``collect``'s data (no I/O)."""
    s = data["summary"]
    anything = any(s[status] for status in mf.STATUSES) or s["runs"]
    parts = [
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        # Belt and braces: even a stray reference in a file name could not load anything.
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; "
        "style-src 'unsafe-inline'\">",
        f"<title>oort-sync report, {_e(data['generated_at'])}</title>",
        f"<style>{_CSS}</style></head><body><main>",
        f"<h1>oort-sync report</h1><p class=\"muted\">Generated {_e(data['generated_at'])}"
        f" &middot; server {_e(data['api'])}</p>",
    ]
    if not anything:
        parts.append("<p><strong>Nothing was uploaded yet.</strong> The manifest has no file "
                     "and no run: watch a folder and let <code>oort-sync run</code> work.</p>")
    parts += _summary(data)
    if anything:
        # What an operator checks first (is it working? what is wrong?) comes first.
        parts += _history(data["history"])
        parts += problem_sections(data["problems"])
        parts += nights_html(data["frames"], OPEN_NIGHTS)
        parts += _nights(data["night_logs"])
        parts += _runs(data["runs"])
    parts.append("</main></body></html>")
    return "\n".join(parts) + "\n"


def _summary(data: dict) -> list[str]:
    s = data["summary"]
    cards = [
        ("Files uploaded", s[mf.UPLOADED], ""),
        ("Bytes uploaded", human_bytes(s["bytes"]), ""),
        *((("Already on the server", s[Outcome.ALREADY], ""),) if s.get(Outcome.ALREADY) else ()),
        ("Failed", s[mf.FAILED], "bad" if s[mf.FAILED] else ""),
        *((("Conflicts", s[mf.CONFLICT], "bad"),) if s.get(mf.CONFLICT) else ()),
        ("Pending", s[mf.PENDING], ""),
        ("Deferred", s[mf.DEFERRED], ""),
        ("Skipped", s[mf.SKIPPED], "warn" if s[mf.SKIPPED] else ""),
        ("Night logs", len(data["night_logs"]), ""),
    ]
    out = ["<h2>Summary</h2>", '<div class="cards">',
           *(f'<div class="card {cls}"><b>{_e(v)}</b>{_e(label)}</div>' for label, v, cls in cards),
           "</div>"]
    last = s["last_run"]
    if last:
        out.append(f"<p>Last run: started {_e(last['started_at'])}, {_run_outcome(last)}."
                   f" {_e(plural(s['runs'], 'run'))} recorded.</p>")
    else:
        out.append("<p>No run recorded yet.</p>")
    out += [f'<p class="lag">{_e(line)}</p>'
            for line in s.get("lag") or ["No file waits to go up."]]
    if data["folders"]:
        out.append("<table><tr><th>Watched folder</th><th>Organisation</th><th>Telescope</th>"
                   "<th>Nights dated by</th></tr>")
        for f in data["folders"]:
            out.append(f"<tr><td>{_e(f['path'])}</td><td>{_e(f['organisation'] or 'personal')}"
                       f"</td><td>{_e(f['telescope'] or '')}</td>"
                       f"<td>{_e(f.get('nights_by') or f['timezone'])}</td></tr>")
        out.append("</table>")
    return out


def _run_outcome(run: dict) -> str:
    if run["exit_code"] is None:
        return "still running, or stopped without finishing"
    meaning = EXIT_CODES.get(run["exit_code"], "unknown exit code")
    text = (f"{_duration(run['seconds'] or 0)}, exit code {run['exit_code']}: {meaning}; "
            f"{run['uploaded']} uploaded ({human_bytes(run['bytes'])}), "
            + (f"{run['already']} already on the server, " if run.get("already") else "")
            + f"{run['failed']} failed")
    return _e(text + (f": {run['message']}" if run.get("message") else ""))


def _nights(logs: list[dict]) -> list[str]:
    out = ["<h2>Night logs</h2>"]
    if not logs:
        out.append("<p>No night log yet.</p>")
    ids: set[str] = set()
    for index, log in enumerate(logs):
        where = log["organisation"] or "personal account"
        if log["telescope"]:
            where += f", telescope {log['telescope']}"
        out.append(
            f'<details class="night" id="{_e(_unique("night-" + log["night"], ids))}"'
            f'{" open" if index < OPEN_NIGHTS else ""}><summary>Night log '
            f'<span class="date">{_e(log["night"])}</span> <span class="muted">{_e(where)}'
            f" &middot; {_e(plural(log['files'], 'file'))}, {_e(human_bytes(log['bytes']))} "
            f"uploaded</span>{weblinks.anchor(log.get('link'), 'on the server')}</summary>"
        )
        out.append("<table><tr><th></th><th>Name</th><th>Target</th><th>Dataset</th>"
                   "<th>Files</th><th>Uploaded</th><th>Size</th></tr>")
        for kind, label, cls in (("observations", "Observation", "tag"),
                                 ("calibrations", "Calibration", "tag cal")):
            for entry in log[kind]:
                for ds in entry["datasets"]:
                    out.append(
                        f'<tr><td><span class="{cls}">{label}</span></td>'
                        f"<td>{_e(entry['name'])}</td><td>{_e(entry['target'] or '')}</td>"
                        f"<td>{_e(ds['name'])}{weblinks.anchor(ds.get('link'), 'on the server')}"
                        "</td>"
                        f"<td class=\"n\">{ds['files']}</td>"
                        f"<td class=\"n\">{_dataset_state(ds)}</td>"
                        f"<td class=\"n\">{_e(human_bytes(ds['bytes']))} of "
                        f"{_e(human_bytes(ds['size']))}</td></tr>"
                    )
        out.append("</table></details>")
    return out


def _unique(name: str, taken: set[str]) -> str:
    """`name`, or `name-2`, `name-3`...: the first not in `taken` (which gets it). Two
    telescopes observing on one night have a night log each, each with its own id."""
    unique, number = name, 1
    while unique in taken:
        number += 1
        unique = f"{name}-{number}"
    taken.add(unique)
    return unique


def _dataset_state(ds: dict) -> str:
    parts = [f"{ds[mf.UPLOADED]}"]
    for status, cls in ((Outcome.ALREADY, "muted"), (mf.FAILED, "bad"), (mf.CONFLICT, "bad"),
                        (mf.PENDING, "warn"), (mf.DEFERRED, "muted")):
        if ds.get(status):
            said = "already on the server" if status == Outcome.ALREADY else status
            parts.append(f'<span class="{cls}">{ds[status]} {said}</span>')
    return ", ".join(parts)


def _history(history: list[dict]) -> list[str]:
    out = ["<h2>Upload history</h2>"]
    if not history:
        return out + ["<p>No file uploaded yet: the chart appears after the first upload.</p>"]
    return out + ['<p class="muted">Bytes uploaded per night (the night of the observation, '
                  "not the day of the upload).</p>", bar_chart(history)]


def _runs(runs: list[dict]) -> list[str]:
    out = ["<h2>Recent runs</h2><table><tr><th>Started</th><th>Duration</th><th>Exit code</th>"
           "<th>Uploaded</th><th>Already on the server</th><th>Failed</th><th>Bytes</th>"
           "<th>Message</th></tr>"]
    for run in runs:
        code = "running?" if run["exit_code"] is None else run["exit_code"]
        out.append(f"<tr><td>{_e(run['started_at'])}</td><td class=\"n\">"
                   f"{_duration(run['seconds'])}</td><td class=\"n\">{_e(code)}</td>"
                   f"<td class=\"n\">{run['uploaded']}</td><td class=\"n\">{run['already']}</td>"
                   f"<td class=\"n\">{run['failed']}</td>"
                   f"<td class=\"n\">{_e(human_bytes(run['bytes']))}</td>"
                   f"<td>{_e(run['message'] or '')}</td></tr>")
    return out + ["</table>"]


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return ""
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(round(seconds), 60)
    return f"{minutes} min {secs} s" if minutes < 60 else f"{minutes // 60} h {minutes % 60} min"


def report_page(paths: Paths, settings: Settings) -> str:
    """The report's HTML page (`report --output=-` prints it). Raises ManifestError when
    the manifest is damaged."""
    from oort_lib.state import credentials

    generation = credentials.known_generation(credentials.load(paths.credentials_file),
                                              settings.api, settings.api_dialect)
    with mf.Manifest(paths.manifest_file, create=False, readonly=True) as manifest:
        return render_report(collect(manifest, settings, generation))


def write_report(paths: Paths, settings: Settings, output: str | Path | None) -> Path:
    """Write the report (default ./oort-sync-report.html) atomically; return its path.

    The target is a new file or replaces a regular file, never anything else: a symlink,
    a FIFO, a device (`/dev/full`), a socket or a folder is refused, not replaced.
    Raises ConfigError when the file cannot be written, ManifestError when the manifest is
    damaged.
    """
    import stat

    target = Path(output if output else DEFAULT_OUTPUT).expanduser().absolute()
    _check_target(target)
    if not target.parent.is_dir():
        raise ConfigError(f"Cannot write the report to {target}: the folder {target.parent} "
                          "does not exist.")
    page = report_page(paths, settings)
    # Same folder as the target, so os.replace is atomic and a reader never sees half a page.
    # O_EXCL | O_NOFOLLOW: never write through something planted under the temporary name.
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    try:
        with contextlib.suppress(FileNotFoundError):
            if stat.S_ISREG(os.lstat(tmp).st_mode):
                tmp.unlink()  # left by a crashed run of this pid
        fd = os.open(tmp, flags, 0o666)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(page)
                handle.flush()
                os.fsync(handle.fileno())
            _check_target(target)  # again: it may have become something else meanwhile
            os.replace(tmp, target)
        except BaseException:
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise
    except OSError as exc:
        raise ConfigError(f"Cannot write the report to {target}: {exc.strerror or exc}.") from None
    return target


def _check_target(target: Path) -> None:
    """Raises ConfigError unless `target` is missing or a regular file (not a link)."""
    import stat

    try:
        mode = os.lstat(target).st_mode
    except FileNotFoundError:
        return
    except OSError as exc:
        raise ConfigError(f"Cannot write the report to {target}: {exc.strerror or exc}.") from None
    if stat.S_ISREG(mode):
        return
    if stat.S_ISDIR(mode):
        raise ConfigError(f"{target} is a folder: give a file name, e.g. --output=report.html.")
    kind = ("a symbolic link" if stat.S_ISLNK(mode) else "a FIFO" if stat.S_ISFIFO(mode)
            else "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode)
            else "a socket" if stat.S_ISSOCK(mode) else "not a regular file")
    raise ConfigError(f"{target} is {kind}: the report is written to a regular file only "
                      "(give another --output).")
