"""The values of a FITS header's cards, read as astropy's ``Header`` reads them, without
importing astropy (about half a second on every run that has a new file to read).

Only the forms that leave no doubt are read here: a card with its value indicator in
column 9 and a plain string, number, logical or empty value. Anything astropy reads by
its own conventions (HIERARCH, CONTINUE, record-valued cards, a displaced ``=``, a
quote inside a string, odd spacing in a number, complex values) is ``Unsure``, and the
caller asks astropy for that header. tests/test_fitscards.py holds the two to one another.
"""

from __future__ import annotations

import re
from typing import Any

CARD = 80
_END_CARD = b"END" + b" " * 77
# Keywords astropy reads as commentary or as part of another card: they never answer a
# value lookup.
_SPECIAL = frozenset((b"", b"COMMENT", b"HISTORY", b"END", b"CONTINUE"))

# The value field (columns 11-80) when it is one of the plain forms, then optional
# blanks and a comment.
_STRING = re.compile(rb" *'([^']*)' *(?:/.*)?", re.DOTALL)
_LOGICAL = re.compile(rb" *([FT]) *(?:/.*)?", re.DOTALL)
_NUMBER = re.compile(rb" *([+-]?(?:\.\d+|\d+(?:\.\d*)?)(?:[eEdD][+-]?\d+)?) *(?:/.*)?",
                     re.DOTALL)
_EMPTY = re.compile(rb" *(?:/.*)?", re.DOTALL)
_EXPONENT = bytes.maketrans(b"dD", b"eE")


class Unsure(Exception):
    """The card is in a form only astropy's own parser reads faithfully."""


class _Doubt:
    """A card whose keyword or value astropy reads by a convention (see module doc)."""


DOUBT = _Doubt()


class Cards:
    """The cards of one header (printable ASCII, 80 columns each), indexed by keyword."""

    def __init__(self, raw: bytes):
        self._first: dict[bytes, int | _Doubt] = {}
        stop = len(raw) - len(raw) % CARD
        for at in range(0, stop, CARD):
            card = raw[at : at + CARD]
            if card == _END_CARD:
                break
            keyword, sure = _keyword(card)
            if keyword is None:
                continue
            if sure and raw[at + CARD : at + CARD + 8] == b"CONTINUE":
                sure = False  # astropy joins the CONTINUE cards to this one
            if not sure:
                self._first[keyword] = DOUBT
            else:
                self._first.setdefault(keyword, at)
        self._raw = raw

    def value(self, keyword: str) -> Any:
        """The value astropy's ``Header.get(keyword)`` gives (str, int, float, bool or
        None), for a keyword of at most 8 characters.

        Raises Unsure when a card for ``keyword`` is in a form left to astropy.
        """
        at = self._first.get(keyword.upper().encode("ascii"))
        if at is None:
            return None
        if isinstance(at, _Doubt):
            raise Unsure(keyword)
        return _value(self._raw[at + 10 : at + CARD])


def _keyword(card: bytes) -> tuple[bytes | None, bool]:
    """(the keyword astropy files ``card`` under, whether this module reads it as
    astropy does); None for a commentary card."""
    field = card[:8].strip().upper()
    if field in _SPECIAL:
        return None, True
    if field == b"HIERARCH" and card[8:9] == b" " and b"=" in card:
        name = card.split(b"=", 1)[0][9:].strip().upper()
        while name.startswith(b"HIERARCH "):  # astropy drops the prefix when looking up
            name = name[9:].strip()
        return name, False
    indicator = card.find(b"= ")
    if indicator != 8:
        if 0 <= indicator < 8:
            field = field[:indicator].strip()  # 'JD = 1' is filed under JD
        return field, False
    rest = card[10:].lstrip()
    if rest[:1] == b"'" and rest.find(b": ") >= 2:
        return field, False  # perhaps a record-valued card ('AXIS.1: 2')
    return field, True


def _value(field: bytes) -> Any:
    """A value field read the way astropy does, for the plain forms only.

    Raises Unsure for any other form.
    """
    match = _STRING.fullmatch(field)
    if match:
        return match[1].decode("ascii").rstrip()
    match = _NUMBER.fullmatch(field)
    if match:
        text = match[1].translate(_EXPONENT).decode("ascii")
        try:
            return int(text)
        except ValueError:
            return float(text)
    match = _LOGICAL.fullmatch(field)
    if match:
        return match[1] == b"T"
    if _EMPTY.fullmatch(field):
        return None
    raise Unsure(field)
