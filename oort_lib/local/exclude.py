"""Exclude patterns of a watched folder (`watch --exclude=PATTERN`, `exclude` in the config).

Globs relative to the watched folder, matched during the walk, so an excluded folder is
not even entered:

- a pattern without `/` matches a file or folder name at any depth: `*.tmp`, `processed`;
- a pattern with `/` matches the path from the watched folder: `WBPP/calibrated`,
  `*/master/*.xisf` (a leading `/` is allowed and means the same);
- a trailing `/` matches folders only: `logs/`;
- `*`, `?` and `[abc]` stay within one name, `**` spans folders: `**/registered/*.xisf`;
- `[abc]` a character class, as in the shell (`[!abc]` any other character).

Matching takes time linear in the length of the path, whatever the pattern: the globs
of a folder are compiled into one automaton (a Thompson NFA whose sets of states are
built lazily into a DFA, as RE2 does). A backtracking regex would take exponential time
on `*_*_*_*_*_*_*_*.tmp` against a long name, and the walk matches every name of every
run. A pattern has at most MAX_STARS stars all the same: a mistyped one is refused.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable

from oort_lib.errors import ConfigError

EXCLUDED = "excluded by "  # the reason of an excluded file or folder: "excluded by *.tmp"
MAX_STARS = 16  # far beyond any useful glob; each star is a state of the automaton

# Starting points, documented in the README (PixInsight WBPP writes its products into
# the folder it is given; capture programs and editors leave temporary files).
EXAMPLES = {
    "PixInsight WBPP output": ("calibrated/", "registered/", "master/", "logs/",
                               "fastIntegration/", "*.xdrz"),
    "temporary files": ("*.tmp", "*.part", "*~", "Thumbs.db"),
}

# What an edge of the automaton accepts: a literal character (a str of length 1), any
# character, any but `/`, or one character of a _Class (never `/`).
_ANY = 0
_NAME = 1
# The sets of states kept before the cache starts over: bounds memory, not time.
_STATES = 4096
_PREFIXES = 1024


def check(patterns: Iterable[str]) -> tuple[str, ...]:
    """The patterns, cleaned. Raises ConfigError for one that can never match inside
    the folder (empty, `..`, an absolute path of the disk), or that has more than
    MAX_STARS stars."""
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
        stars = pattern.count("*")
        if stars > MAX_STARS:
            raise ConfigError(f"exclude pattern {_shown(raw)}: {stars} stars, at most "
                              f"{MAX_STARS}; a glob needs far fewer (`*.tmp`, "
                              "`**/registered/*.xisf`).")
        cleaned.append(pattern)
    return tuple(dict.fromkeys(cleaned))


def matcher(patterns: Iterable[str]) -> Callable[[str, bool], str | None] | None:
    """A function (relpath, is_folder) -> the first pattern that excludes it, or None;
    None when there is no pattern (the walk then pays nothing)."""
    patterns = list(patterns)
    if not patterns:
        return None
    return _Automaton(patterns).excluded


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


def _glob(pattern: str) -> str:
    """The glob matched against the whole relative path: a name pattern (no `/`) may
    be preceded by any folders."""
    body = pattern.strip("/")
    anchored = "/" in body or pattern.startswith("/")
    return body if anchored else "**/" + body


def _shown(raw: str) -> str:
    return repr(raw) if len(raw) <= 80 else repr(raw[:77] + "...")


class _Nfa:
    """States numbered from 0; each has edges (test, target) and empty moves."""

    def __init__(self):
        self.edges: list[list[tuple[object, int]]] = []
        self.empty: list[list[int]] = []

    def state(self) -> int:
        self.edges.append([])
        self.empty.append([])
        return len(self.edges) - 1

    def add(self, pattern: str) -> tuple[int, int]:
        """The (start, accepting) states of a pattern matched against a whole path."""
        glob = _glob(pattern)
        start = now = self.state()
        index = 0
        while index < len(glob):
            if glob.startswith("**/", index):  # no folder, or any folders
                inside, after = self.state(), self.state()
                self.empty[now] += [inside, after]
                self.edges[inside] += [(_ANY, inside), ("/", after)]
                now, index = after, index + 3
                continue
            if glob.startswith("**", index) or glob[index] == "*":
                test = _ANY if glob.startswith("**", index) else _NAME
                loop, after = self.state(), self.state()
                self.empty[now].append(loop)
                self.edges[loop].append((test, loop))
                self.empty[loop].append(after)
                now, index = after, index + (2 if test == _ANY else 1)
                continue
            test, index = _one(glob, index)
            after = self.state()
            self.edges[now].append((test, after))
            now = after
        return start, now


def _one(glob: str, index: int) -> tuple[object, int]:
    """The test of the one-character item at `index`, and the index after it."""
    char = glob[index]
    if char == "?":
        return _NAME, index + 1
    if char == "[":
        end = glob.find("]", index + 2)  # `[]x]`: a `]` first is one of the characters
        if end != -1:
            return _Class(glob[index + 1:end]), end + 1
    return char, index + 1


class _Class:
    """`[abc]`, `[a-z0-9]`, `[!abc]` (or `[^abc]`): one character of a name."""

    def __init__(self, body: str):
        self.negated = body[:1] in ("!", "^")
        body = body[1:] if self.negated else body
        self.ranges: list[tuple[str, str]] = []
        index = 0
        while index < len(body):
            if index + 2 < len(body) and body[index + 1] == "-":
                self.ranges.append((body[index], body[index + 2]))
                index += 3
            else:
                self.ranges.append((body[index], body[index]))
                index += 1

    def __contains__(self, char: str) -> bool:
        inside = any(low <= char <= high for low, high in self.ranges)
        return char != "/" and inside != self.negated


def _passes(test, char: str) -> bool:
    if test == _ANY:
        return True
    if test == _NAME:
        return char != "/"
    if isinstance(test, str):
        return test == char
    return char in test


class _Automaton:
    """The patterns of a folder as one automaton: one step per character of the path,
    whatever the patterns (each set of states is built once, then looked up)."""

    def __init__(self, patterns: list[str]):
        self.nfa = _Nfa()
        self.starts: list[int] = []
        self.accepting: dict[int, tuple[int, bool, str]] = {}
        for order, pattern in enumerate(patterns):
            start, end = self.nfa.add(pattern)
            self.starts.append(start)
            self.accepting[end] = (order, pattern.endswith("/"), pattern)
        self._reset()

    def _reset(self) -> None:
        self.numbers: dict[frozenset[int], int] = {}
        self.sets: list[frozenset[int]] = []
        self.moves: list[dict[str, int]] = []
        self.verdicts: list[tuple[str | None, str | None]] = []  # (file, folder)
        self.prefixes: dict[str, int] = {}
        self.dead = self._number(frozenset())
        self.start = self._number(self._closure(self.starts))

    def _closure(self, states: Iterable[int]) -> frozenset[int]:
        seen = set(states)
        todo = list(seen)
        while todo:
            for target in self.nfa.empty[todo.pop()]:
                if target not in seen:
                    seen.add(target)
                    todo.append(target)
        return frozenset(seen)

    def _number(self, states: frozenset[int]) -> int:
        number = self.numbers.get(states)
        if number is None:
            number = len(self.sets)
            self.numbers[states] = number
            self.sets.append(states)
            self.moves.append({})
            ends = sorted(self.accepting[s] for s in states if s in self.accepting)
            self.verdicts.append((next((p for _, only, p in ends if not only), None),
                                  ends[0][2] if ends else None))
        return number

    def _move(self, number: int, char: str) -> int:
        edges = self.nfa.edges
        targets = [target for state in self.sets[number] for test, target in edges[state]
                   if _passes(test, char)]
        found = self._number(self._closure(targets))
        self.moves[number][char] = found
        return found

    def _run(self, number: int, text: str) -> int:
        moves, dead = self.moves, self.dead
        for char in text:
            if number == dead:
                break
            found = moves[number].get(char)
            number = self._move(number, char) if found is None else found
        return number

    def excluded(self, relpath: str, is_folder: bool) -> str | None:
        if len(self.sets) > _STATES:
            self._reset()  # between two paths: no number held elsewhere
        cut = relpath.rfind("/") + 1
        # The folders of a path are shared by all its siblings: run them once.
        prefix = relpath[:cut]
        number = self.prefixes.get(prefix)
        if number is None:
            if len(self.prefixes) > _PREFIXES:
                self.prefixes.clear()
            number = self.prefixes[prefix] = self._run(self.start, prefix)
        file, folder = self.verdicts[self._run(number, relpath[cut:])]
        return folder if is_folder else file
