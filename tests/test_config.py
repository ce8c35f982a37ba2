from __future__ import annotations

import os
import stat

import pytest

from oort_lib.errors import AuthError, ConfigError
from oort_lib.state import config as cfg
from oort_lib.state import credentials


def test_paths_precedence(tmp_path):
    env = {"HOME": str(tmp_path), "XDG_CONFIG_HOME": str(tmp_path / "c")}
    paths = cfg.resolve_paths(None, env)
    assert paths.config_dir == tmp_path / "c" / "oort-sync"
    assert paths.state_dir == tmp_path / ".local" / "state" / "oort-sync"
    env["OORT_SYNC_HOME"] = str(tmp_path / "h")
    manifest = cfg.resolve_paths(None, env).manifest_file
    assert manifest == tmp_path / "h" / "state" / "manifest.sqlite"
    assert cfg.resolve_paths(str(tmp_path / "flag"), env).config_dir == tmp_path / "flag" / "config"


def test_settings_round_trip(home):
    folder = cfg.Folder(path="/data/a b%c", organisation="robotland", telescope="u-1",
                        telescope_name="RT 1", timezone="America/Santiago")
    settings = cfg.Settings(api="http://127.0.0.1:9", jobs=2, folders=(folder,))
    cfg.save_settings(home, settings)
    assert cfg.load_settings(home) == settings


def test_missing_config_means_defaults(home):
    assert cfg.load_settings(home) == cfg.Settings()


@pytest.mark.parametrize(
    "text, expected",
    [
        ("[oort-sync]\njobs = many\n", "line 2: jobs = 'many' is not a int number"),
        ("[oort-sync]\njobs = 0\n", "line 2: jobs = 0 must be between 1 and 64"),
        ("[oort-sync]\nspeed = 3\n", "line 2: unknown setting 'speed'"),
        ("jobs = 3\n", "malformed config file"),
        ("[oort-sync]\njobs\n", "malformed config file"),
        ("[weird]\n", "line 1: unknown section [weird]"),
        ("[folder 1]\norganisation = x\n", "line 1: [folder 1] has no path"),
        ("[oort-sync]\n[oort-sync]\n", "malformed config file"),
    ],
)
def test_malformed_config_names_file_and_line(home, text, expected):
    home.config_dir.mkdir(parents=True)
    home.config_file.write_text(text)
    with pytest.raises(ConfigError) as info:
        cfg.load_settings(home)
    assert str(home.config_file) in info.value.message
    assert expected in info.value.message
    assert info.value.exit_code == 2


def test_malformed_config_exit_code_from_cli(cli, home):
    home.config_dir.mkdir(parents=True)
    home.config_file.write_text("[oort-sync]\nmin_age = soon\n")
    result = cli("status")
    assert result.code == 2
    assert "config.ini, line 2" in result.err and "Traceback" not in result.err


def test_credentials_are_0600_and_env_overrides(home, monkeypatch):
    os.umask(0o022)
    creds = credentials.Credentials(key="k" * 32, username="astro", memberships={"o": "admin"})
    credentials.save(home.credentials_file, creds)
    assert stat.S_IMODE(home.credentials_file.stat().st_mode) == 0o600
    assert credentials.permission_warning(home.credentials_file) is None
    assert credentials.load(home.credentials_file, {}).memberships == {"o": "admin"}
    assert "k" * 32 not in repr(creds) and "k" * 32 not in str(creds)
    env = {"ARCSECOND_UPLOAD_KEY": " fromenv-0123456789\n"}
    loaded = credentials.load(home.credentials_file, env)
    assert loaded.key == "fromenv-0123456789" and loaded.username == "astro"
    # A blank variable (e.g. `Environment=ARCSECOND_UPLOAD_KEY=` in a unit) is "not set".
    assert credentials.load(home.credentials_file, {"OORT_SYNC_KEY": "  "}).key == "k" * 32
    os.chmod(home.credentials_file, 0o644)
    assert "readable by other users" in credentials.permission_warning(home.credentials_file)


def test_damaged_credentials(home):
    home.config_dir.mkdir(parents=True)
    home.credentials_file.write_text("{not json")
    with pytest.raises(ConfigError, match="damaged"):
        credentials.load(home.credentials_file, {})


def test_unwritable_state_folder_is_a_clear_error(cli, home, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    assert cli("watch", data, "-y").code == 0
    home.state_dir.parent.mkdir(parents=True, exist_ok=True)
    home.state_dir.write_text("not a folder")  # even root cannot create files below it
    credentials.save(home.credentials_file, credentials.Credentials(key="k" * 32))
    result = cli("run")
    assert result.code == 2, result.err
    assert str(home.state_dir) in result.err and "Traceback" not in result.err


@pytest.mark.parametrize("pasted, hint", [
    ("\u201c5a4db0c5e7e57ca11ab1e0000000c0de\u201d", "quotes"),
    ("'5a4db0c5e7e57ca11ab1e0000000c0de'", "quotes"),
    ("5a4db0c5e7e57ca1\n1ab1e0000000c0de", "line breaks"),
    ("5a4db0c5e7e57 ca11ab1e0000000c0de", "spaces"),
    ("5a4db0c5e7e57ca11ab1e0000000c0dé", "non-ASCII"),
    ("abc", "3 characters"),
])
def test_malformed_keys_are_refused_with_a_masked_hint(home, pasted, hint):
    with pytest.raises(AuthError) as refused:
        credentials.load(home.credentials_file, {"ARCSECOND_UPLOAD_KEY": pasted})
    message = refused.value.message
    assert hint in message and "$ARCSECOND_UPLOAD_KEY" in message
    assert "5a4db0c5e7e57" not in message and refused.value.exit_code == 3
