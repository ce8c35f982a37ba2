"""The key is masked before a server's message is cut, in any case, and in part: a key
straddling the 300-character cut, echoed in upper case, or 12 of its characters reach
no output (stderr, the log, the manifest's runs table, `status --json`, the report)."""

from __future__ import annotations

import json
import sqlite3

import pytest
from fitsfiles import one_file
from helpers import configure
from hostile import KEY, QUICK, Hostile

from oort_lib.arcsecond.answer import MESSAGE_LIMIT, scrub
from oort_lib.state import config as cfg


def key_runs(key: str, width: int = 8) -> set[str]:
    """Every run of `width` consecutive characters of the key, lower-cased."""
    key = key.lower()
    return {key[i:i + width] for i in range(len(key) - width + 1)}


def assert_no_run(text: str, where: str, key: str = KEY) -> None:
    folded = text.lower()
    found = [run for run in key_runs(key) if run in folded]
    assert not found, (where, found)


# --- the one masking function --------------------------------------------------------------


def test_a_key_straddling_the_cut_is_masked():
    text = "." * 285 + f"{KEY} is not a key"
    shown = scrub(text, KEY, MESSAGE_LIMIT)
    assert len(shown) == MESSAGE_LIMIT and "....**** is not a" in shown
    assert_no_run(shown, "straddling")


def test_a_key_in_another_case_or_in_part_is_masked():
    assert scrub(f"bad key {KEY.upper()}!", KEY) == "bad key ****!"
    assert scrub(f"bad key {KEY[10:22]}...", KEY) == "bad key ****..."
    assert scrub(f"wrapped {KEY[:16]}\n{KEY[16:]}", KEY) == "wrapped ****\n****"
    # Seven characters are not the key: ordinary words and numbers stay as they are.
    assert scrub(f"code {KEY[:7]}", KEY) == f"code {KEY[:7]}"
    plain = "dataset 3f2a... is full; " * 40
    assert scrub(plain, KEY, MESSAGE_LIMIT) == plain[:MESSAGE_LIMIT]


def test_a_huge_message_of_keys_leaves_no_fragment():
    for lead in range(len(KEY) + 1):
        shown = scrub("x" * lead + f"{KEY} " * 20_000, KEY, MESSAGE_LIMIT)
        assert_no_run(shown, f"lead {lead}")
        assert not any(KEY[i:i + 5].lower() in shown.lower() for i in range(len(KEY) - 4))


# --- a server that echoes the key ------------------------------------------------------------


@pytest.mark.parametrize("mode, code", [("echo-key-cut", 3), ("echo-key-upper", 3),
                                        ("echo-key-part", 1)])
def test_echoed_key_reaches_no_output(cli, home, tmp_path, mode, code):
    root = one_file(tmp_path / "data")
    with Hostile(mode) as server:
        configure(home, server.url, KEY, folders=[cfg.Folder(str(root))], **QUICK)
        result = cli("run", "--min-age=0")
        assert server.seen and all(k == f"Key {KEY}" for _, _, k in server.seen)
    assert result.code == code, result.err
    log = home.log_file.read_text()
    assert "****" in (result.err if code == 3 else log)  # masked, not dropped
    status = cli("status", "--json")
    assert status.code == 0
    last = json.loads(status.out)["last_run"]
    with sqlite3.connect(home.manifest_file) as db:
        runs = " ".join(str(r) for r in db.execute("SELECT * FROM runs"))
        files = " ".join(str(r) for r in db.execute("SELECT * FROM files"))
    if code == 3:
        assert "****" in runs and "****" in (last.get("message") or "")
    assert cli("report", f"--output={tmp_path / 'report.html'}").code == 0
    logs = cli("logs", "-n", "500")
    for where, text in [("stderr", result.err), ("stdout", result.out), ("log", log),
                        ("runs table", runs), ("files table", files),
                        ("status --json", status.out), ("logs", logs.out),
                        ("report", (tmp_path / "report.html").read_text())]:
        assert_no_run(text, where)
    for path in home.state_dir.rglob("*"):
        if path.is_file():
            assert_no_run(path.read_bytes().decode("latin-1"), str(path))
