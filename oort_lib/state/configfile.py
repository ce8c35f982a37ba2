"""Edits of config.ini that respect the user: comments, blank lines, order and keys
oort-sync does not know survive `watch`, `unwatch` and `login`.

Only what changed is touched: a setting whose value changed is set in place, a folder
no longer watched loses its section, a new one gets a section at the end. configupdater
does the round trip; it is imported only by these commands, never by `run`.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path


def update(path: Path, main: str, changes: dict[str, str | None],
           folders: list[tuple[str, dict[str, str | None]]], removed: list[str],
           new_folder: Callable[[int], str]) -> str:
    """The text of `path` edited in place.

    `changes`: settings of section [main] to set (None: remove the line). `folders`:
    (path, {key: value or None}) of each watched folder in order; a path without a
    section gets one named `new_folder(number)`. `removed`: paths whose section goes.
    """
    from configupdater import ConfigUpdater

    updater = ConfigUpdater()
    updater.read(str(path), encoding="utf-8")
    if changes and not updater.has_section(main):
        sections = updater.sections()
        if sections:
            updater[sections[0]].add_before.section(main).space()
        else:
            updater.add_section(main)
    for key, value in changes.items():
        _set(updater[main], key, value)
    by_path = {}
    numbers = [0]
    for name in updater.sections():
        if name.startswith("folder "):
            section = updater[name]
            if "path" in section:
                by_path[section["path"].value.strip()] = name
            tail = name.split(" ", 1)[1]
            numbers.append(int(tail) if tail.isdigit() else 0)
    for gone in removed:
        name = by_path.pop(gone, None)
        if name is not None:
            updater.remove_section(name)
    for folder_path, keys in folders:
        name = by_path.get(folder_path)
        if name is None:
            numbers.append(max(numbers) + 1)
            name = new_folder(numbers[-1])
            _append_section(updater, name)
            updater[name]["path"] = folder_path
        for key, value in keys.items():
            _set(updater[name], key, value)
    return str(updater)


def _set(section, key: str, value: str | None) -> None:
    if value is None:
        if key in section:
            del section[key]
        return
    if key not in section:
        options = section.option_blocks()
        if options:  # after the last setting: not after the blank line and the comment
            options[-1].add_after.option(key, "")  # that introduce the next section
        else:
            section[key] = ""
    if "\n" in value:  # one pattern per line (exclude)
        section[key].set_values(value.split("\n"))
    else:
        section[key].value = value


def _append_section(updater, name: str) -> None:
    """A new section at the end, one blank line after the last one."""
    sections = updater.sections()
    if not sections:
        updater.add_section(name)
        return
    last = updater[sections[-1]]
    text = str(last)
    if not text.endswith("\n\n"):
        last.add_after.space().section(name)
    else:
        last.add_after.section(name)


def write(path: Path, text: str) -> None:
    """Atomically: a crash never leaves half a file."""
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)
