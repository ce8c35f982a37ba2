"""What reaches the terminal (issue 19): a server's words (error details, telescope and
organisation names) and file names are shown with their control characters escaped, on
every console path (stdout, stderr, the progress bar, cron mail), as in the text log.
A server must not retitle the terminal, clear the screen or overwrite a line."""

from __future__ import annotations

import json

from helpers import configure
from hostile import ESCAPES, Hostile
from terminal import run_in_terminal

from oort_lib.escape import escaped, escaped_lines
from oort_lib.samples import write_fits
from oort_lib.state import config as cfg

KEY = "e5capec0ffee0123456789abcdef0123"
QUICK = {"connect_timeout": 2, "read_timeout": 2, "retries": 0, "backoff_base": 0.01}
# ESC, BEL, the C1 CSI, CR, and DEL: none of them may reach a terminal raw.
RAW = ("\x1b", "\x07", "\x9b", "\r", "\x7f")
# A file name that would retitle the terminal and overwrite its line.
EVIL_NAME = "m31\x1b]0;pwned\x07\rall files uploaded\x7f.fits"
NIGHT = {"DATE-OBS": "2021-06-01T22:00:00", "OBJECT": "M31"}


def assert_nothing_raw(*results) -> None:
    for result in results:
        for text in (result.out, result.err):
            for char in RAW:
                assert char not in text, (char, text)


def test_escaping_keeps_line_feeds_only_where_lines_are_separated():
    assert escaped_lines("a\x1b[2J\r\tb\nc\x9bd\u202ee") == "a\\x1b[2J\\x0d\\x09b\nc\\x9bd\\u202ee"
    assert escaped("a\nb\u2028") == "a\\x0ab\\u2028"
    assert escaped("café 星雲 Ω") == "café 星雲 Ω"  # printable text as it is


def test_server_texts_and_file_names_are_escaped_everywhere(cli, home, tmp_path):
    root = tmp_path / "data"
    write_fits(root / "M31" / EVIL_NAME, NIGHT)
    other = tmp_path / "observatory"
    other.mkdir()
    with Hostile("escapes") as server:
        configure(home, server.url, KEY, folders=[cfg.Folder(str(root))], **QUICK)
        run = cli("run", "--min-age=0", "-v")
        # Every POST is refused with the escapes in its detail: the file fails.
        assert run.code == 1, run.err
        assert "\\x1b]0;pwned\\x07" in run.err  # shown, escaped, not dropped
        assert "m31\\x1b]0;pwned\\x07\\x0dall files uploaded\\x7f.fits" in run.err
        as_json = cli("run", "--min-age=0", "--retry-failed", "--json")
        assert json.loads(as_json.out)["exit_code"] == 1
        listing = cli("telescopes")
        in_org = cli("telescopes", "-o", "observatory")
        assert listing.code == in_org.code == 0
        assert f"Scope {escaped(ESCAPES)}" in listing.out
        watch = cli("watch", str(other), "-o", "observatory", "-t",
                    "00000000-0000-4000-8000-000000000001", "-y")
        assert watch.code == 0, watch.err
        assert "Org \\x1b]0;pwned" in watch.out and "Telescope: Scope \\x1b]0;pwned" in watch.out
    status = cli("status")
    assert "\\x1b]0;pwned" in status.out  # the failure's reason, the telescope's name
    explain = cli("explain", str(root / "M31" / EVIL_NAME))
    dry = cli("run", "--dry-run", "-v", "--retry-failed")
    assert_nothing_raw(run, as_json, listing, in_org, watch, status, explain, dry,
                       cli("logs", "-n", "200"))
    assert not [c for c in RAW if c in home.log_file.read_text()]


def test_progress_lines_on_a_terminal_are_escaped(home, sandbox, tmp_path):
    """-v on a terminal: each file's line is written above the bar (tqdm), not by cli."""
    root = tmp_path / "data"
    write_fits(root / "M31" / EVIL_NAME, NIGHT)
    configure(home, sandbox.url, sandbox.seed.upload_key, folders=[cfg.Folder(str(root))])
    code, screen = run_in_terminal(["run", "--min-age=0", "-v"], columns=100)
    assert code == 0, screen
    assert "uploaded " in screen and "m31\\x1b]0;pwned\\x07" in screen
    # tqdm draws with CR and CSI sequences of its own; none of the name's reach the screen.
    assert "\x1b]0;" not in screen and "\x07" not in screen and "\x7f" not in screen
