"""Plain-text renderings of plans, run results and status (strings only; cli.py prints).

Every rendered line is one line: what a file name or a server's message holds (a line
break, an escape sequence) is shown escaped, never forges a line (escape.py).
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from oort_lib.escape import escaped
from oort_lib.run.plan import LISTS, Listing, Plan
from oort_lib.run.result import Outcome
from oort_lib.state.records import RunState, rfc3339
from oort_lib.state.status import Status


def human_bytes(count: float) -> str:
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if abs(count) < 1000 or unit == "TB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1000
    return f"{count} B"


def plural(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")


def plan_lines(plan, verbose: bool = False) -> Iterator[str]:
    """The dry-run plan: night log > observation/calibration > dataset (with ``verbose``,
    each file and the keyword that dated it, read from the plan's queue as they are
    given), then the rest."""
    data = plan.to_dict(lists=False)
    totals = data["totals"]
    lines = [
        f"Plan: {plural(totals['files'], 'file')}, {human_bytes(totals['bytes'])} to upload; "
        f"{totals['unchanged']} unchanged, {totals['deferred']} deferred, "
        f"{totals['skipped']} skipped, {totals['waiting']} waiting to be retried."
    ]
    for log in data["night_logs"]:
        where = f" [{log['organisation']}]" if log["organisation"] else ""
        telescope = f" telescope {log['telescope']}" if log["telescope"] else ""
        lines.append("")
        lines.append(f"Night log {log['night']}{where}{telescope}"
                     + (f" ({log['night_by']})" if log.get("night_by") else ""))
        for kind in ("observations", "calibrations"):
            for entry in log[kind]:
                label = "Observation" if kind == "observations" else "Calibration"
                target = (
                    f" (target {entry['target_name']})"
                    if entry.get("target_name") and entry["target_name"] != entry["name"]
                    else ""
                )
                replaced = f", {entry['replacements']} replaced" if entry["replacements"] else ""
                lines.append(f"  {label} {entry['name']}{target}")
                lines.append(
                    f"    Dataset {entry['dataset']}: {plural(entry['files'], 'file')}, "
                    f"{human_bytes(entry['bytes'])}{replaced}"
                )
                if entry.get("file_nights"):  # 2026: filed whole under its first night
                    lines.append(f"      its files span nights {', '.join(entry['file_nights'])}"
                                 f": the server files it under {log['night']}")
                if verbose and "paths" in entry:
                    yield from (escaped(line) for line in lines)
                    lines = []
                    yield from (escaped(f"      {item.relpath}  (dated by "
                                        f"{item.date_source or 'the manifest'}, local time "
                                        f"from {item.time_source or 'the date'})")
                                for item in plan.listed(entry["paths"].group))
    assumed = totals["assumed_local_time"]
    if assumed:
        lines.extend(["", f"Note: {plural(assumed, 'file')} without a time zone, DATE-LOC or "
                      "site longitude: header times taken as local time. If the capture "
                      "program writes UTC, watch the folder again with --timezone=ZONE."])
    if data["missing_folders"]:
        lines.append("")
        lines.extend(f"Missing folder: {m['reason']}" for m in data["missing_folders"])
    note = deferred_note(plan, dry_run=True)
    if note:
        lines.extend(["", note])
    if data["notes"]:
        lines.append("")
        lines.extend(f"Note: {note}" for note in data["notes"])
    for key, title in _PLAN_LISTS:
        if data[key]:
            lines.extend(["", title])
            lines.extend(
                f"  {f['folder']}/{f['path']}" + (f": {f['reason']}" if "reason" in f else "")
                for f in data[key]
            )
    yield from (escaped(line) for line in lines)


def plan_json(plan: Plan) -> Iterator[str]:
    """The text of `json.dumps(plan.to_dict(), indent=2)`, written as it goes: each
    dataset's lists of paths are read from the queue while they are written, so a
    listing of a million files never holds them all (memory stays flat)."""
    import json

    skeleton = plan.to_dict(lists=False)
    marks: dict[str, Listing] = {}

    def mark(value):
        if isinstance(value, Listing):
            marks[str(len(marks))] = value
            return f"\x00\x01{len(marks) - 1}\x00"
        raise TypeError(f"{type(value).__name__} is not JSON")

    text = json.dumps(skeleton, indent=2, default=mark)
    # Each list is written as a mark (a string of control characters and its number):
    # between the marks, the skeleton's text.
    parts = _MARK.split(text)
    yield parts[0]
    for index in range(1, len(parts), 2):
        listing = marks[parts[index]]
        indent = _indent_of(parts[index - 1])
        values = (getattr(item, LISTS[listing.key]) for item in plan.listed(listing.group))
        first = True
        for value in values:
            yield ("[\n" if first else ",\n") + indent + "  " + json.dumps(value)
            first = False
        yield "[]" if first else "\n" + indent + "]"
        yield parts[index + 1]


def _indent_of(text: str) -> str:
    """The indentation of the last line of `text`."""
    line = text[text.rfind("\n") + 1:]
    return line[:len(line) - len(line.lstrip(" "))]


# A mark as json.dumps writes it: control characters no header value or file name holds.
_MARK = re.compile(r'"\\u0000\\u0001(\d+)\\u0000"')


_PLAN_LISTS = (
    ("skipped", "Skipped:"),
    ("deferred", "Deferred (modified too recently, still being written?):"),
    ("waiting", "Failed earlier, waiting to be retried:"),
    ("excluded", "Excluded (--exclude; excluded folders are not entered):"),
    ("failed", "Cannot be read now (retried later):"),
    ("incomplete", "Not whole yet (they wait, up to partial_wait after their last change):"),
    ("problems", "Not whole files (never uploaded until they change):"),
)


def result_lines(result, *, verbose: bool = False, hide=()) -> tuple[list[str], list[str]]:
    """(summary lines, problem lines) of a finished run. Problems go to stderr always,
    but those whose message is in `hide` (an outage already announced: outage.py)."""
    summary = result.summary()
    lines = []
    if verbose:  # (uploaded files were shown one by one as they went: file_line)
        for item, why in result.postponed:
            lines.append(f"postponed {item.folder.path}/{item.relpath}: {why}")
    # Zero counts left out: the line fits an 80-column terminal.
    others = ", ".join(
        f"{summary[key]} {label}" for key, label in (
            ("already_on_server", "already on the server"), ("failed", "failed"),
            ("conflicts", "in conflict"), ("retrying", "waiting for a retry"),
            ("deferred", "deferred"), ("skipped", "skipped"), ("unchanged", "unchanged"))
        if summary[key])
    lines.append(
        f"{plural(summary['uploaded'], 'file')} uploaded ({human_bytes(summary['bytes'])})"
        f"{', ' + others if others else ''} in {summary['seconds']:.1f} s."
    )
    if verbose and getattr(result, "window", None) is not None:
        lines.append(result.window.describe())
    note = deferred_note(result.plan)
    if note:
        lines.append(note)
    incomplete = result.plan.incomplete
    if incomplete:
        verb = "waits" if len(incomplete) == 1 else "wait"
        lines.append(f"{plural(len(incomplete), 'file')} not whole yet {verb} for the next "
                     "run (still being written?):")
        lines.extend(f"  {root}/{relpath}: {why}" for root, relpath, why in incomplete[:20])
    problems = []
    for _root, why in result.plan.missing:
        if why not in hide:
            problems.append(f"oort-sync: {why}")
    problems.extend(f"oort-sync: warning: {note}" for note in result.plan.notes[:20])
    failed = [(f"{root}/{relpath}", why) for root, relpath, why in result.plan.failed]
    failed += [(f"{i.folder.path}/{i.relpath}", why) for i, why in result.failed
               if (i.folder.path, i.relpath) not in result.permanent]
    _listed(problems, failed, "failed (retried later):")
    _listed(problems, [(f"{i.folder.path}/{i.relpath}", why) for i, why in result.failed
                       if (i.folder.path, i.relpath) in result.permanent],
            "failed (not retried until the file changes, or `oort-sync run --retry-failed`):")
    retrying = [(f"{root}/{relpath}", why) for root, relpath, why in result.plan.retrying]
    _listed(problems, retrying, _retry_note(len(retrying), result.plan.retry_due))
    if result.plan.problems:
        problems.append(f"oort-sync: {plural(len(result.plan.problems), 'file')} not whole "
                        "(never uploaded until they change; see `oort-sync status`):")
        problems.extend(f"  {root}/{relpath}: {why}"
                        for root, relpath, why in result.plan.problems[:20])
        if len(result.plan.problems) > 20:
            problems.append(f"  ... and {len(result.plan.problems) - 20} more (oort-sync status)")
    if result.conflicts:
        problems.append(f"oort-sync: {plural(len(result.conflicts), 'conflict')} (nothing sent "
                        "for these files; see `oort-sync status`):")
        problems.extend(f"  {i.folder.path}/{i.relpath}: {why}"
                        for i, why in result.conflicts[:20])
        if len(result.conflicts) > 20:
            problems.append(f"  ... and {len(result.conflicts) - 20} more (oort-sync status)")
    if result.fatal is not None and result.fatal.message not in hide:
        problems.append(f"oort-sync: {result.fatal.message}")
    return [escaped(line) for line in lines], [escaped(line) for line in problems]


def _listed(problems: list[str], files: list[tuple[str, str]], what: str) -> None:
    """"oort-sync: N files `what`", then the first 20 of `files` (path, reason)."""
    if not files:
        return
    problems.append(f"oort-sync: {plural(len(files), 'file')} {what}")
    problems.extend(f"  {path}: {why}" for path, why in files[:20])
    if len(files) > 20:
        problems.append(f"  ... and {len(files) - 20} more (oort-sync status)")


def _retry_note(count: int, due: float | None) -> str:
    """"failed earlier and wait for their retry (the first at 21:04:10):"."""
    import time

    when = time.strftime("%H:%M:%S", time.localtime(due)) if due else None
    if count == 1:
        return "failed earlier and waits for its retry" + (f" at {when}:" if when else ":")
    return "failed earlier and wait for their retry" + (
        f" (the first at {when}):" if when else ":")


def deferred_note(plan, dry_run: bool = False) -> str | None:
    """Why files were deferred and when they are due ("14 files modified less than 60 s
    ago wait for the next run (min_age); due from 21:04:10"); for a `dry_run`, when it is
    worth running again to see them planned."""
    if not plan.deferred:
        return None
    import math
    import time

    count = len(plan.deferred)
    due = (f"; all due from {time.strftime('%H:%M:%S', time.localtime(plan.deferred_due))}"
           if plan.deferred_due else "")
    again = ""
    if dry_run and plan.deferred_due and plan.min_age > 0:
        # Right after a copy everything is young: what would the plan be?
        wait = max(1, math.ceil(plan.deferred_due - time.time()))
        again = (f" To see {'it' if count == 1 else 'them'} in the plan, run again in "
                 f"{wait} s or use --min-age=0.")
    return (f"{plural(count, 'file')} modified less than {plan.min_age:g} s ago "
            f"wait{'s' if count == 1 else ''} for the next run (min_age){due}.{again}")


def file_line(item, outcome: Outcome, reason: str | None) -> str:
    """One file's outcome, for -v."""
    text = "already on the server" if outcome == Outcome.ALREADY else outcome
    return escaped(f"{text} {item.folder.path}/{item.relpath}" + (
        f": {reason}" if reason and outcome.trouble else ""))


def lag_lines(since: float | None, retry: float | None, now: float, stamp,
              indent: str = "") -> list[str]:
    """How far behind the uploads are (`status`, the report): the oldest file waiting to
    go up since `since`, the postponed files retried at `retry` (None: no such file);
    times written by `stamp`."""
    from oort_lib.run.outage import duration

    lines = []
    if since is not None:
        since = min(since, now)  # a file modified in the future waits since now
        lines.append(f"{indent}Oldest file waiting: {duration(now - since)} "
                     f"(since {stamp(since)}).")
    if retry is not None:
        lines.append(f"{indent}Next retry: {stamp(retry)} (in {duration(retry - now)})."
                     if retry > now else f"{indent}Next retry: at the next run (due since "
                     f"{stamp(retry)}).")
    return lines


def _lag_lines(part: dict, data: dict, indent: str) -> list[str]:
    """lag_lines of the status (or one of its folders), from its RFC 3339 times."""
    from datetime import datetime

    def seconds(stamp: str | None) -> float | None:
        return None if stamp is None else datetime.fromisoformat(stamp).timestamp()

    return lag_lines(seconds(part.get("waiting_since")), seconds(part.get("next_retry")),
                     seconds(data["generated_at"]), rfc3339, indent)


def status_lines(data: dict) -> list[str]:
    lines = []
    running = data.get("running")
    if running:
        so_far = ""
        if "uploaded_so_far" in running:
            so_far = (f"; so far {running['uploaded_so_far']} uploaded "
                      f"({human_bytes(running['bytes_so_far'])}), "
                      f"{running['failed_so_far']} failed, {running['pending']} pending")
        lines.append(f"A run is in progress: pid {running['pid']} since "
                     f"{running['since']}{so_far}.")
    else:
        lines.append("No run in progress.")
    last = data.get("last_run")
    if last and last.get("state") == RunState.RUNNING:
        pass  # said above
    elif last and last.get("state") == RunState.DID_NOT_FINISH:
        lines.append(f"Last run: {last['started_at']} (pid {last['pid']}) did not finish "
                     "(killed or the machine stopped); its files are picked up by the next run.")
    elif last:
        lines.append(
            f"Last run: {last['started_at']}, {last['seconds'] or 0:.1f} s, exit code "
            f"{last['exit_code']}, {last['uploaded'] or 0} uploaded, {last['failed'] or 0} failed"
            + (f", {last['already']} already on the server" if last.get("already") else "")
            + (f" ({last['message']})" if last.get("message") else "")
        )
    else:
        lines.append("No run yet.")
    lines += _lag_lines(data, data, "")
    for folder in data["folders"]:
        counts = folder["counts"]
        where = f" -> {folder['organisation'] or 'personal account'}"
        if folder.get("telescope_name"):
            where += f", telescope {folder['telescope_name']}"
        lines.append("")
        lines.append(f"{folder['path']}{where}")
        dest = folder.get("destination") or {}
        if dest:
            generation = folder.get("generation") or "detected at the next run"
            lines.append(f"  server {dest['api']} as {dest['account'] or 'an upload key'}, "
                         f"API generation {generation}")
        lines.append(
            f"  uploaded {counts[Status.UPLOADED] - folder.get('already_on_server', 0)} "
            f"({human_bytes(folder['bytes_uploaded'])}), "
            + (f"already on the server {folder['already_on_server']}, "
               if folder.get("already_on_server") else "") +
            f"pending {counts[Status.PENDING]}, deferred {counts[Status.DEFERRED]}, "
            f"failed {counts[Status.FAILED]}, skipped {counts[Status.SKIPPED]}"
            + (f", conflicts {counts[Status.CONFLICT]}" if counts.get(Status.CONFLICT) else "")
        )
        if len(data["folders"]) > 1:
            lines += _lag_lines(folder, data, "  ")
        if folder.get("assumed_local_time"):
            lines.append(
                f"  note: {plural(folder['assumed_local_time'], 'file')} dated with header "
                "times taken as local time (no time zone, DATE-LOC or site longitude); "
                "if the capture program writes UTC, watch the folder with --timezone=ZONE"
            )
        for reason in folder["reasons"]:
            count = plural(reason["files"], "file")
            example = f", e.g. {reason['example']}" if reason.get("example") else ""
            lines.append(f"    {reason['status']}: {reason['reason']} ({count}{example})")
        for conflict in folder.get("conflicts") or ():
            lines.append(f"    conflict: {folder['path']}/{conflict['path']}: "
                         f"{conflict['reason']}")
    if not data["folders"]:
        lines.append("No folder is watched yet: `oort-sync watch FOLDER`.")
    where = data.get("paths")
    if where:
        lines.extend(["", f"Config: {where['config']}", f"State:  {where['state']}",
                      f"Log:    {where['log']}"])
    return [escaped(line) for line in lines]
