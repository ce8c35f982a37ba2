"""What the sandbox remembers: metadata in SQLite, uploaded files on disk.

One SQLite connection serves every request thread, guarded by a lock: the sandbox's
queries are tiny, and a single writer keeps "check then insert" sequences atomic (two
uploads of the same filename at the same moment must give one 201 and one 400).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
import sqlite3
import threading
import uuid as uuidlib
from datetime import datetime, timezone
from pathlib import Path
from typing import Optional

from oort_lib.sandbox import schema
from oort_lib.sandbox.schema import API_FIELDS, COLUMNS, FILTERS, KINDS
from oort_lib.sandbox.seed import Seed

__all__ = ["API_FIELDS", "KINDS", "Space", "Store", "now"]

# A space is where an object lives: (organisation subdomain, username). For an
# organisation every member shares the space, so only the subdomain counts; for a
# personal space (subdomain None) the username does.
Space = tuple[Optional[str], str]


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="microseconds").replace("+00:00", "Z")


def _hash_password(password: str, salt: str) -> str:
    return hashlib.sha256(f"{salt}:{password}".encode()).hexdigest()


class Store:
    def __init__(self, data_dir: str | Path, seed: Seed):
        self.data_dir = Path(data_dir)
        self.files_dir = self.data_dir / "files"
        self.tmp_dir = self.data_dir / "tmp"
        self.files_dir.mkdir(parents=True, exist_ok=True)
        self.tmp_dir.mkdir(parents=True, exist_ok=True)
        self._clean_tmp()
        self._lock = threading.RLock()
        self._db = sqlite3.connect(
            self.data_dir / "sandbox.sqlite", check_same_thread=False, isolation_level=None
        )
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        schema.create(self._db)
        self._seed(seed)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def _clean_tmp(self) -> None:
        # Half-received uploads of a previous run that was killed.
        for entry in self.tmp_dir.iterdir():
            try:
                entry.unlink()
            except OSError:
                pass

    def _q(self, sql: str, args: tuple | list = ()) -> list[sqlite3.Row]:
        with self._lock:
            return self._db.execute(sql, args).fetchall()

    def _seed(self, seed: Seed) -> None:
        # Upserts, so a data_dir reused across restarts keeps its objects and the seeded
        # accounts always match the code's Seed.
        joined = "2020-09-01T10:00:00Z"
        with self._lock:
            self._db.execute("BEGIN")
            for user in seed.users():
                self._db.execute(
                    "INSERT INTO users (username, email, password, upload_key, api_key, joined)"
                    " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (username) DO UPDATE SET"
                    " email=excluded.email, password=excluded.password,"
                    " upload_key=excluded.upload_key, api_key=excluded.api_key",
                    (user["username"], user["email"],
                     _hash_password(seed.password, user["username"]),
                     user["upload_key"], user["api_key"], joined),
                )
            for subdomain, name in seed.organisations():
                self._db.execute(
                    "INSERT INTO organisations (subdomain, name) VALUES (?, ?)"
                    " ON CONFLICT (subdomain) DO UPDATE SET name=excluded.name",
                    (subdomain, name),
                )
            for username, subdomain, role in seed.memberships():
                self._db.execute(
                    "INSERT INTO memberships (username, subdomain, role, joined)"
                    " VALUES (?, ?, ?, ?) ON CONFLICT (username, subdomain)"
                    " DO UPDATE SET role=excluded.role",
                    (username, subdomain, role, joined[:10]),
                )
            for t in seed.telescopes():
                self._db.execute(
                    "INSERT OR REPLACE INTO telescopes"
                    " (uuid, name, alias, org, owner, coordinates, observing_site, time_zone)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (t["uuid"], t["name"], t["alias"], t["org"], t["owner"],
                     json.dumps(t["coordinates"]), t["observing_site"], t["time_zone"]),
                )
            self._db.execute("COMMIT")

    # --- identities -----------------------------------------------------------------------

    def user_by_key(self, key: str) -> sqlite3.Row | None:
        rows = self._q("SELECT * FROM users WHERE upload_key = ? OR api_key = ?", (key, key))
        return rows[0] if rows else None

    def user_by_login(self, login: str) -> sqlite3.Row | None:
        """By username, or by e-mail address (case-insensitive) as the real login allows."""
        rows = self._q("SELECT * FROM users WHERE username = ?", (login,))
        if not rows and "@" in login:
            rows = self._q("SELECT * FROM users WHERE lower(email) = lower(?)", (login,))
        return rows[0] if rows else None

    def check_password(self, user: sqlite3.Row, password: str) -> bool:
        expected = _hash_password(password, user["username"])
        return hmac.compare_digest(expected, user["password"])

    def new_token(self, username: str) -> str:
        token = secrets.token_hex(20)
        self._q("INSERT INTO tokens (token, username, created) VALUES (?, ?, ?)",
                (token, username, now()))
        return token

    def user_by_token(self, token: str) -> sqlite3.Row | None:
        rows = self._q(
            "SELECT users.* FROM tokens JOIN users USING (username) WHERE token = ?", (token,)
        )
        return rows[0] if rows else None

    def profile(self, user: sqlite3.Row) -> dict:
        rows = self._q(
            "SELECT m.id, m.joined, m.role, o.id AS org_pk, o.name, o.subdomain"
            " FROM memberships m JOIN organisations o USING (subdomain)"
            " WHERE m.username = ? ORDER BY m.id",
            (user["username"],),
        )
        return {
            "pk": user["id"], "username": user["username"], "first_name": "",
            "last_name": "", "email": user["email"], "membership_date": user["joined"],
            "memberships": [
                {"pk": r["id"], "date_joined": r["joined"], "role": r["role"],
                 "organisation": {"pk": r["org_pk"], "name": r["name"],
                                  "subdomain": r["subdomain"]}}
                for r in rows
            ],
        }

    def organisation(self, subdomain: str) -> dict | None:
        rows = self._q("SELECT * FROM organisations WHERE subdomain = ?", (subdomain,))
        if not rows:
            return None
        return {"pk": rows[0]["id"], "subdomain": rows[0]["subdomain"], "name": rows[0]["name"]}

    def organisations(self) -> list[str]:
        return [r["subdomain"] for r in self._q("SELECT subdomain FROM organisations ORDER BY id")]

    def role(self, username: str, subdomain: str) -> str | None:
        rows = self._q(
            "SELECT role FROM memberships WHERE username = ? AND subdomain = ?",
            (username, subdomain),
        )
        return rows[0]["role"] if rows else None

    # --- telescopes -----------------------------------------------------------------------

    def telescopes(self, space: Space) -> list[dict]:
        org, owner = space
        if org is None:
            rows = self._q("SELECT * FROM telescopes WHERE org IS NULL AND owner = ?"
                           " ORDER BY uuid", (owner,))
        else:
            rows = self._q("SELECT * FROM telescopes WHERE org = ? ORDER BY uuid", (org,))
        return [schema.telescope_fields(r) for r in rows]

    def telescope(self, space: Space, ident: str) -> dict | None:
        """By uuid first, then by (non-empty) alias."""
        found = [t for t in self.telescopes(space) if t["uuid"] == ident]
        found = found or [t for t in self.telescopes(space) if ident and t["alias"] == ident]
        return found[0] if found else None

    # --- night logs, observations, calibrations, datasets ---------------------------------

    def create(self, kind: str, space: Space, values: dict[str, object]) -> dict:
        org, owner = space
        row = {"uuid": str(uuidlib.uuid4()), "org": org, "owner": owner, "created": now()}
        row.update({k: values.get(k) for k in COLUMNS[kind]})
        columns = ", ".join(row)
        marks = ", ".join("?" * len(row))
        self._q(f"INSERT INTO {kind} ({columns}) VALUES ({marks})", list(row.values()))
        return self.get(kind, space, row["uuid"]) or row

    def _where_space(self, space: Space) -> tuple[str, list]:
        org, owner = space
        if org is None:
            return "org IS NULL AND owner = ?", [owner]
        return "org = ?", [org]

    def get(self, kind: str, space: Space, uuid: str) -> dict | None:
        where, args = self._where_space(space)
        rows = self._q(f"{schema.select(kind)} WHERE uuid = ? AND {where}", [uuid, *args])
        return dict(rows[0]) if rows else None

    def first_or_create(self, kind: str, space: Space, match: dict[str, object],
                        extra: dict[str, object] | None = None) -> dict:
        """The oldest object of ``kind`` whose columns equal ``match``, else a new one
        with ``match`` and ``extra``.

        Atomic (under the store's lock), so two uploads organised at the same moment
        share one night log rather than creating two.
        """
        where, args = self._where_space(space)
        for name, value in match.items():
            where += f" AND {name} IS ?"
            args.append(value)
        with self._lock:
            rows = self._q(f"SELECT uuid FROM {kind} WHERE {where} ORDER BY seq LIMIT 1", args)
            if rows:
                return self.get(kind, space, rows[0]["uuid"]) or {}
            return self.create(kind, space, {**match, **(extra or {})})

    @property
    def lock(self) -> threading.RLock:
        """Held for a read-then-write that must not interleave with another upload's."""
        return self._lock

    def link_dataset(self, uuid: str, column: str, parent: str, *,
                     replace: bool = False) -> bool:
        """Attach a dataset that has no observation or calibration yet (or, with
        ``replace``, move it from the one it has); False if nothing was changed.

        Raises ValueError for a column other than observation or calibration.
        """
        if column not in ("observation", "calibration"):
            raise ValueError(column)
        other = "calibration" if column == "observation" else "observation"
        with self._lock:
            if replace:
                cursor = self._db.execute(
                    f"UPDATE datasets SET {column} = ?, {other} = NULL WHERE uuid = ?",
                    (parent, uuid))
            else:
                cursor = self._db.execute(
                    f"UPDATE datasets SET {column} = ? WHERE uuid = ?"
                    " AND observation IS NULL AND calibration IS NULL", (parent, uuid))
            return cursor.rowcount == 1

    def night_of(self, column: str, space: Space, parent: str) -> str | None:
        """The date of the night log of an observation or calibration (``column``)."""
        found = self.get(column + "s", space, parent)
        log = self.get("nightlogs", space, found["night_log"]) if found else None
        return log["date"] if log else None

    def drop_unused(self, space: Space, parent: str) -> None:
        """Delete an observation or calibration no dataset is in any more, and then its
        night log if nothing else is in it (a dataset moved to an earlier night)."""
        where, args = self._where_space(space)
        with self._lock:
            for kind, column in (("observations", "observation"),
                                 ("calibrations", "calibration")):
                found = self.get(kind, space, parent)
                if found is None or self._q(
                        f"SELECT 1 FROM datasets WHERE {column} = ? LIMIT 1", (parent,)):
                    continue
                self._q(f"DELETE FROM {kind} WHERE uuid = ? AND {where}", [parent, *args])
                night_log = found["night_log"]
                if not any(self._q(f"SELECT 1 FROM {other} WHERE night_log = ? LIMIT 1",
                                   (night_log,))
                           for other in ("observations", "calibrations")):
                    self._q(f"DELETE FROM nightlogs WHERE uuid = ? AND {where}",
                            [night_log, *args])

    def find(
        self, kind: str, space: Space, filters: dict[str, str], offset: int, limit: int
    ) -> tuple[int, list[dict]]:
        where, args = self._where_space(space)
        for name, value in filters.items():
            if name in FILTERS[kind]:
                where += f" AND {name} = ?"
                args.append(value)
        with self._lock:
            count = self._db.execute(f"SELECT count(*) FROM {kind} WHERE {where}",
                                     args).fetchone()[0]
            rows = self._db.execute(
                f"{schema.select(kind)} WHERE {where} ORDER BY seq LIMIT ? OFFSET ?",
                [*args, limit, offset],
            ).fetchall()
        return count, [dict(r) for r in rows]

    # --- datafiles ------------------------------------------------------------------------

    def file_path(self, dataset: str, filename: str) -> Path:
        return self.files_dir / dataset / filename

    def datafile(self, dataset: str, filename: str) -> dict | None:
        rows = self._q("SELECT * FROM datafiles WHERE dataset = ? AND filename = ?",
                       (dataset, filename))
        return dict(rows[0]) if rows else None

    def datafiles(self, dataset: str, offset: int, limit: int) -> tuple[int, list[dict]]:
        with self._lock:
            count = self._db.execute("SELECT count(*) FROM datafiles WHERE dataset = ?",
                                     (dataset,)).fetchone()[0]
            rows = self._db.execute(
                "SELECT * FROM datafiles WHERE dataset = ? ORDER BY pk LIMIT ? OFFSET ?",
                (dataset, limit, offset),
            ).fetchall()
        return count, [dict(r) for r in rows]

    def datafiles_in(self, space: Space, dataset: str | None, offset: int, limit: int
                     ) -> tuple[int, list[dict]]:
        """The datafiles of a space (of one of its datasets if ``dataset``), oldest first."""
        where, args = self._where_space(space)
        if dataset is not None:
            where += " AND dataset = ?"
            args.append(dataset)
        with self._lock:
            count = self._db.execute(f"SELECT count(*) FROM datafiles WHERE {where}",
                                     args).fetchone()[0]
            rows = self._db.execute(
                f"SELECT * FROM datafiles WHERE {where} ORDER BY pk LIMIT ? OFFSET ?",
                [*args, limit, offset],
            ).fetchall()
        return count, [dict(r) for r in rows]

    def add_datafile(
        self, dataset: dict, filename: str, received: Path, size: int, sha256: str,
        is_raw: bool = True, tags: tuple[str, ...] = (),
    ) -> dict | None:
        """Move the received file in place and record it; None if the name is taken."""
        with self._lock:
            if self.datafile(dataset["uuid"], filename) is not None:
                return None
            target = self.file_path(dataset["uuid"], filename)
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(received, target)
            stamp = now()
            self._q(
                "INSERT INTO datafiles (dataset, filename, org, owner, created, modified,"
                " size, sha256, is_raw, tags) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (dataset["uuid"], filename, dataset["org"], dataset["owner"], stamp, stamp,
                 size, sha256, int(is_raw), json.dumps(list(tags))),
            )
            return self.datafile(dataset["uuid"], filename)

    def replace_datafile(
        self, dataset: str, filename: str, received: Path, size: int, sha256: str
    ) -> dict | None:
        """Swap in new content for an existing datafile; None if there is none."""
        with self._lock:
            if self.datafile(dataset, filename) is None:
                return None
            target = self.file_path(dataset, filename)
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(received, target)
            self._q(
                "UPDATE datafiles SET size = ?, sha256 = ?, modified = ?"
                " WHERE dataset = ? AND filename = ?",
                (size, sha256, now(), dataset, filename),
            )
            return self.datafile(dataset, filename)

    # --- for tests and the page -----------------------------------------------------------

    def objects(self, kind: str) -> list[dict]:
        """Every object of a kind, all spaces, in creation order (internal columns)."""
        if kind == "datafiles":
            return [dict(r) for r in self._q("SELECT * FROM datafiles ORDER BY pk")]
        if kind == "telescopes":
            return [schema.telescope_fields(r) | {"organisation": r["org"], "owner": r["owner"]}
                    for r in self._q("SELECT * FROM telescopes ORDER BY uuid")]
        if kind not in KINDS:
            raise ValueError(f"unknown kind {kind!r}")
        return [dict(r) for r in self._q(f"{schema.select(kind)} ORDER BY seq")]

