"""Exclude patterns of a watched folder (`watch --exclude=PATTERN`, `exclude` in the config).

Globs relative to the watched folder, matched during the walk, so an excluded folder is
not even entered:

- a pattern without `/` matches a file or folder name at any depth: `*.tmp`, `processed`;
- a pattern with `/` matches the path from the watched folder: `WBPP/calibrated`,
  `*/master/*.xisf` (a leading `/` is allowed and means the same);
- a trailing `/` matches folders only: `logs/`;
- `*` and `?` stay within one name, `**` spans folders: `**/registered/*.xisf`;
- `[abc]` a character class, as in the shell.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable

from oort_lib.errors import ConfigError

EXCLUDED = "excluded by "  # the reason of an excluded file or folder: "excluded by *.tmp"

# Starting points, documented in the README (PixInsight WBPP writes its products into
# the folder it is given; capture programs and editors leave temporary files).
EXAMPLES = {
    "PixInsight WBPP output": ("calibrated/", "registered/", "master/", "logs/",
                               "fastIntegration/", "*.xdrz"),
    "temporary files": ("*.tmp", "*.part", "*~", "Thumbs.db"),
}


def _translate(glob: str) -> str:
    out, index = [], 0
    while index < len(glob):
        char = glob[index]
        if glob.startswith("**/", index):
            out.append("(?:.*/)?")
            index += 3
            continue
        if glob.startswith("**", index):
            out.append(".*")
            index += 2
            continue
        if char == "*":
            out.append("[^/]*")
        elif char == "?":
            out.append("[^/]")
        elif char == "[":
            end = glob.find("]", index + 2)
            if end == -1:
                out.append(re.escape(char))
            else:
                body = glob[index + 1:end]
                if body.startswith("!"):
                    body = "^" + body[1:]
                out.append(f"[{body.replace(chr(92), chr(92) * 2)}]")
                index = end + 1
                continue
        else:
            out.append(re.escape(char))
        index += 1
    return "".join(out)


def check(patterns: Iterable[str]) -> tuple[str, ...]:
    """The patterns, cleaned. Raises ConfigError for one that can never match inside
    the folder (empty, `..`, an absolute path of the disk)."""
    cleaned = []
    for raw in patterns:
        pattern = raw.strip().replace("\\", "/") if "/" in raw or "\\" in raw else raw.strip()
        if not pattern or pattern in ("/", "**", "*", "**/"):
            raise ConfigError(f"exclude pattern {raw!r} would exclude everything "
                              "(or nothing): give a name or a path inside the folder.")
        if ".." in pattern.split("/"):
            raise ConfigError(f"exclude pattern {raw!r}: patterns are relative to the "
                              "watched folder and cannot go above it (no `..`).")
        if re.match(r"[A-Za-z]:/", pattern):
            raise ConfigError(f"exclude pattern {raw!r}: give a path relative to the "
                              "watched folder, not a drive path.")
        cleaned.append(pattern)
    return tuple(dict.fromkeys(cleaned))


def matcher(patterns: Iterable[str]) -> Callable[[str, bool], str | None] | None:
    """A function (relpath, is_folder) -> the first pattern that excludes it, or None;
    None when there is no pattern (the walk then pays nothing)."""
    compiled = []
    for pattern in patterns:
        folders_only = pattern.endswith("/")
        body = pattern.strip("/")
        anchored = "/" in body or pattern.startswith("/")
        regex = _translate(body)
        regex = f"^{regex}$" if anchored else f"^(?:.*/)?{regex}$"
        compiled.append((re.compile(regex, re.S), folders_only, pattern))
    if not compiled:
        return None

    def excluded(relpath: str, is_folder: bool) -> str | None:
        for regex, folders_only, pattern in compiled:
            if folders_only and not is_folder:
                continue
            if regex.match(relpath):
                return pattern
        return None

    return excluded


def excluded_by(relpath: str, patterns: Iterable[str]) -> str | None:
    """The pattern excluding `relpath` (a file) or a folder above it, else None."""
    match = matcher(patterns)
    if match is None:
        return None
    parts = relpath.split("/")
    for depth in range(1, len(parts)):
        found = match("/".join(parts[:depth]), True)
        if found:
            return found
    return match(relpath, False)
