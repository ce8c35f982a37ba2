"""What fits a terminal: its width, and prose wrapped at words to it.

A terminal wraps a long line wherever its last column falls, mid-word; oort-sync wraps its
prose (the watch summary, the run summary, the plan, login's hints) itself, at words. Only
on a terminal: a pipe, a file or a cron mail gets each line whole, for grep and scripts.
Never for a recipe (a crontab line, a unit, JSON): a wrapped one would not paste back.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Iterator

# The width of a terminal that tells none (a serial console, a bare pty): none is
# narrower in practice.
DEFAULT_WIDTH = 80


def width(stream=None, default: int = DEFAULT_WIDTH) -> int:
    """The columns of the terminal behind `stream` (stderr), else `default`."""
    stream = stream or sys.stderr
    try:
        return os.get_terminal_size(stream.fileno()).columns or default
    except (OSError, ValueError, AttributeError):
        return default


def is_terminal(stream) -> bool:
    try:
        return bool(stream.isatty())
    except (OSError, ValueError, AttributeError):
        return False


def wrapped(line: str, columns: int) -> list[str]:
    """`line` cut at spaces into lines of at most `columns` characters (a word longer
    than that, a path or a URL, stays whole on a line of its own); each continuation is
    indented two spaces deeper than the line. A line that fits is returned as it is."""
    if len(line) <= columns:
        return [line]
    import textwrap

    indent = line[: len(line) - len(line.lstrip(" "))]
    return textwrap.wrap(line, width=columns, subsequent_indent=indent + "  ",
                         break_long_words=False, break_on_hyphens=False) or [line]


def fit(lines: Iterable[str], stream) -> Iterator[str]:
    """`lines` as the terminal behind `stream` shows them best: each (and each line of a
    text holding line breaks) wrapped at words to its width; as they are when `stream` is
    not a terminal. Given as they come (a dry run's listing may be a million lines)."""
    if not is_terminal(stream):
        yield from lines
        return
    columns = width(stream)
    for text in lines:
        for line in text.split("\n"):
            yield from wrapped(line, columns)
