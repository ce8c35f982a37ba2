"""What read wrong (issue 20, part 3): every line a person reads says what happened, in
words that hold together, at the width of their terminal."""

from __future__ import annotations

import re

import pytest
from helpers import configure
from terminal import run_in_terminal

from oort_lib.samples import make_sample_tree
from oort_lib.state import config as cfg

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def _screen(text: str) -> str:
    return ANSI.sub("", text)


def _uploaded_then_forgotten(home, sandbox, tmp_path):
    """A sample tree uploaded, then its manifest lost: every file is on the server."""
    root = make_sample_tree(tmp_path / "data")
    configure(home, sandbox.url, sandbox.seed.upload_key, folders=[cfg.Folder(str(root))])
    code, screen = run_in_terminal(["run", "--min-age=0"])
    assert code == 0, screen
    home.manifest_file.unlink()
    return root


# --- the progress bar -------------------------------------------------------------------

def test_the_bar_ends_at_100_percent_when_every_file_was_already_there(home, sandbox,
                                                                        tmp_path):
    _uploaded_then_forgotten(home, sandbox, tmp_path)
    code, screen = run_in_terminal(["run", "--min-age=0"], columns=100)
    text = _screen(screen)
    assert code == 0, text
    assert "0 files uploaded (0 B), 13 already on the server" in text
    last_bar = [s for s in re.split(r"[\r\n]", text) if "13/13 files" in s][-1]
    assert "100%" in last_bar, last_bar


# --- network errors ---------------------------------------------------------------------

def test_a_network_error_keeps_its_errno_in_brackets(cli, home):
    import socket

    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    configure(home, f"http://127.0.0.1:{port}", "0" * 32, retries=0)
    result = cli("telescopes")
    assert result.code == 4, result.err
    assert re.search(r"\(\[Errno \d+\] Connection refused\)", result.err), result.err
    assert "(Errno" not in result.err


# --- 80 columns ---------------------------------------------------------------------------

def _lines_fit(text: str, columns: int = 80) -> list[str]:
    lines = [line for line in re.split(r"\r?\n|\r", _screen(text)) if line.strip()]
    too_long = [line for line in lines if len(line) > columns]
    assert not too_long, too_long
    return lines


def _words(text: str) -> str:
    return " ".join(_screen(text).split())


def test_login_hint_wraps_at_words_in_80_columns(home, sandbox):
    from terminal import converse

    code, screen = converse(["login", f"--api={sandbox.url}", "--username=astro"],
                            [("Upload key (not shown): ",
                              sandbox.seed.upload_key.encode() + b"\n")])
    assert code == 0, screen
    _lines_fit(screen)
    assert ("Your upload key is on the settings page of your Arcsecond account (on "
            "Arcsecond.local: the settings page of that installation).") in _words(screen)


def test_watch_summary_and_run_summary_wrap_at_words_in_80_columns(home, sandbox, tmp_path):
    root = make_sample_tree(tmp_path / "data")
    configure(home, sandbox.url, sandbox.seed.upload_key, generation="2021")
    code, screen = run_in_terminal(["watch", str(root), "-o", "robotland", "-t", "rt1", "-y"],
                                   columns=80)
    assert code == 0, screen
    lines = _lines_fit(screen)
    boundary = next(i for i, line in enumerate(lines) if line.startswith("Night boundary:"))
    assert lines[boundary + 1].startswith("  ")  # its continuation, indented
    # What dates the folder's files: the telescope's longitude, not "local time".
    assert ("Night boundary: local noon, header dates placed by DATE-LOC or the site "
            "longitude when the header has one, else by local mean solar time at the "
            "telescope's longitude -70.74°") in _words(screen)
    code, screen = run_in_terminal(["run"], columns=80)  # everything is too young yet
    assert code == 0, screen
    _lines_fit(screen)
    assert re.search(r"14 files modified less than 60 s ago wait for the next run \(min_age\)",
                     _words(screen)), screen


# --- explain ------------------------------------------------------------------------------

def test_explain_says_the_assumed_local_time_once_in_a_sentence(cli, home, tmp_path):
    from oort_lib.samples import write_fits

    frame = write_fits(tmp_path / "data" / "m31.fits", {"DATE-OBS": "2021-03-04T23:00:00"})
    configure(home, "https://api.arcsecond.io", "0" * 32,
              folders=[cfg.Folder(str(tmp_path / "data"))])
    result = cli("explain", frame)
    assert result.code == 0, result.err
    local = next(line for line in result.out.splitlines() if "local time:" in line)
    assert local.endswith("2021-03-04T23:00:00, from the header time as written, taken as "
                          "local time (no time zone for the folder, no DATE-LOC, no site "
                          "longitude)"), local
    assert result.out.count("taken as local time") == 1
    notes = [line for line in result.out.splitlines() if line.strip().startswith("note:")]
    assert len(notes) == 1 and notes[0].endswith("watch the folder again with --timezone=ZONE")


# --- files already on the server are not uploads ----------------------------------------

def _report(cli, tmp_path) -> str:
    output = tmp_path / "report.html"
    assert cli("report", f"--output={output}").code == 0
    return output.read_text()


def _cards(page: str) -> dict[str, str]:
    return {label: value for value, label in
            re.findall(r'<div class="card[^"]*"><b>([^<]*)</b>([^<]*)</div>', page)}


def test_files_found_on_the_server_are_counted_apart(cli, home, sandbox, tmp_path):
    import json

    _uploaded_then_forgotten(home, sandbox, tmp_path)
    result = cli("run", "--min-age=0", "-v")
    assert result.code == 0, result.err
    assert "0 files uploaded (0 B), 13 already on the server" in result.err
    data = json.loads(cli("status", "--json").out)
    folder = data["folders"][0]
    assert folder["counts"]["uploaded"] == 13 and folder["already_on_server"] == 13
    assert folder["bytes_uploaded"] == 0 and data["totals"]["already_on_server"] == 13
    assert (data["last_run"]["uploaded"], data["last_run"]["already"]) == (0, 13)
    text = cli("status").out
    assert "uploaded 0 (0 B), already on the server 13, pending 0" in text
    assert "0 uploaded, 0 failed, 13 already on the server" in text
    page = _report(cli, tmp_path)
    cards = _cards(page)
    assert (cards["Files uploaded"], cards["Bytes uploaded"],
            cards["Already on the server"]) == ("0", "0 B", "13")
    assert "13 already on the server" in page  # the datasets of the night logs
    runs = page[page.index("<h2>Recent runs</h2>"):]
    headers = re.findall(r"<th>([^<]*)</th>", runs)
    first = re.findall(r"<td[^>]*>([^<]*)</td>", runs.split("</tr>")[1])
    row = dict(zip(headers, first))
    assert (row["Uploaded"], row["Already on the server"], row["Bytes"]) == ("0", "13", "0 B")


# --- one group per reason ---------------------------------------------------------------

def test_files_without_a_date_are_one_group_each_with_its_own_detail(cli, home, sandbox,
                                                                       tmp_path):
    from oort_lib.samples import write_fits

    root = tmp_path / "data"
    write_fits(root / "a.fits", {"OBJECT": "M31"})
    write_fits(root / "b.fits", {"DATE-OBS": "garbage"})
    write_fits(root / "c.fits", {"DATE-OBS": "2021-13-45T00:00:00"})
    write_fits(root / "d.fits", {"DATE-OBS": "2021-03-04T22:00:00"})
    configure(home, sandbox.url, sandbox.seed.upload_key, folders=[cfg.Folder(str(root))])
    assert cli("run", "--min-age=0").code == 0
    text = cli("status").out
    groups = [line for line in text.splitlines() if "no date found" in line]
    assert len(groups) == 1, text
    assert groups[0].startswith("    skipped: no date found (3 files, e.g. ")
    page = _report(cli, tmp_path)
    skipped = page[page.index("<h2>Skipped files</h2>"):]
    assert skipped.count("no date found") == 1
    assert "a.fits: no DATE-OBS, DATE_OBS, MJD-OBS, JD or DATE keyword</li>" in skipped
    assert "b.fits: DATE-OBS &#x27;garbage&#x27; is not a valid date</li>" in skipped


# --- the report's HTML ids ----------------------------------------------------------------

def test_report_ids_are_unique_when_two_telescopes_share_a_night(home):
    from html.parser import HTMLParser

    from oort_lib.state.manifest import Manifest
    from oort_lib.views import report, reportdata

    with Manifest(home.manifest_file) as manifest:
        manifest.upsert_files("/data", [
            {"relpath": f"{telescope}/m31.fits", "size": 10, "mtime_ns": 1,
             "night": "2024-03-01", "kind": "observation", "dataset": telescope,
             "status": "uploaded", "uploaded_size": 10, "telescope": telescope}
            for telescope in ("tel-1", "tel-2", "tel-3")])
        page = report.render_report(reportdata.collect(manifest, cfg.Settings()))

    class Ids(HTMLParser):
        found: list[str] = []

        def handle_starttag(self, tag, attrs):
            self.found += [value for name, value in attrs if name == "id"]

    parser = Ids()
    parser.feed(page)
    assert len(parser.found) == 3 and len(set(parser.found)) == 3, parser.found


# --- telescopes of an organisation one is not a member of ---------------------------------

@pytest.mark.parametrize("generation", ["2021", "2026"])
def test_telescopes_of_an_organisation_of_others_say_who_is_not_a_member(cli, home, sandbox,
                                                                         generation):
    configure(home, sandbox.url, sandbox.seed.upload_key, generation=generation,
              username=sandbox.seed.username)
    result = cli("telescopes", "-o", sandbox.seed.other_organisation)
    assert result.code == 3, result.err
    assert result.err == (f"oort-sync: {sandbox.seed.username} is not a member of "
                          f"{sandbox.seed.other_organisation}.\n")


# --- a dry run right after a copy ---------------------------------------------------------

def test_a_dry_run_of_young_files_says_when_they_will_be_planned(cli, home, tmp_path):
    root = make_sample_tree(tmp_path / "data")
    configure(home, "https://api.arcsecond.io", "0" * 32, folders=[cfg.Folder(str(root))])
    result = cli("run", "--dry-run")
    assert result.code == 0, result.err
    found = re.search(r"14 files modified less than 60 s ago wait for the next run "
                      r"\(min_age\); all due from [\d:]+\. To see them in the plan, run again "
                      r"in (\d+) s or use --min-age=0\.", result.out)
    assert found, result.out
    assert 1 <= int(found.group(1)) <= 60
    planned = cli("run", "--dry-run", "--min-age=0")
    assert "run again" not in planned.out and "Plan: 13 files" in planned.out
