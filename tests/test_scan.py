"""The folder walker: candidates, odd names, symlinks, permissions, vanishing files."""

from __future__ import annotations

import errno
import json
import os
import shutil
import tempfile
from pathlib import Path

import pytest

from oort_lib.errors import FileProblem
from oort_lib.local import scan
from oort_lib.local.scan import (
    FITS_EXTENSIONS,
    Entry,
    Skipped,
    _Access,
    _reason,
    display_name,
    is_candidate,
    key_name,
    name_of_key,
    walk,
)

NOBODY = 65534


@pytest.fixture(autouse=True, params=["by descriptor", "by path"])
def listing(request, monkeypatch):
    """Every test twice: folders listed and their files stat'ed through the folder's
    descriptor (POSIX), and by path (Windows, and the fallback): the same answers."""
    if request.param == "by descriptor" and not scan._BY_FD:
        pytest.skip("this system lists folders by path only")
    monkeypatch.setattr(scan, "_BY_FD", request.param == "by descriptor")
    return request.param


def touch(path: Path, content: bytes = b"SIMPLE  =  T") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    return path


def results(root) -> dict[str, Entry | Skipped]:
    items = list(walk(str(root)))
    by_relpath = {item.relpath: item for item in items}
    assert len(by_relpath) == len(items), "a relpath was yielded twice"
    return by_relpath


def reasons(root) -> dict[str, str]:
    return {
        rel: (item.reason if isinstance(item, Skipped) else "ok")
        for rel, item in results(root).items()
    }


# --- extensions ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "a.fits", "a.FITS", "a.Fit", "a.fts", "a.ft", "a.mt", "a.imfits", "a.imfit",
        "a.uvfits", "a.uvfit", "a.pha", "a.rmf", "a.arf", "a.rsp", "a.pi", "a.fz",
        "a.fits.gz", "a.FITS.GZ", "a.fit.bz2", "a.fz.gz", "a.pha.bz2", "a.xisf", "a.XISF",
        "NGC.3603.fits", "M 42 #1 (50%).fits", "x.y.z.fts.gz",
    ],
)  # fmt: skip
def test_candidates(name):
    assert is_candidate(name)


@pytest.mark.parametrize(
    "name",
    [
        "a.txt", "passwords.csv", "x.fits.zip", "x.fits.xz", "x.xisf.gz", "fits", "a.fitsx",
        "a.fits.gz.part", "a.fits~", "a.jpg", "a.fit.tmp", "a.gz", "a.bz2", "a.pix",
    ],
)  # fmt: skip
def test_not_candidates(name):
    assert not is_candidate(name)


def test_extension_list():
    assert ".fits.bz2" in FITS_EXTENSIONS and ".fz.gz" in FITS_EXTENSIONS
    assert ".xisf" in FITS_EXTENSIONS and ".xisf.gz" not in FITS_EXTENSIONS
    assert all(ext == ext.lower() and ext.startswith(".") for ext in FITS_EXTENSIONS)


def test_walk_sorts_candidates_from_the_rest(tmp_path):
    for name in ["b.FITS", "a.fits.gz", "c.fit.bz2", "d.fz", "e.xisf", "f.txt",
                 "NGC.3603.fits", "x.fits.zip"]:  # fmt: skip
        touch(tmp_path / name, b"x" * 10)
    found = results(tmp_path)
    entries = sorted(r for r, item in found.items() if isinstance(item, Entry))
    assert entries == ["NGC.3603.fits", "a.fits.gz", "b.FITS", "c.fit.bz2", "d.fz", "e.xisf"]
    assert found["f.txt"] == Skipped(str(tmp_path / "f.txt"), "f.txt", "not FITS or XISF", 10)
    assert found["x.fits.zip"].reason == "not FITS or XISF"


# --- what an Entry holds ----------------------------------------------------------------------


def test_entry_fields(tmp_path):
    path = touch(tmp_path / "NGC3603" / "Halpha" / "m1.fits", b"y" * 1234)
    os.utime(path, ns=(1_600_000_000_123_456_789, 1_600_000_000_123_456_789))
    (item,) = walk(str(tmp_path))
    st = os.stat(path)
    assert item == Entry(str(path), "NGC3603/Halpha/m1.fits", 1234, 1_600_000_000_123_456_789,
                         st.st_dev, st.st_ino)
    assert st.st_ino != 0  # the upload compares this identity with the file it opens


def test_relative_root_gives_absolute_paths(tmp_path, monkeypatch):
    touch(tmp_path / "w" / "a.fits")
    monkeypatch.chdir(tmp_path)
    (item,) = walk("w")
    assert os.path.isabs(item.path) and item.path == str(tmp_path / "w" / "a.fits")
    assert item.relpath == "a.fits"


def test_order_is_by_name_files_before_subfolders(tmp_path):
    for rel in ["b/2.fits", "b/1.fits", "a/z/9.fits", "a/0.fits", "c.fits", "A.fits"]:
        touch(tmp_path / rel)
    order = [item.relpath for item in walk(str(tmp_path))]
    assert order == ["A.fits", "c.fits", "a/0.fits", "a/z/9.fits", "b/1.fits", "b/2.fits"]
    assert order == [item.relpath for item in walk(str(tmp_path))]


def test_hidden_files_and_folders_are_ignored_silently(tmp_path):
    touch(tmp_path / ".hidden.fits")
    touch(tmp_path / ".git" / "objects" / "x.fits")
    touch(tmp_path / "M42" / ".sync" / "tmp.fits")
    touch(tmp_path / "M42" / "._m1.fits")
    touch(tmp_path / "M42" / "m1.fits")
    assert reasons(tmp_path) == {"M42/m1.fits": "ok"}


def test_a_hidden_root_is_still_walked(tmp_path):
    touch(tmp_path / ".data" / "a.fits")
    assert reasons(tmp_path / ".data") == {"a.fits": "ok"}


def test_empty_files(tmp_path):
    touch(tmp_path / "empty.fits", b"")
    touch(tmp_path / "empty.txt", b"")
    found = results(tmp_path)
    assert found["empty.fits"] == Skipped(str(tmp_path / "empty.fits"), "empty.fits", "empty file")
    assert found["empty.txt"].reason == "not FITS or XISF"


def test_a_fifo_is_never_opened(tmp_path):
    os.mkfifo(tmp_path / "pipe.fits")
    touch(tmp_path / "real.fits")
    # Opening the FIFO would block this test forever; the walk only stats it.
    assert reasons(tmp_path) == {"pipe.fits": "not FITS or XISF", "real.fits": "ok"}


# --- names ------------------------------------------------------------------------------------


def test_unicode_and_odd_characters(tmp_path):
    names = ["Cône de l'Étoile.fits", "星雲.fits", "a b#c?d%e'f\"g.fits", "tab\there.fit",
             "emoji 🔭.xisf", "back\\slash.fits"]  # fmt: skip
    for name in names:
        touch(tmp_path / "Nébuleuse" / name, b"data")
    found = results(tmp_path)
    # A literal backslash is doubled in the key (see test_keys_of_odd_names_never_collide).
    assert sorted(found) == sorted(f"Nébuleuse/{key_name(name)}" for name in names)
    assert "Nébuleuse/back\\\\slash.fits" in found
    for item in found.values():
        assert isinstance(item, Entry)
        assert Path(item.path).read_bytes() == b"data"


def test_non_utf8_names(tmp_path):
    base = os.fsencode(str(tmp_path))
    os.mkdir(os.path.join(base, b"Caf\xe9"))
    fd = os.open(os.path.join(base, b"Caf\xe9", b"d\xfcst \xff.fits"), os.O_CREAT | os.O_WRONLY)
    os.write(fd, b"latin-1 named")
    os.close(fd)
    (item,) = walk(str(tmp_path))
    assert isinstance(item, Entry)
    assert item.relpath == "Caf\\xe9/d\\xfcst \\xff.fits"
    item.relpath.encode("utf-8")  # valid text, whatever the disk holds
    # The path keeps the real bytes (as surrogate escapes) so the file can be opened.
    assert os.fsencode(item.path) == os.path.join(base, b"Caf\xe9", b"d\xfcst \xff.fits")
    with open(item.path, "rb") as f:
        assert f.read() == b"latin-1 named"


def test_keys_of_odd_names_never_collide(tmp_path):
    """The byte 0xE9 and a name holding the characters \\xe9 are two keys, and each key
    maps back to its one name."""
    raw = [b"caf\xe9.fits", b"caf\\xe9.fits", b"caf\\\\xe9.fits", b"back\\slash.fits",
           b"plain.fits", "Étoile.fits".encode(), b"\xff\\x.fits"]
    for name in raw:
        touch(Path(os.fsdecode(bytes(tmp_path) + b"/" + name)))
    found = results(tmp_path)
    assert len(found) == len(raw)
    for name in raw:
        decoded = os.fsdecode(name)
        assert key_name(decoded) in found
        assert name_of_key(key_name(decoded)) == decoded
        assert key_name(decoded).encode("utf-8")  # valid UTF-8 text


def test_display_name():
    assert display_name("plain.fits") == "plain.fits"
    assert display_name("Étoile 星.fits") == "Étoile 星.fits"
    assert display_name(os.fsdecode(b"caf\xe9.fits")) == "caf\\xe9.fits"
    assert display_name(os.fsdecode(b"\xff\xfe")) == "\\xff\\xfe"


# --- symlinks ---------------------------------------------------------------------------------


def test_symlink_loop_to_an_ancestor(tmp_path):
    touch(tmp_path / "M42" / "m1.fits")
    (tmp_path / "M42" / "again").symlink_to(tmp_path)
    (tmp_path / "M42" / "up").symlink_to("..")
    found = reasons(tmp_path)
    assert found == {"M42/m1.fits": "ok", "M42/again": "symlink loop", "M42/up": "symlink loop"}


def test_symlink_to_itself(tmp_path):
    (tmp_path / "self.fits").symlink_to("self.fits")
    (tmp_path / "ping").symlink_to("pong")
    (tmp_path / "pong").symlink_to("ping")
    assert reasons(tmp_path) == {
        "self.fits": "symlink loop",
        "ping": "symlink loop",
        "pong": "symlink loop",
    }


def test_symlinks_outside_the_root(tmp_path):
    outside = tmp_path / "outside"
    touch(outside / "secret.fits")
    root = tmp_path / "root"
    touch(root / "mine.fits")
    (root / "secret.fits").symlink_to(outside / "secret.fits")
    (root / "elsewhere").symlink_to(outside)
    (root / "etc").symlink_to("/etc")
    # A sibling whose name starts like the root is still outside it.
    touch(tmp_path / "root2" / "x.fits")
    (root / "sibling").symlink_to(tmp_path / "root2")
    assert reasons(root) == {
        "mine.fits": "ok",
        "secret.fits": "symlink points outside the watched folder",
        "elsewhere": "symlink points outside the watched folder",
        "etc": "symlink points outside the watched folder",
        "sibling": "symlink points outside the watched folder",
    }


def test_broken_symlink(tmp_path):
    (tmp_path / "gone.fits").symlink_to(tmp_path / "never-was.fits")
    (tmp_path / "gone-dir").symlink_to("nowhere")
    assert reasons(tmp_path) == {"gone.fits": "broken symlink", "gone-dir": "broken symlink"}


def test_symlinks_inside_the_root(tmp_path):
    real = touch(tmp_path / "M42" / "m1.fits", b"12345")
    (tmp_path / "alias.fits").symlink_to(real)
    (tmp_path / "link.txt").symlink_to(real)
    # A link to a folder the walk reaches anyway would upload its files twice.
    (tmp_path / "AAA").symlink_to(tmp_path / "M42")
    # A link into a hidden folder is the only way in, so it is walked.
    touch(tmp_path / ".stash" / "kept.fits")
    (tmp_path / "stash").symlink_to(tmp_path / ".stash")
    found = results(tmp_path)
    assert {rel: getattr(item, "reason", "ok") for rel, item in found.items()} == {
        "alias.fits": "ok",
        "link.txt": "not FITS or XISF",
        "M42/m1.fits": "ok",
        "AAA": "symlink loop",
        "stash/kept.fits": "ok",
    }
    assert found["alias.fits"].size == 5
    assert found["stash/kept.fits"].path == str(tmp_path / "stash" / "kept.fits")


def test_symlinked_root(tmp_path):
    touch(tmp_path / "disk" / "data" / "a.fits")
    (tmp_path / "data").symlink_to(tmp_path / "disk" / "data")
    (tmp_path / "disk" / "data" / "b.fits").symlink_to(tmp_path / "disk" / "data" / "a.fits")
    assert reasons(tmp_path / "data") == {"a.fits": "ok", "b.fits": "ok"}


# --- the root ---------------------------------------------------------------------------------


def test_missing_root(tmp_path):
    with pytest.raises(FileProblem, match="watched folder is missing"):
        list(walk(str(tmp_path / "unmounted")))


def test_root_that_is_a_file(tmp_path):
    touch(tmp_path / "a.fits")
    with pytest.raises(FileProblem, match="watched folder is missing"):
        list(walk(str(tmp_path / "a.fits")))


def test_empty_root(tmp_path):
    assert list(walk(str(tmp_path))) == []


# --- things that change during the walk -------------------------------------------------------


def test_file_vanishing_during_the_walk(tmp_path):
    touch(tmp_path / "a.fits")
    touch(tmp_path / "b.fits")
    touch(tmp_path / "c.fits")
    items = walk(str(tmp_path))
    assert next(items).relpath == "a.fits"
    (tmp_path / "b.fits").unlink()
    rest = list(items)
    assert [(i.relpath, getattr(i, "reason", "ok")) for i in rest] == [
        ("b.fits", "vanished during the walk"),
        ("c.fits", "ok"),
    ]


def test_folder_vanishing_during_the_walk(tmp_path):
    touch(tmp_path / "a.fits")
    touch(tmp_path / "sub" / "deep" / "x.fits")
    touch(tmp_path / "sub" / "y.fits")
    items = walk(str(tmp_path))
    assert next(items).relpath == "a.fits"
    assert next(items).relpath == "sub/y.fits"
    shutil.rmtree(tmp_path / "sub")
    assert [(i.relpath, i.reason) for i in items] == [("sub/deep", "vanished during the walk")]


def open_descriptors() -> set[str]:
    return set(os.listdir("/proc/self/fd"))


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs /proc/self/fd")
def test_no_folder_descriptor_outlives_the_walk(tmp_path):
    for folder in ("a", "a/b", "c"):
        touch(tmp_path / folder / "x.fits")
    (tmp_path / "locked").mkdir(mode=0)
    before = open_descriptors()
    assert len(list(walk(str(tmp_path)))) >= 3
    items = walk(str(tmp_path))
    next(items)
    next(items)  # in a subfolder: its descriptor is open
    items.close()  # a caller that stops early (a missing root, an interrupt)
    assert open_descriptors() == before
    # The walk's folder descriptors are made non-inheritable: a program started during
    # the walk never holds one.
    assert scan._FOLDER_FLAGS & getattr(os, "O_CLOEXEC", 0) == getattr(os, "O_CLOEXEC", 0)


def test_reasons_for_os_errors():
    assert _reason(PermissionError(errno.EACCES, "Permission denied")) == "permission denied"
    assert _reason(FileNotFoundError(errno.ENOENT, "x")) == "vanished during the walk"
    assert _reason(OSError(errno.ELOOP, "Too many levels")) == "symlink loop"
    assert _reason(OSError(errno.EIO, "Input/output error")) == "unreadable: Input/output error"


# --- permissions ------------------------------------------------------------------------------


def fake_stat(uid: int, gid: int, mode: int) -> os.stat_result:
    return os.stat_result((mode, 1, 1, 1, uid, gid, 10, 0, 0, 0))


def test_access_from_mode_bits():
    access = _Access()
    access.uid, access.gids = 1000, {1000, 20}
    missing = "/nonexistent/so/os.access/says/no"
    assert access.readable(missing, fake_stat(1000, 5, 0o100400))
    assert not access.readable(missing, fake_stat(1000, 20, 0o100044))
    assert access.readable(missing, fake_stat(7, 20, 0o100040))
    assert not access.readable(missing, fake_stat(7, 21, 0o100040))
    assert access.readable(missing, fake_stat(7, 21, 0o100004))
    assert not access.readable(missing, fake_stat(7, 21, 0o100000))


def as_nobody(function, *args):
    """Run ``function(*args)`` as an unprivileged user and return its JSON-able result.

    Root bypasses permission checks, so these tests would prove nothing as root. The
    child is forked (not exec'd) and drops its privileges itself, so it needs neither a
    Python interpreter nor a project checkout that the unprivileged user can read.
    """
    if os.geteuid() != 0:
        return function(*args)
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never return into pytest
        status = 1
        try:
            os.close(read_end)
            os.setgroups([])
            os.setgid(NOBODY)
            os.setuid(NOBODY)
            try:
                payload = {"result": function(*args)}
            except Exception as exc:
                payload = {"error": f"{type(exc).__name__}: {exc}"}
            with os.fdopen(write_end, "w") as out:
                json.dump(payload, out)
            status = 0
        finally:
            os._exit(status)
    os.close(write_end)
    with os.fdopen(read_end) as incoming:
        data = incoming.read()
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, data
    payload = json.loads(data)
    if "error" in payload:
        raise AssertionError(payload["error"])
    return payload["result"]


def walk_error(root: Path) -> str | None:
    try:
        list(walk(str(root)))
    except FileProblem as exc:
        return str(exc)
    return None


@pytest.fixture
def shared_tmp():
    """A folder an unprivileged user can reach (pytest's tmp_path is private to root)."""
    path = Path(tempfile.mkdtemp(prefix="oort-scan-"))
    path.chmod(0o755)
    yield path
    for folder, dirs, _files in os.walk(path):
        for name in dirs:
            os.chmod(os.path.join(folder, name), 0o755)
    shutil.rmtree(path)


def test_permission_denied_files_and_folders(shared_tmp):
    root = shared_tmp / "root"
    root.mkdir(mode=0o755)
    root.chmod(0o755)
    touch(root / "ok.fits").chmod(0o644)
    touch(root / "secret.fits").chmod(0o600)
    touch(root / "notes.txt").chmod(0o600)
    locked = root / "locked"
    touch(locked / "x.fits").chmod(0o644)
    locked.chmod(0o700)
    # Listable but not searchable: names can be read, their stat is refused.
    half = root / "half"
    touch(half / "y.fits").chmod(0o644)
    half.chmod(0o744)
    touch(root / "z" / "after.fits").chmod(0o644)
    (root / "z").chmod(0o755)
    assert as_nobody(reasons, str(root)) == {
        "ok.fits": "ok",
        "secret.fits": "permission denied",
        "notes.txt": "not FITS or XISF",
        "locked": "permission denied",
        "half/y.fits": "permission denied",
        "z/after.fits": "ok",
    }


def test_unreadable_root_is_an_error_not_an_empty_folder(shared_tmp):
    root = shared_tmp / "root"
    touch(root / "a.fits")
    root.chmod(0o700)
    message = as_nobody(walk_error, root)
    assert message is not None and message.endswith(
        "watched folder cannot be read (permission denied)"
    )
