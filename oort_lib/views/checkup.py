"""What `doctor` shows: its checks (each a Check: what it came to, what was found, the fix)
as lines for people and as one JSON document for scripts. doctor.py and servercheck.py
make the checks; this module only holds their shape and shows them.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import NamedTuple

from oort_lib.state.records import rfc3339
from oort_lib.state.status import Verdict

SCHEMA_VERSION = 1
_LABEL = {Verdict.OK: "ok", Verdict.WARNING: "warning", Verdict.PROBLEM: "PROBLEM"}
_INDENT = " " * 9


class Check(NamedTuple):
    """One check: its name, what it came to, what was found, and the fix (a problem's or
    a warning's). `exit_code`: 3 or 4 when the server refused the key or could not be
    reached (then `doctor`'s own), else 0."""

    name: str
    status: Verdict
    found: str
    fix: str | None = None
    exit_code: int = 0


def ok(name: str, found: str) -> Check:
    return Check(name, Verdict.OK, found)


def problem(name: str, found: str, fix: str, exit_code: int = 0) -> Check:
    return Check(name, Verdict.PROBLEM, found, fix, exit_code)


def warning(name: str, found: str, fix: str) -> Check:
    return Check(name, Verdict.WARNING, found, fix)


def counts(checks: Iterable[Check]) -> dict[str, int]:
    """{"ok": n, "warning": n, "problem": n}."""
    found = {str(verdict): 0 for verdict in Verdict}
    for check in checks:
        found[str(check.status)] += 1
    return found


def checkup_lines(checks: list[Check]) -> list[str]:
    """One line per check (`ok`, `warning` or `PROBLEM`, its name, what was found), the
    fix under each problem and warning, and a last line counting them."""
    lines = []
    for check in checks:
        lines.append(f"{_LABEL[check.status]:<8} {check.name}: {check.found}")
        if check.fix and check.status != Verdict.OK:
            lines.append(f"{_INDENT}fix: {check.fix}")
    tally = counts(checks)
    if not tally["problem"] and not tally["warning"]:
        lines.append(f"All {len(checks)} checks pass.")
    else:
        said = [f"{tally['ok']} ok"]
        said += [f"{tally['warning']} warning" + ("s" if tally["warning"] != 1 else "")
                 ] if tally["warning"] else []
        said += [f"{tally['problem']} problem" + ("s" if tally["problem"] != 1 else "")
                 ] if tally["problem"] else []
        lines.append(f"{len(checks)} checks: " + ", ".join(said) + ".")
    return lines


def checkup_dict(checks: list[Check], exit_code: int, now: float | None = None) -> dict:
    """`doctor --json`: {"schema", "generated_at", "exit_code", "counts", "checks": [{"name",
    "status", "found", "fix"}]}; `fix` is null for a check that passes."""
    return {
        "schema": SCHEMA_VERSION,
        "generated_at": rfc3339(time.time() if now is None else now),
        "exit_code": exit_code,
        "counts": counts(checks),
        "checks": [{"name": c.name, "status": str(c.status), "found": c.found,
                    "fix": c.fix if c.status != Verdict.OK else None} for c in checks],
    }
