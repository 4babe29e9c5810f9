"""What a core rebuild read of each record last time, so that the next run redoes only what changed.

Linking and identity resolution each keep, per current record, a fingerprint of the fields their rules read
(``staged._link_input``, ``staged._ident_input``), valid for one version of their rules and of what else they
depend on (the ``*_key`` table beside it). A run compares the records it gathered with them
(``sql/core/link_scope.sql``, ``identity_scope.sql``), works on the records that differ and those the rules tie to
them, and remembers what it read of those. Another key, ``full``, or nothing remembered yet: every record.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from dataclasses import dataclass

import psycopg
from psycopg import sql

from jx_pipeline.lib import rebuild, tallies
from jx_pipeline.lib.pg import by_key, key_tally
from jx_pipeline.lib.warehouse import run_sql


@dataclass(frozen=True)
class Memory:
    table: str  # staged table of the fingerprints, e.g. "_link_input" (its key: "<table>_key")
    core: str  # the core table it describes, e.g. "core.entity_link"
    keys: tuple[str, ...]  # the record's key in both
    fingerprints: str  # working table of this run's fingerprints, the same columns as ``table``
    scope: str  # working table the scope file makes: the keys to redo
    scope_sql: str  # e.g. "core/link_scope.sql"
    changed: str  # working table the scope file makes: the keys of the scope whose fingerprints differ
    partitions: bool = False  # the table remembers each record's partition (lib/changes.py reads it)

    def known(self, conn: psycopg.Connection, key: str) -> bool:
        """Something is remembered, for this key, of exactly the records the core table has rows for (by count
        and a hash of the keys, not by joining them: kept by triggers, lib/tallies.py): a run can redo only what
        changed. A row lost from the core table, or written there astray, makes the run compare every record,
        which repairs it. Out of step, both tables are counted whole: a tally that drifted (a write with triggers
        off) is dropped, to be counted again by the next run's ``ensure``."""
        known = conn.execute(
            sql.SQL("select key from {}").format(sql.Identifier("staged", self.table + "_key"))
        )
        if known.fetchone() != (key,):
            return False
        tables = {f"staged.{self.table}": self.keys, self.core: self.keys}
        kept = [tallies.tally(conn, t, k) for t, k in tables.items()]
        if kept[0][0] > 0 and kept[0] == kept[1]:
            return True
        counted = [key_tally(conn, sql.SQL(t), k) for t, k in tables.items()]
        for table, was, now in zip(tables, kept, counted, strict=True):
            if was != now:
                tallies.forget(conn, table)
        return counted[0][0] > 0 and counted[0] == counted[1]

    def ensure(self, conn: psycopg.Connection) -> None:
        """The tallies of the memory and its core table counted if missing (``tallies.ensure``: before the run's
        snapshot and locks)."""
        tallies.ensure(conn, {f"staged.{self.table}": self.keys, self.core: self.keys})

    def by_key(self, conn: psycopg.Connection, keys: str) -> AbstractContextManager:
        """For the statements of the block, joins by index only when the working table ``keys`` holds few
        records of the memory's (``pg.few``): a day's changed partitions against every record remembered."""
        n = conn.execute(sql.SQL("select count(*) from {}").format(sql.Identifier(keys))).fetchone()[0]
        return by_key(conn, n, f"staged.{self.table}")

    def scope_rows(self, conn: psycopg.Connection, known: bool) -> int | None:
        """Run the scope file and return how many records it keeps; None when every record is to be redone
        (``known`` false)."""
        if not known:
            return None
        run_sql(conn, self.scope_sql)
        return conn.execute(sql.SQL("select count(*) from {}").format(sql.Identifier(self.scope))).fetchone()[
            0
        ]

    def remember(
        self, conn: psycopg.Connection, key: str, scope: int | None, moved: str | None = None
    ) -> None:
        """The stored fingerprints := this run's, of every record (scope None) or of the records whose
        fingerprints differ (``changed``): the rest of the records redone were read as they were, and a row is
        made of its fingerprint's fields, but for the partition (updated below). ``moved``: the working table
        (feed_id, record_key) of the records read because their partitions changed (``changes.want``); None when
        every record was read."""
        stored = sql.Identifier("staged", self.table)
        mine = sql.Identifier(self.fingerprints)
        if scope is None:
            conn.execute(sql.SQL("truncate {}").format(stored))
            conn.execute(sql.SQL("delete from {}").format(sql.Identifier("staged", self.table + "_key")))
            conn.execute(
                sql.SQL("insert into {} values (%s)").format(sql.Identifier("staged", self.table + "_key")),
                (key,),
            )
            # every row anew: the key and the indexes are built once after the insert, not row by row
            with rebuild.indexes_after(conn, "staged", self.table):
                conn.execute(sql.SQL("insert into {} select * from {}").format(stored, mine))
            # statistics now, not when autovacuum gets to it: the next run plans its joins by them (without,
            # the planner took a day's 48k noted records of 8.1M for 40k of all persons: 8.0 s instead of 0.3 s)
            conn.execute(sql.SQL("analyze {}").format(stored))
            return
        keys = sql.SQL(", ").join(map(sql.Identifier, self.keys))
        same = sql.SQL(" and ").join(sql.SQL("a.{0} = b.{0}").format(sql.Identifier(k)) for k in self.keys)
        # a few records of many: found by the primary key, not by hashing every stored row (the partitions'
        # update at scale 0.1: 4.4 s -> 0.5 s for 89k records of 9.1M)
        changed = sql.Identifier(self.changed)
        with by_key(conn, scope, f"staged.{self.table}"):
            # only the records whose fingerprints differ (new, changed or gone) are written again: the others of
            # the scope (a record following its identity's vote, a name's other records) are redone as they were
            # and keep their rows (scale 0.1: ~64k of a day's 319k records linked again)
            conn.execute(sql.SQL("delete from {} a using {} b where {}").format(stored, changed, same))
            conn.execute(
                sql.SQL("insert into {} select a.* from {} a join {} b using ({})").format(
                    stored, mine, changed, keys
                )
            )
            if not self.partitions:
                return
            # the records read but left as they were may have a version in another partition (re-delivered as
            # they were): lib/changes.py finds a record by the partition remembered here. Only those of ``moved``
            # can: a record of no new, replaced or dropped partition is where it was remembered (the others read
            # for the scope: at scale 0.1, 325k probes of the memory for 14k rows moved, 2.1 s)
            if moved is not None:
                mine = sql.SQL("(select b.* from {} b join {} w using (feed_id, record_key))").format(
                    mine, sql.Identifier(moved)
                )
            conn.execute(
                sql.SQL(
                    "update {} a set _partition = b._partition from {} b where {} and a._partition is distinct"
                    " from b._partition"
                ).format(stored, mine, same)
            )
