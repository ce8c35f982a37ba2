"""The header of an XISF file: its images' FITS keywords and XISF properties, read with the
xisf package made lazy (no data block is read or decoded).
"""

from __future__ import annotations

import os
from typing import Any

__all__ = ["keyword_value", "property_value", "read_metadata"]

# An XISF header declared larger than this is damaged (real ones are a few KB to a few MB).
_MAX_XISF_HEADER = 64 * 1024 * 1024

_xisf_reader: Any = None


def _xisf_class() -> Any:
    """An XISF reader that decodes only what a header lookup needs.

    The xisf package eagerly decodes every property (reading the data blocks of vectors
    and matrices), prints a line for property types it does not know, and raises on pixel
    formats it cannot read (Int16, complex...). None of that matters for finding a date,
    so those steps are made lazy and tolerant here.
    """
    global _xisf_reader
    if _xisf_reader is not None:
        return _xisf_reader
    from xisf import XISF

    class HeaderOnlyXISF(XISF):  # type: ignore[misc, valid-type]
        def _process_property(self, p_et: Any) -> dict:
            attrib = dict(p_et.attrib)
            if attrib.get("type") == "String" and "location" not in attrib:
                attrib["value"] = p_et.text or ""
            # TimePoint keeps its value attribute as text; other types are not needed.
            return attrib

        @staticmethod
        def _parse_sampleFormat(s: str) -> Any:
            return s

        @staticmethod
        def _parse_location(location: str) -> Any:
            return location

        @staticmethod
        def _parse_geometry(geometry: str) -> Any:
            return geometry

    _xisf_reader = HeaderOnlyXISF
    return _xisf_reader


def _check_xisf_preamble(path: str) -> None:
    """Raise ValueError unless ``path`` starts like a monolithic XISF file.

    The xisf package reads as many bytes as the header length field says; a damaged
    length would make it read a whole multi-GB file into memory.
    """
    with open(path, "rb") as f:
        preamble = f.read(16)
        size = os.fstat(f.fileno()).st_size
    if not preamble:
        raise ValueError("empty file")
    if len(preamble) < 16 and b"XISF0100".startswith(preamble[:8]):
        raise ValueError("the file ends inside the preamble")
    if not preamble.startswith(b"XISF0100"):
        raise ValueError("no XISF0100 signature: not a monolithic XISF file")
    length = int.from_bytes(preamble[8:12], "little")
    if length > size - 16 or length > _MAX_XISF_HEADER:
        raise ValueError(f"header length {length} does not fit in the file")


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


def read_metadata(path: str) -> tuple[list[dict], dict]:
    """(metadata of each image, metadata of the file) of the XISF file at ``path``.

    Raises OSError when the file cannot be read, and ValueError (or whatever the xisf
    package lets escape on bad XML: ParseError, KeyError, TypeError) when it is damaged.
    """
    _check_xisf_preamble(path)
    reader = _xisf_class()(path)
    return reader.get_images_metadata() or [], reader.get_file_metadata() or {}
