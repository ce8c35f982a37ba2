"""Run the oort-sync CLI as if on Windows or macOS, on a Linux machine.

    python tests/simulate_host.py windows ARGS...   # or: macos ARGS...

Windows: sys.platform is "win32" and os.name "nt"; the POSIX-only functions of os
(geteuid, fchmod, getpgid...) are removed; fcntl and the
other POSIX-only modules cannot be imported; there are no system time zone files (only
the tzdata package answers); DirEntry.stat() leaves st_ino and st_dev at 0, as Windows'
does. platformdirs finds %APPDATA% and %LOCALAPPDATA% in the environment (the shell API it
calls on a real Windows cannot run here; the variables are its documented fallback).
What cannot be pretended: paths stay POSIX-shaped (os.path is posixpath, pathlib builds
PosixPath, the files are on this machine's filesystem) and filelock takes its POSIX lock
(msvcrt does not exist here), and shutil.disk_usage reads statvfs (Windows' asks
nt._getdiskusage); oort_lib's choices are what is under test, not the OS.

macOS: sys.platform is "darwin"; everything else is the real POSIX system, as on a Mac.

The standard and third-party modules oort_lib uses are imported first, with the real
platform (they make their own platform choices at import, which would fail here for
the same reasons a Windows build of them differs); oort_lib is imported after the change,
so its module-level code sees the pretended system. With $OORT_SIM_AUDIT set, one JSON line
per CLI call is appended there: its arguments and the imports it was refused.
"""

from __future__ import annotations

# ruff: noqa: E402, F401 - imports in a deliberate order, for their side effects.
import importlib
import json
import os
import pathlib
import sys

REAL_FIRST = [
    "astropy.io.fits", "astropy.utils.exceptions", "bz2", "concurrent.futures",
    "configparser", "contextlib", "dataclasses", "datetime", "dateutil.parser", "docopt",
    "email.utils", "filelock", "gzip", "hashlib", "hmac", "html", "ipaddress",
    "logging.handlers", "numpy", "plistlib", "queue", "random", "requests",
    "requests.adapters", "secrets", "shlex", "shutil", "signal", "socket", "sqlite3",
    "sqlite_utils", "struct", "subprocess", "tempfile", "threading", "urllib.parse", "uuid",
    "xisf", "xml.sax.saxutils", "xml.etree.ElementTree", "zlib", "zoneinfo",
]
WINDOWS_LACKS_MODULES = {"fcntl", "termios", "tty", "pty", "pwd", "grp", "resource",
                         "syslog", "ctypes", "_ctypes"}
WINDOWS_LACKS_OS = [
    "geteuid", "getuid", "getegid", "getgid", "getgroups", "getresuid", "getresgid",
    "setuid", "seteuid", "setgid", "setegid", "setgroups", "initgroups", "getgrouplist",
    "getpgid", "getpgrp", "setpgid", "setpgrp", "getsid", "setsid", "killpg", "fork",
    "forkpty", "openpty", "wait3", "wait4", "fchmod", "lchmod", "fchown", "chown", "lchown",
    "chroot", "fchdir", "mkfifo", "mknod", "statvfs", "fstatvfs", "sync", "fdatasync",
    "getloadavg", "uname", "sysconf", "fpathconf", "pathconf", "confstr", "ttyname",
    "ctermid", "lockf", "posix_fadvise", "posix_fallocate", "pread", "pwrite", "nice",
    "getpriority", "setpriority", "sched_getaffinity", "sched_setaffinity",
]  # The O_ flags stay: filelock's POSIX lock, standing in for msvcrt, needs them
# (tests/test_host.py checks that oort_lib itself uses only the ones Windows has).

refused: list[str] = []


class _Refuse:
    """A meta path finder that makes modules Windows does not have unimportable."""

    def __init__(self, names: set[str]):
        self.names = names

    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in self.names:
            refused.append(name)
            raise ImportError(f"No module named {name!r} (simulated Windows)", name=name)
        return None


class _WindowsDirEntry:
    """A DirEntry whose stat() reports st_ino = st_dev = 0, as Windows' DirEntry does."""

    __slots__ = ("_entry",)

    def __init__(self, entry):
        self._entry = entry

    def __getattr__(self, name):
        return getattr(self._entry, name)

    def __fspath__(self):
        return self._entry.path

    def stat(self, *, follow_symlinks=True):
        return _WindowsStat(self._entry.stat(follow_symlinks=follow_symlinks))


class _WindowsStat:
    """A stat result with st_ino = st_dev = 0."""

    __slots__ = ("_st",)
    st_ino = st_dev = 0

    def __init__(self, st):
        self._st = st

    def __getattr__(self, name):
        return getattr(self._st, name)


class _WindowsScandir:
    def __init__(self, iterator):
        self._iterator = iterator

    def __iter__(self):
        return (_WindowsDirEntry(entry) for entry in self._iterator)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        self._iterator.close()


def pretend_windows() -> None:
    for name in REAL_FIRST:
        importlib.import_module(name)
    import zoneinfo

    zoneinfo.reset_tzpath(to=[])  # no /usr/share/zoneinfo on Windows: tzdata must answer
    real_new = pathlib.Path.__new__

    def posix_path(cls, *args, **kwargs):
        # pathlib picks WindowsPath when os.name is "nt", which cannot exist on Linux.
        return real_new(pathlib.PosixPath if cls is pathlib.Path else cls, *args, **kwargs)

    pathlib.Path.__new__ = staticmethod(posix_path)
    import shutil

    statvfs = os.statvfs

    def disk_usage(path):
        # Windows' shutil.disk_usage asks nt._getdiskusage, which cannot run here.
        st = statvfs(path)
        return shutil._ntuple_diskusage(st.f_blocks * st.f_frsize, (st.f_blocks - st.f_bfree)
                                        * st.f_frsize, st.f_bavail * st.f_frsize)

    shutil.disk_usage = disk_usage
    sys.platform = "win32"
    os.name = "nt"
    for name in WINDOWS_LACKS_OS:
        if hasattr(os, name):
            delattr(os, name)
    real_scandir = os.scandir
    os.scandir = lambda path=".": _WindowsScandir(real_scandir(path))
    for name in list(sys.modules):
        if name.split(".")[0] in WINDOWS_LACKS_MODULES:
            del sys.modules[name]
    sys.meta_path.insert(0, _Refuse(WINDOWS_LACKS_MODULES))


def pretend_macos() -> None:
    for name in REAL_FIRST:
        importlib.import_module(name)
    sys.platform = "darwin"


def main(argv: list[str]) -> int:
    system, args = argv[0], argv[1:]
    {"windows": pretend_windows, "macos": pretend_macos}[system]()
    from oort_lib.cli import main as cli_main

    try:
        return cli_main(args)
    finally:
        audit = os.environ.get("OORT_SIM_AUDIT")
        if audit:
            with open(audit, "a", encoding="utf-8") as handle:
                handle.write(json.dumps({"args": args, "refused": refused,
                                         "platform": sys.platform, "os.name": os.name}) + "\n")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
