"""The host system: everything that differs between Linux, macOS and Windows, in one place.

Every answer is computed when it is asked (``sys.platform`` and ``os`` are looked at then,
never at import), so the rest of oort_lib stays free of platform tests, and the test
suite can run the whole CLI as if on Windows or macOS (tests/simulate_host.py).

Kept light: this module sits on the no-change path of a cron tick, so it imports nothing
beyond the standard modules every run loads anyway; platformdirs is imported only on
macOS and Windows (on Linux the XDG rules are three lines, and the import would cost
~6 ms of a ~200 ms tick).
"""

from __future__ import annotations

import os
import stat
import sys
from pathlib import Path
from typing import NamedTuple

WINDOWS = "windows"
MACOS = "macos"
POSIX = "posix"  # Linux, Raspberry Pi OS, the BSDs

SECRET_MODE = 0o600


def system() -> str:
    """WINDOWS, MACOS or POSIX."""
    if sys.platform == "win32":
        return WINDOWS
    if sys.platform == "darwin":
        return MACOS
    return POSIX


# --- where things go ---------------------------------------------------------------------


class UserDirs(NamedTuple):
    """The per-user folders of an application: config, state and logs."""

    config: Path
    state: Path
    logs: Path


def user_dirs(app: str, environ: os._Environ | dict | None = None) -> UserDirs:
    """Where ``app`` keeps its files for this user, the way the platform expects.

    Linux: $XDG_CONFIG_HOME/app and $XDG_STATE_HOME/app (~/.config, ~/.local/state), logs
    in the state folder. macOS: ~/Library/Application Support/app and ~/Library/Logs/app.
    Windows: %APPDATA%\\app for the config (it roams with the profile), %LOCALAPPDATA%\\app
    for the state and %LOCALAPPDATA%\\app\\Logs. ``environ`` only matters on Linux (on
    macOS and Windows platformdirs asks the system). Raises nothing.
    """
    env = os.environ if environ is None else environ
    kind = system()
    if kind == POSIX:
        # What platformdirs.unix computes (tests/test_host.py checks they agree).
        home = Path(env.get("HOME") or Path.home())
        config = env.get("XDG_CONFIG_HOME") or str(home / ".config")
        state = Path(env.get("XDG_STATE_HOME") or str(home / ".local" / "state")) / app
        return UserDirs(Path(config) / app, state, state)
    if kind == MACOS:
        from platformdirs.macos import MacOS

        dirs = MacOS(app, appauthor=False)
        legacy = Path(env.get("HOME") or Path.home()) / ".config" / app
        if (legacy / "config.ini").exists() and not Path(dirs.user_config_dir).exists():
            # Installed before oort-sync followed macOS conventions: keep using those files
            # rather than starting over with no watched folder and no login.
            state = Path(env.get("HOME") or Path.home()) / ".local" / "state" / app
            return UserDirs(legacy, state, state)
        return UserDirs(Path(dirs.user_config_dir), Path(dirs.user_state_dir),
                        Path(dirs.user_log_dir))
    from platformdirs.windows import Windows

    roaming = Windows(app, appauthor=False, roaming=True)
    local = Windows(app, appauthor=False, roaming=False)
    return UserDirs(Path(roaming.user_config_dir), Path(local.user_state_dir),
                    Path(local.user_log_dir))


# --- secrets -----------------------------------------------------------------------------


def create_secret(path: Path) -> int:
    """Create ``path`` (which must not exist) readable by its owner only, from the first
    byte, and return a descriptor open for writing.

    POSIX: mode 0600 (set again with fchmod: the umask cannot loosen it). Windows: no mode
    bits; the file gets an owner-only ACL (icacls) when icacls is there, and otherwise
    relies on the profile folder's ACL, which already keeps other users out.
    Raises OSError (FileExistsError if ``path`` exists).
    """
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, SECRET_MODE)
    if hasattr(os, "fchmod") and system() != WINDOWS:
        os.fchmod(fd, SECRET_MODE)
    elif system() == WINDOWS:
        _owner_only_acl(path)
    return fd


def _owner_only_acl(path: Path) -> bool:
    """Best effort: drop inherited ACEs and grant the current user alone. True if done."""
    import shutil
    import subprocess

    icacls = shutil.which("icacls")
    user = os.environ.get("USERNAME")
    if not icacls or not user:
        return False
    try:
        done = subprocess.run(
            [icacls, str(path), "/inheritance:r", "/grant:r", f"{user}:F"],
            capture_output=True, timeout=30, check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return False
    return done.returncode == 0


def secret_warning(path: Path, environ: os._Environ | dict | None = None) -> str | None:
    """A warning when other users could read the secret file ``path``, else None.

    POSIX: any group or other permission bit. Windows has no mode bits (st_mode would
    always look world-readable): a file inside the user's profile is private by the
    profile's ACL, so only a file outside it is worth a warning. Raises nothing.
    """
    try:
        mode = path.stat().st_mode
    except OSError:
        return None
    if system() != WINDOWS:
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            return (f"{path} is readable by other users (mode {stat.S_IMODE(mode):o}); "
                    f"run `chmod 600 {path}`.")
        return None
    env = os.environ if environ is None else environ
    profile = env.get("USERPROFILE")
    if profile and is_inside(os.path.abspath(path), os.path.abspath(profile)):
        return None
    return (f"{path} is outside your user profile, where other users of this computer may "
            f"read it; keep the oort-sync home under {profile or 'your profile'} or run "
            f'`icacls "{path}" /inheritance:r /grant:r "%USERNAME%:F"`.')


# --- identities and permissions ------------------------------------------------------------


def effective_ids() -> tuple[int, set[int]] | None:
    """(effective uid, group ids) of this process, or None where there are none (Windows:
    permissions are ACLs, which neither mode bits nor os.access describe). Raises nothing."""
    if not hasattr(os, "geteuid") or system() == WINDOWS:
        return None
    return os.geteuid(), {os.getegid(), *os.getgroups()}


# --- paths -------------------------------------------------------------------------------


def _folds_case(path: str) -> bool:
    """True if the filesystem holding ``path`` ignores case.

    Windows: always (NTFS per-folder case sensitivity is a WSL rarity). Elsewhere, asked
    of the filesystem: the last component with letters, case swapped, names the same file
    (APFS and HFS+ usually ignore case, ext4 does not, a FAT card on Linux does).
    """
    if system() == WINDOWS:
        return True
    probe = path
    while not os.path.lexists(probe):  # a folder gone (unwatch): ask where it was
        parent = os.path.dirname(probe)
        if parent == probe:
            return system() == MACOS
        probe = parent
    while True:
        parent, name = os.path.split(probe)
        if name.swapcase() != name:
            try:
                return os.path.samefile(probe, os.path.join(parent, name.swapcase()))
            except OSError:  # no such name in the other case: case matters here
                return False
        if not name or parent == probe:
            return system() == MACOS  # no letters to probe with: the platform's default
        probe = parent


def path_key(path: str) -> str:
    """``path`` in the form to compare it by: case-folded where the filesystem ignores case
    (so ``C:\\Data`` and ``c:\\data`` are one folder), unchanged elsewhere. Raises nothing."""
    return path.casefold() if _folds_case(path) else path


def is_inside(child: str, parent: str) -> bool:
    """True if ``child`` is ``parent`` or below it (both absolute), comparing the way the
    filesystem does. Raises nothing."""
    child, parent = path_key(child), path_key(parent)
    return child == parent or child.startswith(parent.rstrip(os.sep) + os.sep)


# --- the console ---------------------------------------------------------------------------


def tolerant_console() -> None:
    """On Windows, output redirected to a file or a pipe is encoded in the ANSI code page
    (cp1252...), which cannot hold every file name: escape what it cannot hold rather
    than fail the command. Elsewhere nothing changes. Raises nothing."""
    if system() != WINDOWS:
        return
    for stream in (sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None:
            try:
                reconfigure(errors="backslashreplace")
            except (ValueError, OSError):
                pass


# --- locks and signals ---------------------------------------------------------------------


def has_flock() -> bool:
    """True if fcntl's flock is there (POSIX); the run lock uses filelock otherwise."""
    try:
        import fcntl  # noqa: F401
    except ImportError:
        return False
    return True


def shared_lock_dir(app: str, environ: os._Environ | dict | None = None) -> Path:
    """A folder for ``app``'s locks that every user of the machine sees (it may not exist
    yet): /run/lock/app on Linux (a tmpfs made for locks, never aged); /tmp/app-locks
    where there is no /run/lock (macOS: not $TMPDIR, which is per user there);
    %ProgramData%\\app\\locks on Windows. Raises nothing."""
    env = os.environ if environ is None else environ
    if system() == WINDOWS:
        data = env.get("ProgramData") or env.get("ALLUSERSPROFILE") or r"C:\ProgramData"
        return Path(data) / app / "locks"
    if os.path.isdir("/run/lock"):
        return Path("/run/lock") / app
    return Path("/tmp") / f"{app}-locks"


def share_with_all_users(directory: Path) -> None:
    """Let every user create files in ``directory`` (just made by this process).

    POSIX: mode 1777, as /tmp (set with chmod: the umask cannot narrow it; the sticky
    bit keeps users from removing each other's files). Windows: best effort, the local
    Users group (by its well-known SID, whatever the language) may modify what is
    inside, inherited by the files made there. Raises OSError (POSIX chmod).
    """
    if system() != WINDOWS:
        os.chmod(directory, 0o1777)
        return
    import shutil
    import subprocess

    icacls = shutil.which("icacls")
    if not icacls:
        return
    try:
        subprocess.run([icacls, str(directory), "/grant", "*S-1-5-32-545:(OI)(CI)M"],
                       capture_output=True, timeout=30, check=False)
    except (OSError, subprocess.SubprocessError):
        pass


def interrupt_signals() -> tuple[int, ...]:
    """The signals that ask a run to stop: SIGINT (Ctrl-C), SIGTERM, and on Windows
    SIGBREAK (Ctrl-Break, and what a console window's close sends)."""
    import signal

    found = [signal.SIGINT, signal.SIGTERM]
    if hasattr(signal, "SIGBREAK"):
        found.append(signal.SIGBREAK)
    return tuple(found)


# --- hints -------------------------------------------------------------------------------


def unreadable_folder_hint(exc: OSError) -> str:
    """What to do about a watched folder that cannot be listed, beyond the error itself:
    on macOS a scheduled job is refused ~/Documents, ~/Desktop and external volumes until
    its program has Full Disk Access. Empty string when there is nothing to add."""
    if system() == MACOS and isinstance(exc, PermissionError):
        return ("; on macOS a scheduled job needs Full Disk Access for this folder: "
                f"System Settings > Privacy & Security > Full Disk Access, add "
                f"{os.path.realpath(sys.executable)} (see contrib/launchd/README.md)")
    return ""
