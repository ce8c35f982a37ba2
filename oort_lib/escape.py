"""Control characters written as visible text (`\\x1b`, `\\x0d`), for every place a
person reads: the terminal, cron mail, the text log.

What is printed holds text oort-sync did not write: file names, and a server's error
details, telescope and organisation names. Raw, an ESC sequence there retitles the
terminal or clears the screen, a CR returns to the start of the line so that a forged
"all files uploaded" hides the real one, and a line break forges a whole line.
"""

from __future__ import annotations

import re

# C0 controls (line breaks and tabs included), DEL and the C1 controls (0x9b is a CSI on
# its own); Unicode's line and paragraph separators; and the bidirectional overrides and
# isolates, which make a line display in another order than it is written.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
_CONTROL_IN_LINE = re.compile(r"[\x00-\x09\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e"
                              r"\u2066-\u2069]")


def _visible(match: re.Match) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


def escaped(text: str) -> str:
    """`text` as one line: every control character, line breaks included, written as
    `\\xNN` (`\\uNNNN` past Latin-1). For a value shown inside a line (a file name, a
    server's message)."""
    return _CONTROL.sub(_visible, text)


def escaped_lines(text: str) -> str:
    """`text` with its line feeds kept (they separate the lines oort-sync writes) and
    every other control character escaped, CR included."""
    return _CONTROL_IN_LINE.sub(_visible, text)
