"""The sandbox's SQLite tables, the fields each kind answers, how its rows are read back,
and upgrades of old data dirs.

A data dir may have been created by an older sandbox (the CLI's ``--data`` folder is kept
across runs), so columns added since are added in place rather than by a fresh schema.
"""

from __future__ import annotations

import json
import sqlite3

KINDS = ("nightlogs", "observations", "calibrations", "datasets")

# The stored columns each kind fills from a creation (besides uuid and the bookkeeping).
COLUMNS: dict[str, tuple[str, ...]] = {
    "nightlogs": ("date", "telescope"),
    "observations": ("name", "target_name", "night_log"),
    "calibrations": ("name", "night_log"),
    "datasets": ("name", "observation", "calibration", "telescope"),
}
# The fields each kind answers in the API, in this order (the 2026 generation drops the
# 2021 links of a dataset, see objects.public).
API_FIELDS: dict[str, tuple[str, ...]] = {
    "nightlogs": ("uuid", "date", "telescope"),
    "observations": ("uuid", "name", "target_name", "night_log"),
    "calibrations": ("uuid", "name", "night_log"),
    "datasets": ("uuid", "name", "observation", "calibration", "telescope",
                 "data_files_count"),
}
# The exact filters each kind accepts on its list route.
FILTERS: dict[str, tuple[str, ...]] = {
    "nightlogs": ("date", "telescope"),
    "observations": ("night_log", "name", "target_name"),
    "calibrations": ("night_log", "name"),
    "datasets": ("name", "observation", "calibration", "telescope"),
}

SCHEMA = """
CREATE TABLE IF NOT EXISTS users (
    id INTEGER PRIMARY KEY, username TEXT UNIQUE NOT NULL, email TEXT NOT NULL,
    password TEXT NOT NULL, upload_key TEXT NOT NULL, api_key TEXT NOT NULL,
    joined TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS organisations (
    id INTEGER PRIMARY KEY, subdomain TEXT UNIQUE NOT NULL, name TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS memberships (
    id INTEGER PRIMARY KEY, username TEXT NOT NULL, subdomain TEXT NOT NULL,
    role TEXT NOT NULL, joined TEXT NOT NULL, UNIQUE (username, subdomain));
CREATE TABLE IF NOT EXISTS telescopes (
    uuid TEXT PRIMARY KEY, name TEXT NOT NULL, alias TEXT NOT NULL, org TEXT, owner TEXT,
    coordinates TEXT, observing_site TEXT);
CREATE TABLE IF NOT EXISTS tokens (
    token TEXT PRIMARY KEY, username TEXT NOT NULL, created TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS nightlogs (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, uuid TEXT UNIQUE NOT NULL, org TEXT,
    owner TEXT NOT NULL, created TEXT NOT NULL, date TEXT NOT NULL, telescope TEXT);
CREATE TABLE IF NOT EXISTS observations (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, uuid TEXT UNIQUE NOT NULL, org TEXT,
    owner TEXT NOT NULL, created TEXT NOT NULL, name TEXT NOT NULL,
    target_name TEXT NOT NULL, night_log TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS calibrations (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, uuid TEXT UNIQUE NOT NULL, org TEXT,
    owner TEXT NOT NULL, created TEXT NOT NULL, name TEXT NOT NULL,
    night_log TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS datasets (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, uuid TEXT UNIQUE NOT NULL, org TEXT,
    owner TEXT NOT NULL, created TEXT NOT NULL, name TEXT NOT NULL,
    observation TEXT, calibration TEXT, telescope TEXT);
CREATE TABLE IF NOT EXISTS datafiles (
    pk INTEGER PRIMARY KEY AUTOINCREMENT, dataset TEXT NOT NULL, filename TEXT NOT NULL,
    org TEXT, owner TEXT NOT NULL, created TEXT NOT NULL, modified TEXT NOT NULL,
    size INTEGER NOT NULL, sha256 TEXT NOT NULL, is_raw INTEGER NOT NULL DEFAULT 1,
    tags TEXT NOT NULL DEFAULT '[]', UNIQUE (dataset, filename));
CREATE INDEX IF NOT EXISTS nightlogs_date ON nightlogs (date);
CREATE INDEX IF NOT EXISTS observations_night_log ON observations (night_log);
CREATE INDEX IF NOT EXISTS calibrations_night_log ON calibrations (night_log);
CREATE INDEX IF NOT EXISTS datasets_name ON datasets (name);
"""

# Columns added after the first released schema: (table, column, declaration).
_ADDED = (
    ("datasets", "telescope", "TEXT"),
    ("datafiles", "is_raw", "INTEGER NOT NULL DEFAULT 1"),
    ("datafiles", "tags", "TEXT NOT NULL DEFAULT '[]'"),
    ("telescopes", "time_zone", "TEXT"),
)


def create(db: sqlite3.Connection) -> None:
    """Create the tables, then add the columns an older data dir lacks."""
    db.executescript(SCHEMA)
    for table, column, declaration in _ADDED:
        present = {row[1] for row in db.execute(f"PRAGMA table_info({table})")}
        if column not in present:
            db.execute(f"ALTER TABLE {table} ADD COLUMN {column} {declaration}")


def select(kind: str) -> str:
    """The SELECT of the rows of ``kind``, a dataset's with its count of datafiles."""
    if kind == "datasets":
        return ("SELECT *, (SELECT count(*) FROM datafiles WHERE datafiles.dataset ="
                " datasets.uuid) AS data_files_count FROM datasets")
    return f"SELECT * FROM {kind}"


def telescope_fields(row: sqlite3.Row) -> dict:
    """A telescope row as the API answers it (its coordinates decoded)."""
    return {
        "uuid": row["uuid"], "name": row["name"], "alias": row["alias"],
        "coordinates": json.loads(row["coordinates"]) if row["coordinates"] else None,
        "observing_site": row["observing_site"],
        "time_zone": row["time_zone"],
    }
