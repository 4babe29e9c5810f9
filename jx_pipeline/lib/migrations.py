"""Versioned warehouse migrations: ``sql/migrations/NNNN_name.sql`` applied once each, in order.

An applied migration is never edited (its checksum is recorded and compared); a change to the warehouse is a
new, later file, so an existing warehouse is upgraded in place without losing data.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

import psycopg

from jx_pipeline.lib import settings
from jx_pipeline.lib.errors import JxError

_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
_LOCK_KEY = 0x4A58_4D49  # "JXMI": one migrator at a time across processes


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    path: Path

    @property
    def sql(self) -> str:
        return self.path.read_text(encoding="utf-8")

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.path.read_bytes()).hexdigest()


def discover(folder: Path | None = None) -> list[Migration]:
    folder = folder or settings.SQL_DIR / "migrations"
    found = []
    for path in sorted(folder.glob("*.sql")):
        m = _NAME.match(path.name)
        if not m:
            raise JxError(f"migration file {path} is not named NNNN_snake_name.sql", fix=f"rename {path}")
        found.append(Migration(int(m[1]), m[2], path))
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise JxError(f"two migrations in {folder} share a version number", fix="renumber the newer one")
    return found


def applied(conn: psycopg.Connection) -> dict[int, str]:
    """Version -> checksum of every migration recorded in the warehouse."""
    exists = conn.execute("select to_regclass('jx_meta.schema_migration') is not null").fetchone()[0]
    if not exists:
        return {}
    return dict(conn.execute("select version, checksum from jx_meta.schema_migration").fetchall())


def migrate(conn: psycopg.Connection, target: int | None = None, folder: Path | None = None) -> list[int]:
    """Apply pending migrations up to ``target`` (all when None) in one transaction; return versions applied."""
    migrations = discover(folder)
    with conn.transaction():
        conn.execute("select pg_advisory_xact_lock(%s)", (_LOCK_KEY,))
        conn.execute("create schema if not exists jx_meta")
        conn.execute(
            "create table if not exists jx_meta.schema_migration (version int primary key, name text not null,"
            " checksum text not null, applied_at timestamptz not null default now())"
        )
        done = applied(conn)
        for m in migrations:
            if m.version in done and done[m.version] != m.checksum:
                raise JxError(
                    f"migration {m.path.name} was changed after it was applied to this warehouse",
                    fix=f"restore {m.path.name} (git checkout -- {m.path}) and put the change in a new migration",
                )
        newer = sorted(set(done) - {m.version for m in migrations})
        if newer:
            raise JxError(
                f"the warehouse has migrations {newer} that this checkout does not know",
                fix="update this checkout (git pull) before running it against this warehouse",
            )
        ran = []
        for m in migrations:
            if m.version in done or (target is not None and m.version > target):
                continue
            try:
                with conn.transaction():
                    conn.execute(m.sql)
            except psycopg.Error as exc:
                raise JxError(
                    f"migration {m.path.name} failed: {str(exc).strip().splitlines()[0]}",
                    fix=f"fix {m.path} (it has not been applied), then jx-pipeline db migrate",
                ) from None
            conn.execute(
                "insert into jx_meta.schema_migration (version, name, checksum) values (%s, %s, %s)",
                (m.version, m.name, m.checksum),
            )
            ran.append(m.version)
    return ran
