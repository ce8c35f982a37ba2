"""`make demo` does what the README says it does: the whole flow, then the morning
questions (a separate file from test_docs.py: the demo needs this checkout's .venv, which
the sdist's own test run in test_packaging.py has not)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")


def test_make_demo_shows_the_whole_flow_and_the_morning_questions():
    root = ROOT
    if not (root / ".venv" / "bin" / "oort-sync").exists():
        pytest.skip("the demo runs from the project's .venv (make venv)")
    try:
        out = subprocess.run(["bash", "contrib/demo.sh"], cwd=root, capture_output=True,
                             text=True, timeout=600, check=False)
    finally:
        shutil.rmtree(root / "demo", ignore_errors=True)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    steps = re.findall(r"^== (\d+)\. ", out.stdout, re.M)
    assert steps == [str(n) for n in range(1, 12)]
    said = README.split("`make demo` prints each step:", 1)[1].split("\n\n", 1)[0]
    for command in ("login", "watch", "status", "nights", "doctor"):
        assert f"`{command}`" in said and f"oort-sync {command}" in out.stdout
    assert re.search(r"^Night \d{4}-\d\d-\d\d: \d+ frames?", out.stdout, re.M)
    assert re.search(r"^\d+ checks: \d+ ok", out.stdout, re.M)
