"""What a core rebuild read of each record last time, so that the next run redoes only what changed.

Linking and identity resolution each keep, per current record, a fingerprint of the fields their rules read
(``staged._link_input``, ``staged._ident_input``), valid for one version of their rules and of what else they
depend on (the ``*_key`` table beside it). A run compares the records it gathered with them
(``sql/core/link_scope.sql``, ``identity_scope.sql``), works on the records that differ and those the rules tie to
them, and remembers what it read of those. Another key, ``full``, or nothing remembered yet: every record.
"""

from __future__ import annotations

from dataclasses import dataclass

import psycopg
from psycopg import sql

from jx_pipeline.lib.warehouse import run_sql


@dataclass(frozen=True)
class Memory:
    table: str  # staged table of the fingerprints, e.g. "_link_input" (its key: "<table>_key")
    core: str  # the core table it describes, e.g. "core.entity_link"
    keys: tuple[str, ...]  # the record's key in both
    fingerprints: str  # temporary table of this run's fingerprints, the same columns as ``table``
    scope: str  # temporary table the scope file makes: the keys to redo
    scope_sql: str  # e.g. "core/link_scope.sql"

    def scope_rows(self, conn: psycopg.Connection, key: str, full: bool) -> int | None:
        """Run the scope file and return how many records it keeps; None when every record is to be redone."""
        stored = sql.Identifier("staged", self.table)
        known = conn.execute(
            sql.SQL("select key from {}").format(sql.Identifier("staged", self.table + "_key"))
        )
        if full or known.fetchone() != (key,):
            return None
        remembered, present = conn.execute(
            sql.SQL("select (select count(*) from {}), (select count(*) from {})").format(
                stored, sql.SQL(self.core)
            )
        ).fetchone()
        if not remembered or not present:  # a first run (a row out of step with them is redone by the scope)
            return None
        run_sql(conn, self.scope_sql)
        return conn.execute(sql.SQL("select count(*) from {}").format(sql.Identifier(self.scope))).fetchone()[
            0
        ]

    def remember(self, conn: psycopg.Connection, key: str, scope: int | None) -> None:
        """The stored fingerprints := this run's, of every record (scope None) or of the records redone."""
        stored = sql.Identifier("staged", self.table)
        mine = sql.Identifier(self.fingerprints)
        if scope is None:
            conn.execute(sql.SQL("truncate {}").format(stored))
            conn.execute(sql.SQL("delete from {}").format(sql.Identifier("staged", self.table + "_key")))
            conn.execute(
                sql.SQL("insert into {} values (%s)").format(sql.Identifier("staged", self.table + "_key")),
                (key,),
            )
            # every row anew: the secondary indexes are built once after the insert, not row by row
            indexes = conn.execute(
                "select indexrelid::regclass::text, pg_get_indexdef(indexrelid) from pg_index"
                " where indrelid = %s::regclass and not indisprimary",
                (f"staged.{self.table}",),
            ).fetchall()
            for name, _ in indexes:
                conn.execute(sql.SQL("drop index {}").format(sql.SQL(name)))
            conn.execute(sql.SQL("insert into {} select * from {}").format(stored, mine))
            for _, definition in indexes:
                conn.execute(definition)
            return
        keys = sql.SQL(", ").join(map(sql.Identifier, self.keys))
        same = sql.SQL(" and ").join(sql.SQL("a.{0} = b.{0}").format(sql.Identifier(k)) for k in self.keys)
        scope = sql.Identifier(self.scope)
        conn.execute(sql.SQL("delete from {} a using {} b where {}").format(stored, scope, same))
        conn.execute(
            sql.SQL("insert into {} select a.* from {} a join {} b using ({})").format(
                stored, mine, scope, keys
            )
        )
