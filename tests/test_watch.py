"""watch / unwatch: every local check, then the remote ones against the sandbox."""

from __future__ import annotations

import os

from oort_lib.state import config as cfg


def test_watch_saves_folder_and_unwatch_removes_it(cli, home, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    result = cli("watch", data, "-y", "--timezone=America/Santiago")
    assert result.code == 0, result.err
    assert f"Folder: {data}" in result.out and "America/Santiago" in result.out
    folders = cfg.load_settings(home).folders
    assert [(f.path, f.timezone) for f in folders] == [(str(data), "America/Santiago")]
    result = cli("unwatch", data)
    assert result.code == 0 and cfg.load_settings(home).folders == ()


def test_watch_refuses_without_terminal_and_without_yes(cli, home, tmp_path):
    (tmp_path / "d").mkdir()
    result = cli("watch", tmp_path / "d")
    assert result.code == 2 and "-y" in result.err
    assert cfg.load_settings(home).folders == ()


def test_watch_local_checks(cli, home, tmp_path):
    outer = tmp_path / "outer"
    inner = outer / "inner"
    inner.mkdir(parents=True)
    (tmp_path / "file.fits").write_bytes(b"x")
    cases = [
        ((tmp_path / "nope",), "no such folder"),
        ((tmp_path / "file.fits",), "not a folder"),
        ((outer, "--timezone=Mars/Olympus"), "not an IANA time zone"),
        ((outer, outer), "already watched"),
    ]
    for args, message in cases:
        result = cli("watch", *args, "-y")
        assert result.code == 2, (args, result.err)
        assert message in result.err, (args, result.err)
        assert "Traceback" not in result.err
    assert cli("watch", outer, "-y").code == 0
    nested = cli("watch", inner, "-y")
    assert nested.code == 2 and "inside the watched folder" in nested.err
    (tmp_path / "top").mkdir()
    os.rename(outer, tmp_path / "top" / "outer")
    cfg.save_settings(home, cfg.Settings(folders=(cfg.Folder(str(tmp_path / "top" / "outer")),)))
    around = cli("watch", tmp_path / "top", "-y")
    assert around.code == 2 and "contains the watched folder" in around.err


def test_unwatch_unknown_folder(cli, tmp_path):
    result = cli("unwatch", tmp_path)
    assert result.code == 2 and "not a watched folder" in result.err


def test_organisation_needs_login(cli, tmp_path):
    (tmp_path / "d").mkdir()
    result = cli("watch", tmp_path / "d", "-o", "robotland", "-t", "rt1", "-y")
    assert result.code == 3 and "login" in result.err


def test_watch_before_login_says_a_telescope_will_be_needed(cli, home, tmp_path):
    folder = tmp_path / "d"
    folder.mkdir()
    result = cli("watch", folder, "-y")
    assert result.code == 0
    assert "needs a telescope for every folder" in result.out
    assert "oort-sync telescopes" in result.out
