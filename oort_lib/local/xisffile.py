"""The header of a monolithic XISF file: its images' FITS keywords, its XISF properties
and where its attachments lie, read by streaming the XML through expat in chunks (no data
block is read or decoded, and memory stays bounded whatever the header's size).

The result has the shape the xisf package gives (``get_images_metadata`` and
``get_file_metadata``), keeping only the keywords and properties asked for.
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Collection
from typing import IO, Any, NamedTuple
from xml.parsers import expat

__all__ = ["MAX_HEADER", "XisfHeader", "header_length", "keyword_value", "property_value",
           "read_metadata", "scan_header"]  # fmt: skip

SIGNATURE = b"XISF0100"
PREAMBLE = 16
# An XISF header declared larger than this is damaged (real ones are a few KB to a few MB).
MAX_HEADER = 64 * 1024 * 1024
_CHUNK = 1 << 16
# A keyword repeated this often keeps only its first values (the rules read the first).
_MAX_REPEATS = 16
# Text kept of one String property (an object name, a date): a few lines at most.
_MAX_TEXT = 64 * 1024
_DECLARED = re.compile(rb"""^\s*<\?xml[^>]*?encoding\s*=\s*["']([A-Za-z0-9._-]+)["']""")


class XisfHeader(NamedTuple):
    """What an XISF header holds: metadata of each <Image>, of the file (<Metadata>),
    and the (position, size) of every attached data block but thumbnails'."""

    images: list[dict]
    file: dict
    attachments: list[tuple[int, int]]


def header_length(preamble: bytes) -> int:
    """The XML header length that the 16-byte ``preamble`` announces (not checked against
    the file's size or MAX_HEADER: the callers tell a short file from a damaged one).

    Raises ValueError unless it starts like a monolithic XISF file.
    """
    if not preamble:
        raise ValueError("empty file")
    if len(preamble) < PREAMBLE and SIGNATURE.startswith(preamble[:8]):
        raise ValueError("the file ends inside the preamble")
    if not preamble.startswith(SIGNATURE):
        raise ValueError("no XISF0100 signature: not a monolithic XISF file")
    return int.from_bytes(preamble[8:12], "little")


def read_metadata(
    path: str,
    keywords: Collection[str] | None = None,
    properties: Collection[str] | None = None,
) -> tuple[list[dict], dict]:
    """(metadata of each image, metadata of the file) of the XISF file at ``path``,
    keeping only ``keywords`` and ``properties`` (all when None).

    Raises OSError when the file cannot be read, ValueError when it is damaged (a bad
    preamble, a header past the end of the file, XML that is not well formed or not an
    XISF header).
    """
    with open(path, "rb") as f:
        length = header_length(f.read(PREAMBLE))
        f.seek(0, 2)
        if length > f.tell() - PREAMBLE or length > MAX_HEADER:
            raise ValueError(f"header length {length} does not fit in the file")
        f.seek(PREAMBLE)
        header = scan_header(f, length, keywords, properties)
    return header.images, header.file


def scan_header(
    stream: IO[bytes],
    length: int,
    keywords: Collection[str] | None = None,
    properties: Collection[str] | None = None,
) -> XisfHeader:
    """Parse the ``length`` bytes of XML header that ``stream`` is positioned at.

    The header is decoded as UTF-8 when it declares any alias of it ('utf8', 'UTF-8'...):
    expat knows only the spelling 'UTF-8' and refuses a non-ASCII byte under any other
    name, while the xisf package writes 'utf8'. NUL padding after the XML is ignored.
    Raises ValueError for a damaged header (including a header shorter than ``length``).
    """
    reader = _Reader(keywords, properties)
    parser: Any = None
    left = length
    while left > 0:
        chunk = stream.read(min(_CHUNK, left))
        if not chunk:
            raise ValueError("the file ends inside the header")
        left -= len(chunk)
        nul = chunk.find(b"\0")
        if nul >= 0:
            # NULs pad the header up to its declared length (some writers): the XML ends.
            chunk, left = chunk[:nul], 0
        if parser is None:
            parser = reader.parser(_encoding(chunk))
        try:
            parser.Parse(chunk, False)
        except expat.ExpatError as exc:
            raise ValueError(str(exc)) from None
    if parser is None:
        raise ValueError("empty header")
    try:
        parser.Parse(b"", True)
    except expat.ExpatError as exc:
        raise ValueError(str(exc)) from None
    return reader.result()


def _encoding(start: bytes) -> str | None:
    """The encoding to force on expat: UTF-8 for any alias of it (or an unknown name, as
    XISF headers are UTF-8 by definition), None to let expat follow the declaration."""
    declared = _DECLARED.match(start)
    if declared is None:
        return None
    try:
        name = codecs.lookup(declared[1].decode("ascii")).name
    except LookupError:
        return "UTF-8"
    return "UTF-8" if name == "utf-8" else None


class _Reader:
    """expat handlers that keep what a header lookup and the wholeness check need.

    Damage is decided here, explicitly: XML that is not well formed (expat), a root that
    is not <xisf>, no <Metadata> element (XISF 1.0 requires one) or an attachment
    location that is not POS:SIZE raise ValueError. Missing optional attributes are
    tolerated (read as empty), so any other exception out of this class is a bug of
    oort-sync, not a damaged file.
    """

    def __init__(self, keywords: Collection[str] | None,
                 properties: Collection[str] | None) -> None:  # fmt: skip
        self._keywords = None if keywords is None else frozenset(keywords)
        self._properties = None if properties is None else frozenset(properties)
        self._path: list[str] = []
        self._root_ok = False
        self._metadata_seen = False
        self._images: list[dict] = []
        self._file: dict = {}
        self._attachments: list[tuple[int, int]] = []
        self._property: dict | None = None  # a String property whose text is collected
        self._attribute: str = ""  # its value attribute, should it have no text
        self._text: list[str] = []
        self._text_size = 0

    def parser(self, encoding: str | None) -> Any:
        parser = expat.ParserCreate(encoding, namespace_separator=" ")
        parser.buffer_text = True
        parser.StartElementHandler = self._start
        parser.EndElementHandler = self._end
        parser.CharacterDataHandler = self._characters
        return parser

    def result(self) -> XisfHeader:
        if not self._root_ok:
            raise ValueError("the root element is not <xisf>")
        if not self._metadata_seen:
            raise ValueError("no <Metadata> element")
        return XisfHeader(self._images, self._file, self._attachments)

    def _start(self, name: str, attrs: dict[str, str]) -> None:
        # Called for every element (hundreds of thousands in a huge header): kept lean.
        local = name.rpartition(" ")[2]
        path = self._path
        depth = len(path)
        path.append(local)
        if "location" in attrs:
            location = attrs["location"]
            if location.startswith("attachment:") and local != "Thumbnail":
                # A thumbnail is a preview, not the frame: real files lack its block
                # (the PixInsight sample of the wrenby/xisf tests ends before it).
                self._attachments.append(_attachment(location))
        if depth == 2:
            if local == "FITSKeyword":
                if path[1] == "Image":
                    self._keyword(attrs)
            elif local == "Property" and path[1] in ("Image", "Metadata"):
                self._start_property(attrs)
        elif depth == 1:
            if local == "Image":
                self._images.append({**attrs, "FITSKeywords": {}, "XISFProperties": {}})
            elif local == "Metadata":
                self._metadata_seen = True
        elif depth == 0:
            self._root_ok = local == "xisf"

    def _keyword(self, attrs: dict[str, str]) -> None:
        name = attrs.get("name", "")
        if self._keywords is not None and name not in self._keywords:
            return
        values = self._images[-1]["FITSKeywords"].setdefault(name, [])
        if len(values) < _MAX_REPEATS:
            # As the xisf package gives it: FITS quotes and blanks stripped.
            value = attrs.get("value", "").strip("'").strip(" ")
            values.append({"value": value, "comment": attrs.get("comment", "")})

    def _start_property(self, attrs: dict[str, str]) -> None:
        ident = attrs.get("id")
        if ident is None or (self._properties is not None and ident not in self._properties):
            return
        prop = dict(attrs)
        if self._path[1] == "Image":
            self._images[-1]["XISFProperties"][ident] = prop
        else:
            self._file[ident] = prop
        if prop.get("type") == "String" and "location" not in prop:
            # A String's value is the element's text (some writers put it in a value
            # attribute instead: kept when there is no text); TimePoint and numbers keep
            # their value attribute as text; other types are not needed.
            self._attribute = prop.get("value") or ""
            prop["value"] = ""
            self._property, self._text, self._text_size = prop, [], 0

    def _end(self, name: str) -> None:
        self._path.pop()
        if self._property is not None and len(self._path) == 2:
            text = "".join(self._text)
            self._property["value"] = text if text.strip() else self._attribute or text
            self._property = None

    def _characters(self, data: str) -> None:
        if self._property is not None and self._text_size < _MAX_TEXT:
            self._text.append(data[: _MAX_TEXT - self._text_size])
            self._text_size += len(data)


def _attachment(location: str) -> tuple[int, int]:
    """(position, size) of ``attachment:POS:SIZE``; raises ValueError otherwise."""
    parts = location.split(":")
    if len(parts) != 3 or not (parts[1].strip().isdigit() and parts[2].strip().isdigit()):
        raise ValueError(f"attachment location {location[:40]!r} is not POS:SIZE")
    return int(parts[1]), int(parts[2])


def keyword_value(entries: Any) -> Any:
    """The first value of a FITSKeywords list (raw), or None."""
    if isinstance(entries, list) and entries and isinstance(entries[0], dict):
        return entries[0].get("value")
    return None


def property_value(properties: Any, name: str) -> Any:
    """The value of the XISF property ``name`` (raw), or None."""
    if isinstance(properties, dict):
        prop = properties.get(name)
        if isinstance(prop, dict):
            return prop.get("value")
        if isinstance(prop, str):
            return prop
    return None
