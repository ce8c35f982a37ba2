"""The HTML report: the data it collects, the page it renders, and how a browser sees it."""

from __future__ import annotations

import os
import re
import subprocess

import pytest
from helpers import need_tool

from oort_lib.errors import ConfigError
from oort_lib.state import config as cfg
from oort_lib.state.manifest import Manifest
from oort_lib.views import chart, report, reportdata

ROOT = "/data/obs"
ODD_DATASET = 'M31/<script>alert("x")</script>'
ODD_TARGET = "M31 \"Andromeda\" 'Nebula' \u263e \u00e9t\u00e9"
ODD_REASON = 'header unreadable: <b>bad</b> "END" card & more'
NIGHTS = ["2024-03-01", "2024-03-02", "2024-03-05"]


def _file(relpath: str, night: str | None, status: str, size: int, **extra) -> dict:
    kind = "calibration" if "flat" in relpath.lower() or "dark" in relpath.lower() else (
        "observation")
    row = {
        "relpath": relpath,
        "size": size,
        "mtime_ns": 1,
        "night": night,
        "kind": kind if night else None,
        "dataset": relpath.rsplit("/", 1)[0] if night else None,
        "target": extra.pop("target", None),
        "status": status,
        "organisation": "saao",
        "telescope": "tel-uuid-1",
    }
    if status == "uploaded":
        row["uploaded_size"] = size
    row.update(extra)
    return row


def populate(path) -> None:
    """Three nights, observations and calibrations, failures and skips with odd names."""
    with Manifest(path) as manifest:
        manifest.upsert_files(ROOT, [
            _file("NGC3603/a.fits", "2024-03-01", "uploaded", 1000, target="NGC 3603"),
            _file("NGC3603/b.fits", "2024-03-01", "uploaded", 3000, target="NGC 3603"),
            _file("flats/f1.fits", "2024-03-01", "uploaded", 500),
            _file(f"{ODD_DATASET}/c.fits", "2024-03-02", "uploaded", 7000, target=ODD_TARGET),
            _file(f"{ODD_DATASET}/d.fits", "2024-03-02", "failed", 2000, target=ODD_TARGET,
                  reason=ODD_REASON, transient=0),
            _file("darks/d1.fits", "2024-03-02", "failed", 100, reason=ODD_REASON,
                  transient=0),
            _file("M42/e.fits", "2024-03-05", "uploaded", 20000, target="M42"),
            _file("M42/f.fits", "2024-03-05", "pending", 4000, target="M42"),
            _file("notes <&>.txt", None, "skipped", 10, reason="not FITS or XISF"),
            _file("\u00e9toile/empty.fits", None, "skipped", 0, reason="empty file"),
        ])
        first = manifest.start_run()
        manifest.finish_run(first, exit_code=0, uploaded=3, failed=0, bytes=4500)
        second = manifest.start_run()
        manifest.finish_run(second, exit_code=1, uploaded=2, failed=2, bytes=27000,
                            message="2 files failed")


SETTINGS = cfg.Settings(folders=(cfg.Folder(path=ROOT, organisation="saao",
                                            telescope="tel-uuid-1", telescope_name="1.9m"),))


@pytest.fixture
def data(home) -> dict:
    populate(home.manifest_file)
    with Manifest(home.manifest_file, create=False) as manifest:
        return reportdata.collect(manifest, SETTINGS)


def test_collect_counts_and_structure(data):
    summary = data["summary"]
    assert (summary["uploaded"], summary["failed"], summary["pending"], summary["skipped"]) == (
        5, 2, 1, 2)
    assert summary["bytes"] == 1000 + 3000 + 500 + 7000 + 20000
    assert summary["runs"] == 2
    assert summary["last_run"]["exit_code"] == 1
    assert summary["last_run"]["message"] == "2 files failed"

    logs = data["night_logs"]
    assert [log["night"] for log in logs] == sorted(NIGHTS, reverse=True)
    assert all(log["telescope"] == "1.9m" and log["organisation"] == "saao" for log in logs)
    first = logs[-1]
    assert [o["name"] for o in first["observations"]] == ["NGC3603"]
    assert first["observations"][0]["target"] == "NGC 3603"
    assert first["observations"][0]["datasets"][0]["files"] == 2
    assert first["observations"][0]["datasets"][0]["bytes"] == 4000
    assert [c["name"] for c in first["calibrations"]] == ["flats"]
    odd = logs[1]["observations"][0]
    assert odd["name"] == ODD_DATASET and odd["target"] == ODD_TARGET
    assert odd["datasets"][0]["uploaded"] == 1 and odd["datasets"][0]["failed"] == 1
    assert odd["datasets"][0]["size"] == 9000 and odd["datasets"][0]["bytes"] == 7000
    assert logs[0]["observations"][0]["datasets"][0]["pending"] == 1

    failed = data["problems"]["failed"]
    assert len(failed) == 1 and failed[0]["count"] == 2 and failed[0]["reason"] == ODD_REASON
    skipped = {g["reason"]: g["paths"] for g in data["problems"]["skipped"]}
    assert skipped == {"not FITS or XISF": [f"{ROOT}/notes <&>.txt"],
                       "empty file": [f"{ROOT}/\u00e9toile/empty.fits"]}
    assert [(h["night"], h["bytes"]) for h in data["history"]] == [
        ("2024-03-01", 4500), ("2024-03-02", 7000), ("2024-03-05", 20000)]


def _assert_self_contained(page: str) -> None:
    assert not re.search(r"""\b(src|href|action|srcset)\s*=""", page, re.I)
    assert "url(" not in page and "@import" not in page and "<script" not in page.lower()
    assert "http://" not in page and "https://" not in page


def test_render_orders_escapes_and_charts(data):
    page = report.render_report(data)
    positions = [page.index(f'<span class="date">{night}</span>') for night in NIGHTS]
    assert positions == sorted(positions, reverse=True), "newest night log first"
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in page
    assert "&lt;b&gt;bad&lt;/b&gt; &quot;END&quot; card &amp; more" in page
    assert "notes &lt;&amp;&gt;.txt" in page
    assert "\u263e" in page and "&#x27;Nebula&#x27;" in page
    _assert_self_contained(page)
    svg = re.search(r"<svg .*?</svg>", page, re.S).group(0)
    assert svg.count('class="bar"') == 3
    for night in NIGHTS:
        assert f">{night}</text>" in svg, "every night is labelled on the x axis"
    assert "Bytes uploaded" in svg and "20.0 kB" in svg


def test_empty_or_missing_manifest(home):
    with Manifest(home.manifest_file, create=False) as manifest:
        data = reportdata.collect(manifest, cfg.Settings())
    page = report.render_report(data)
    assert "Nothing was uploaded yet" in page
    assert "<svg" not in page and 'class="bar"' not in page
    _assert_self_contained(page)
    assert not home.manifest_file.exists(), "the report never creates a manifest"


def test_one_night_and_zero_bytes_charts():
    one = chart.bar_chart([{"night": "2024-01-01", "files": 1, "bytes": 123}])
    assert one.count('class="bar"') == 1 and "nan" not in one and "inf" not in one
    zero = chart.bar_chart([{"night": "2024-01-01", "files": 1, "bytes": 0},
                             {"night": "2024-01-02", "files": 1, "bytes": 0}])
    assert zero.count('class="bar"') == 2 and "nan" not in zero
    many = chart.bar_chart([{"night": f"n{i}", "files": 1, "bytes": i} for i in range(900)])
    assert many.count('class="bar"') == 900
    assert many.count("rotate(-40") < 60, "date labels are thinned out"


def test_write_report_default_path_and_atomic(home, tmp_path, monkeypatch):
    populate(home.manifest_file)
    monkeypatch.chdir(tmp_path)
    written = report.write_report(home, SETTINGS, None)
    assert written == tmp_path / "oort-sync-report.html"
    assert "2024-03-05" in written.read_text(encoding="utf-8")
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")) == []
    again = report.write_report(home, SETTINGS, "again.html")
    assert again == tmp_path / "again.html" and again.is_file()


def test_write_report_refuses_bad_outputs(home, tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        report.write_report(home, cfg.Settings(), tmp_path / "missing" / "r.html")
    with pytest.raises(ConfigError, match="is a folder"):
        report.write_report(home, cfg.Settings(), tmp_path)
    if os.geteuid() != 0:  # root writes anywhere
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        with pytest.raises(ConfigError, match="Cannot write"):
            report.write_report(home, cfg.Settings(), locked / "r.html")


def test_cli_report_end_to_end(cli, home, tmp_path):
    populate(home.manifest_file)
    out = tmp_path / "r.html"
    result = cli("report", "--output", str(out))
    assert result.code == 0, result.err
    assert out.is_file() and str(out) in result.out
    assert "Night log" in out.read_text(encoding="utf-8")


# --- a real browser ---------------------------------------------------------------------


@pytest.fixture(scope="session")
def chromium() -> str:
    """The chromium binary (.ci/run installs it)."""
    return need_tool("chromium")


def _chromium(binary: str, tmp_path, *args: str) -> subprocess.CompletedProcess:
    profile = tmp_path / f"profile-{len(list(tmp_path.iterdir()))}"
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={profile}"]
    return subprocess.run([binary, *flags, *args], capture_output=True, text=True, timeout=90)


def test_chromium_renders_the_report(chromium, home, tmp_path):
    populate(home.manifest_file)
    page = report.write_report(home, SETTINGS, tmp_path / "report.html")
    url = page.as_uri()

    dom = _chromium(chromium, tmp_path, "--dump-dom", url)
    assert dom.returncode == 0, dom.stderr[-2000:]
    positions = [dom.stdout.index(f'<span class="date">{night}</span>') for night in NIGHTS]
    assert positions == sorted(positions, reverse=True)
    assert dom.stdout.count('class="bar"') == 3
    # Parsed as text, not markup: the odd name never became an element.
    assert "&lt;script&gt;alert" in dom.stdout and "<script>" not in dom.stdout

    png = tmp_path / "shot.png"
    shot = _chromium(chromium, tmp_path, f"--screenshot={png}", "--window-size=1200,1600", url)
    assert shot.returncode == 0, shot.stderr[-2000:]
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000
