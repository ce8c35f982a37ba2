"""Bad input never stops the other files, and every problem names its file."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile

from helpers import ROOT, configure, needs

from oort_lib.samples import write_fits, write_xisf
from oort_lib.state import config as cfg

ODD_NAMES = ["a b#c?d%e.fits", "it's \"quoted\".fits", "ünïcødé ☄.fits", "100%.fit",
             "x" * 245 + ".fits"]


def bad_tree(root) -> dict[str, str]:
    """Good and bad files; returns {relpath: expected reason fragment} for the bad ones."""
    night = {"DATE-OBS": "2021-06-01T22:00:00", "OBJECT": "M 13"}
    for name in ODD_NAMES:
        write_fits(root / "odd" / name, night)
    write_fits(root / os.fsdecode(b"latin1-\xe9t\xe9.fits"), night)
    good = write_fits(root / "ok" / "good.fits", night)
    data = good.read_bytes()
    (root / "bad").mkdir()
    (root / "bad" / "truncated.fits").write_bytes(data[:1000])
    (root / "bad" / "garbage.fits").write_bytes(os.urandom(5000))
    write_fits(root / "bad" / "impossible.fits", {"DATE-OBS": "2021-02-30T25:61:00"})
    xisf = write_xisf(root / "bad" / "broken.xisf", {"DATE-OBS": "2021-06-01T22:00:00"})
    raw = bytearray(xisf.read_bytes())
    start = raw.index(b"<xisf")
    raw[start + 10:start + 40] = b"<<<<not xml at all>>>>>>>>>>>>"
    xisf.write_bytes(bytes(raw))
    (root / "bad" / "empty.fits").write_bytes(b"")
    os.symlink(root / "bad", root / "bad" / "loop")
    outside = root.parent / "outside.fits"
    write_fits(outside, night)
    os.symlink(outside, root / "bad" / "escape.fits")
    return {
        "bad/garbage.fits": "",
        "bad/impossible.fits": "no date found",
        "bad/broken.xisf": "",
        "bad/empty.fits": "empty file",
        "bad/loop": "symlink loop",
        "bad/escape.fits": "outside the watched folder",
    }


def test_bad_files_are_reported_and_good_ones_uploaded_intact(cli, home, logged_in,
                                                             sandbox, tmp_path):
    root = tmp_path / "data"
    expected = bad_tree(root)
    logged_in(root)
    plan = json.loads(cli("run", "--dry-run", "--json", "--min-age=0").out)
    reasons = {s["path"]: s["reason"] for s in plan["skipped"]}
    for path, fragment in expected.items():
        assert path in reasons, (path, reasons)
        assert fragment in reasons[path] and reasons[path].strip()
    # Cut inside its header: a frame still arriving (issue 18), not a damaged one.
    (cut,) = plan["incomplete"]
    assert cut["path"] == "bad/truncated.fits"
    assert cut["reason"] == ("not whole yet: ends 4,760 bytes short of its header's 5,760: "
                             "still being written?")
    result = cli("run", "--min-age=0")
    assert result.code == 0, result.err
    assert "Traceback" not in result.err
    stored = sorted(f["filename"] for f in sandbox.objects("datafiles"))
    latin1 = "latin1-%E9t%E9.fits"  # a non-UTF-8 name travels percent-encoded
    assert stored == sorted([*ODD_NAMES, "good.fits", latin1])
    assert not list((tmp_path / "sandbox").rglob("outside.fits"))
    status = json.loads(cli("status", "--json").out)
    assert status["folders"][0]["counts"]["uploaded"] == len(stored)
    assert status["folders"][0]["counts"]["skipped"] == len(expected)


@needs(shutil.which("setpriv"), "setpriv (util-linux) is needed")
def test_permission_denied_files_and_folders(sandbox):
    """Run as a process without the capability to bypass permissions (root otherwise can).

    Permission denied is transient (a mode fixed later, a file another program holds):
    failed and retried, never skipped; once readable, the files are uploaded."""
    base = tempfile.mkdtemp(prefix="oort-perm-")
    try:
        root = os.path.join(base, "data")
        write_fits(os.path.join(root, "ok", "good.fits"), {"DATE-OBS": "2021-06-01T22:00:00"})
        locked = write_fits(os.path.join(root, "ok", "locked.fits"),
                            {"DATE-OBS": "2021-06-01T22:00:00"})
        write_fits(os.path.join(root, "closed", "inside.fits"),
                   {"DATE-OBS": "2021-06-01T22:00:00"})
        paths = cfg.resolve_paths(os.path.join(base, "home"))
        configure(paths, sandbox.url, sandbox.seed.upload_key, folders=[cfg.Folder(root)])
        os.chmod(locked, 0)
        os.chmod(os.path.join(root, "closed"), 0)
        env = {**os.environ, "OORT_SYNC_HOME": os.path.join(base, "home")}
        command = ["setpriv", "--bounding-set=-dac_override,-dac_read_search", "--",
                   sys.executable, str(ROOT / "oort_sync.py")]
        done = subprocess.run([*command, "run", "--min-age=0", "--dry-run", "--json"],
                              env=env, capture_output=True, text=True, timeout=60)
        plan = json.loads(done.stdout)
        reasons = {s["path"]: s["reason"] for s in plan["failed"]}
        assert reasons["ok/locked.fits"] == "permission denied"
        assert reasons["closed"] == "permission denied"
        assert plan["skipped"] == []
        for _ in range(2):  # failed at every run while it lasts: exit 1, never skipped
            done = subprocess.run([*command, "run", "--min-age=0"], env=env,
                                  capture_output=True, text=True, timeout=60)
            assert done.returncode == 1, done.stderr
            assert "ok/locked.fits: permission denied" in done.stderr
        assert [f["filename"] for f in sandbox.objects("datafiles")] == ["good.fits"]
        status = json.loads(subprocess.run([*command, "status", "--json"], env=env,
                                           capture_output=True, text=True).stdout)
        assert status["folders"][0]["counts"]["failed"] == 2
        assert status["folders"][0]["counts"]["skipped"] == 0
        os.chmod(locked, 0o644)
        os.chmod(os.path.join(root, "closed"), 0o755)
        done = subprocess.run([*command, "run", "--min-age=0"], env=env, capture_output=True,
                              text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        assert sorted(f["filename"] for f in sandbox.objects("datafiles")) == [
            "good.fits", "inside.fits", "locked.fits"]
    finally:
        for dirpath, _dirs, _files in os.walk(base):
            os.chmod(dirpath, 0o755)
        os.chmod(os.path.join(base, "data", "closed"), 0o755)
        shutil.rmtree(base, ignore_errors=True)
