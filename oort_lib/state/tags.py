"""Tags: the labels `--tags` (or a folder's `tags` in the config) adds to each file sent
to a 2026 server, as one comma-separated text field."""

from __future__ import annotations

from oort_lib.errors import ConfigError

MAX_TAGS = 20  # per folder: labels to find files by, not a description
MAX_TAG_LENGTH = 64  # characters of one tag
# Control characters (CR, LF, tab, ESC...), invisible formatting (bidirectional
# overrides, zero-width characters), line and paragraph separators, undecodable bytes.
_TAG_REFUSED = {"Cc", "Cf", "Zl", "Zp", "Cs"}


def parse_tags(raw: str | None) -> tuple[str, ...]:
    """Tags from a comma-separated text (`--tags=a,b` or the config).

    Tags are short one-line labels, sent to the server as one comma-separated text
    field. Commas separate tags, so none can contain one. Raises ConfigError for a tag
    the server would refuse: one starting with `arcsecond` (reserved for Arcsecond's own
    tags); one holding a control or invisible character (a line break would forge a line
    wherever the tag is shown, an ESC drive the terminal, a bidirectional override show
    another text than the one sent); one holding a double quote (tag parsers, such as
    django-taggit's, read a quoted part as one tag even across commas: other tags than
    the ones given would arrive); longer than MAX_TAG_LENGTH; more than MAX_TAGS of them.
    """
    import unicodedata

    tags = tuple(t.strip() for t in (raw or "").split(",") if t.strip())
    for tag in tags:
        if tag.lower().startswith("arcsecond"):
            raise ConfigError(f"tag {tag!r}: tags starting with 'arcsecond' are reserved "
                              "by Arcsecond; choose another name.")
        odd = next((c for c in tag if unicodedata.category(c) in _TAG_REFUSED), None)
        if odd is not None:
            raise ConfigError(f"tag {tag!r} holds a control or invisible character "
                              f"({ascii(odd)}); a tag is a label on one line: remove it.")
        if '"' in tag:
            raise ConfigError(f"tag {tag!r} holds a double quote, which the server's tag "
                              "parsing reads as grouping tags across commas: remove it.")
        if len(tag) > MAX_TAG_LENGTH:
            raise ConfigError(f"tag {tag[:20]!r}... is {len(tag)} characters long; a tag "
                              f"is a short label of at most {MAX_TAG_LENGTH} characters.")
    if len(tags) > MAX_TAGS:
        raise ConfigError(f"{len(tags)} tags given; at most {MAX_TAGS} per folder "
                          "(they label files, they do not describe them).")
    return tags
