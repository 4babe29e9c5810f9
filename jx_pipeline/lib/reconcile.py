"""Independent counts behind the blocking checks: every check compares what a layer holds with a count taken
another way, so that a row lost or added anywhere on the way makes it fail.

A check that compares a load with its own counter cannot fail (COPY's row count with itself, a table with the list
that was just written into it). Here the expected side never comes from the code that wrote the data:

- raw: the landing files' records counted by a separate reader (Python's csv module with the declared encoding and
  delimiter, JSON lines, openpyxl rows, Parquet metadata), or the source table's ``count(*)`` over the same
  watermark window; found: the partition's raw rows + raw rejects, counted in SQL.
- staged: the partition's raw rows counted in SQL; found: staged rows + row-scope rejects, counted in SQL.
- core.entity_link: the current, not deleted records of every staged feed; each has one link row, no link row
  lacks its record.
- identities: every current record of a feed that maps a person (organisation) name has one membership of that
  kind, every membership its record and an existing master, and each master's ``records`` its member count.
- core.geo_entity: one row per record of the hand-over file (its Parquet metadata's row count).
- core.address_point: one row per door plate of core.geo_entity.
"""

from __future__ import annotations

import codecs
import csv
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import dagster as dg
import psycopg
from psycopg import sql

from jx_pipeline.catalog.schema import Catalog, DatabaseSource, Feed
from jx_pipeline.lib import ingest, linking, quarantine, staging
from jx_pipeline.lib.pg import connect, key_tally, settings_for

# Identity kinds and the field that makes a feed's records members of that kind (as lib/identity.py reads them).
MEMBER_FIELD = {"person": "person_name", "legal_person": "org_name"}


@dataclass
class Tally:
    """Expected (counted independently) against found; ``problems`` names what else is wrong (stray rows...)."""

    expected: int = 0
    found: int = 0
    problems: dict[str, int] = field(default_factory=dict)
    detail: dict = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return self.expected == self.found and not any(self.problems.values())

    def add(self, other: Tally) -> None:
        self.expected += other.expected
        self.found += other.found
        for k, v in other.problems.items():
            self.problems[k] = self.problems.get(k, 0) + v
        self.detail.update(other.detail)

    def failure(self) -> str | None:
        """Why the counts disagree, in words (a quarantine's reason), or None when they agree."""
        if self.passed:
            return None
        problems = "".join(f", {k} {v}" for k, v in self.problems.items() if v)
        return f"expected {self.expected} rows, found {self.found}{problems}"

    def check(
        self,
        check_name: str,
        asset_key: dg.AssetKey | None = None,
        severity: dg.AssetCheckSeverity = dg.AssetCheckSeverity.ERROR,
        **metadata,
    ) -> dg.AssetCheckResult:
        return dg.AssetCheckResult(
            check_name=check_name,
            asset_key=asset_key,
            passed=self.passed,
            severity=severity,
            metadata={
                "expected": dg.MetadataValue.int(self.expected),
                "found": dg.MetadataValue.int(self.found),
                **{k: dg.MetadataValue.int(v) for k, v in self.problems.items()},
                **({"detail": dg.MetadataValue.json(self.detail)} if self.detail else {}),
                **metadata,
            },
        )


# --- raw -------------------------------------------------------------------------------------------------------


def file_records(feed: Feed, path: Path) -> int:
    """Data records in a landing file, read by a reader other than the load's (streamed; header excluded)."""
    fmt = feed.source.format
    if fmt == "csv":
        enc = "utf-8-sig" if feed.source.encoding == "utf-8" else feed.source.encoding  # a stray BOM
        csv.field_size_limit(1 << 30)  # a long remark is one field, as COPY reads it
        with path.open(encoding=enc, newline="") as fh:
            rows = sum(1 for r in csv.reader(fh, delimiter=feed.source.delimiter) if r)
        return max(rows - 1, 0)
    if fmt == "jsonl":
        decoder = codecs.getincrementaldecoder("utf-8")()
        with path.open("rb") as fh:
            return sum(1 for line in fh if decoder.decode(line).strip())
    if fmt == "parquet":
        import pyarrow.parquet as pq

        return pq.ParquetFile(path).metadata.num_rows
    from openpyxl import load_workbook  # xlsx: rows after the header up to the last one with a value

    wb = load_workbook(path, read_only=True)
    try:
        last = 0
        for i, row in enumerate(wb.worksheets[0].iter_rows(values_only=True)):
            if any(v not in (None, "") for v in row):
                last = i
        return last
    finally:
        wb.close()


def source_rows(feed: Feed, partition: str, *, source_url: str, first: bool) -> int:
    """The source table's rows in the partition's watermark window, by ``count(*)``."""
    src: DatabaseSource = feed.source
    table = sql.SQL("{}.{}").format(sql.Identifier(feed.department), sql.Identifier(src.table))
    with connect(source_url, what=f"source database of feed {feed.id}") as source:
        query = sql.SQL("select count(*) from {} where {}").format(
            table, ingest.source_window(feed, partition, first)
        )
        return source.execute(query).fetchone()[0]


def raw(
    conn: psycopg.Connection,
    feed: Feed,
    partitions: list[str],
    *,
    world: Path,
    source_url: str = "",
    first_partition: str = "",
) -> Tally:
    """Records at the source (files or table) = raw rows + raw rejects, per partition."""
    total = Tally()
    loaded = conn.execute("select to_regclass(%s)", (f'raw."{feed.id}"',)).fetchone()[0] is not None
    for p in partitions:
        if isinstance(feed.source, DatabaseSource):
            per_source = {
                f"db:{feed.department}.{feed.source.table}": source_rows(
                    feed, p, source_url=source_url, first=p <= first_partition
                )
            }
        else:
            per_source = {
                path.name: file_records(feed, path) for path in ingest.landing_files(world, feed, p)
            }
        rows = (
            conn.execute(
                sql.SQL("select count(*) from {} where _partition = %s").format(ingest.raw_table(feed)), (p,)
            ).fetchone()[0]
            if loaded
            else 0
        )
        rejected = _rejected_rows(conn, feed, p, "raw")
        expected = sum(per_source.values())
        total.add(
            Tally(
                expected,
                rows + rejected,
                detail={p: {"source": per_source, "raw_rows": rows, "rejected_rows": rejected}},
            )
        )
    return total


def _rejected_rows(conn: psycopg.Connection, feed: Feed, partition: str, stage: str) -> int:
    return conn.execute(
        "select count(distinct (source_file, row_number)) from quality.rejects"
        " where feed_id = %s and partition_key = %s and stage = %s and scope = 'row'",
        (feed.id, partition, stage),
    ).fetchone()[0]


# --- staged ----------------------------------------------------------------------------------------------------


def staged(conn: psycopg.Connection, feed: Feed, partitions: list[str]) -> Tally:
    """Raw rows of each partition = staged rows + row-scope rejects, all counted in SQL."""
    total = Tally()
    has = {
        layer: conn.execute("select to_regclass(%s)", (f'{layer}."{feed.id}"',)).fetchone()[0] is not None
        for layer in ("raw", "staged")
    }
    for p in partitions:
        counts = {}
        for layer in ("raw", "staged"):
            counts[layer] = (
                conn.execute(
                    sql.SQL("select count(*) from {}.{} where _partition = %s").format(
                        sql.Identifier(layer), sql.Identifier(feed.id)
                    ),
                    (p,),
                ).fetchone()[0]
                if has[layer]
                else 0
            )
        rejected = _rejected_rows(conn, feed, p, "staged")
        total.add(
            Tally(
                counts["raw"],
                counts["staged"] + rejected,
                detail={
                    p: {"raw_rows": counts["raw"], "staged_rows": counts["staged"], "rejected_rows": rejected}
                },
            )
        )
    return total


# --- core ------------------------------------------------------------------------------------------------------


def _current(
    conn: psycopg.Connection, catalog: Catalog, kind_field: str | None = None
) -> sql.Composable | None:
    """The keys (feed_id, record_key) of the current records of every staged feed, as one query: not deleted
    ones (links), or all of those mapping ``kind_field`` (identities, as resolution reads them)."""
    selects = []
    for feed in catalog.feeds:
        if kind_field and kind_field not in feed.columns.values():
            continue
        latest = staging.current(conn, feed, read=linking.ALIVE_FIELDS)
        if latest is None:
            continue
        if kind_field:  # every current record, deleted or not: its key in any partition that passed (no sort)
            latest = sql.SQL("(select distinct record_key from {} where {}) s").format(
                staging.staged_table(feed), quarantine.good_partitions(feed)
            )
        cond = sql.SQL("true") if kind_field else linking.alive(feed)
        selects.append(
            sql.SQL("select {}::text as feed_id, record_key::text from {} where {}").format(
                sql.Literal(feed.id), latest, cond
            )
        )
    return sql.SQL(" union all ").join(selects) if selects else None


_KEYS = ("feed_id", "record_key")
_EMPTY = sql.SQL("select null::text as feed_id, null::text as record_key where false")


def current_tally(
    catalog: Catalog, kind: str | None = None
) -> Callable[[psycopg.Connection], tuple[int, int]]:
    """The expected side of ``links`` (``kind`` None) or ``memberships``: a reader of the current records'
    key tally, to count on the step's connection or aside (lib/aside.py), in the same snapshot."""

    def read(conn: psycopg.Connection) -> tuple[int, int]:
        current = _current(conn, catalog, MEMBER_FIELD[kind] if kind else None) or _EMPTY
        return key_tally(conn, sql.SQL("({}) c").format(current), _KEYS)

    return read


def _compare(
    conn: psycopg.Connection,
    current: sql.Composable | None,
    rows: sql.Composable,
    expected: tuple[int, int] | None = None,
) -> tuple[int, ...]:
    """(expected, found, missing, stray): the current records' keys against a core table's (``rows``: a query of
    its feed_id, record_key). First by count and a 64-bit hash of the keys on each side, each side read once
    (the current records' tally given as ``expected`` when counted aside, in the same snapshot and in one
    process, lib/aside.py); only when these differ, one full join of the keys says which are missing or stray
    (scale 0.1, links: 20 s with the join, 4.6 s by the tallies)."""
    current = current or _EMPTY
    if expected is None:
        expected = key_tally(conn, sql.SQL("({}) c").format(current), _KEYS)
    found = key_tally(conn, sql.SQL("({}) l").format(rows), _KEYS)
    if expected == found:
        return expected[0], found[0], 0, 0
    conn.execute(sql.SQL("create temp table reconcile_current on commit drop as {}").format(current))
    # hashed, not two sorts of every key: the planner has no statistics on the fresh temporary table
    with settings_for(conn, enable_mergejoin="off"):
        return conn.execute(
            sql.SQL(
                """select count(c.record_key), count(l.record_key),
                          count(*) filter (where l.record_key is null), count(*) filter (where c.record_key is null)
                     from reconcile_current c
                     full join ({}) l on l.feed_id = c.feed_id and l.record_key = c.record_key"""
            ).format(rows)
        ).fetchone()


def links(conn: psycopg.Connection, catalog: Catalog, expected: tuple[int, int] | None = None) -> Tally:
    """Current records of every staged feed (counted in SQL) = link rows; none missing, none stray.
    ``expected``: the current records' tally (``current_tally``) if counted aside."""
    with conn.transaction():
        expected, found, missing, stray = _compare(
            conn,
            _current(conn, catalog),
            sql.SQL("select feed_id, record_key from core.entity_link"),
            expected,
        )
    return Tally(expected, found, {"records_without_link": missing, "links_without_record": stray})


def memberships(
    conn: psycopg.Connection, catalog: Catalog, kind: str, expected: tuple[int, int] | None = None
) -> Tally:
    """Every current record of the kind's feeds has one membership of that kind (none missing, none stray);
    every membership's master exists and every master's ``records`` equals its members. ``expected``: the
    current records' tally (``current_tally``) if counted aside."""
    master, key = ("core.person", "person_key") if kind == "person" else ("core.legal_person", "org_key")
    with conn.transaction():
        expected, found, missing, stray = _compare(
            conn,
            _current(conn, catalog, MEMBER_FIELD[kind]),
            sql.SQL("select feed_id, record_key from core.identity_member where kind = {}").format(
                sql.Literal(kind)
            ),
            expected,
        )
        # one pass: the members counted per master (parallel), joined with the masters both ways (at scale
        # 0.1: 1.0 s; an anti-join and a count over a materialized CTE of every membership took 8.0 s)
        dangling, miscounted = conn.execute(
            f"""select coalesce(sum(g.n) filter (where p.{key} is null), 0)::bigint,
                       count(*) filter (where p.records <> coalesce(g.n, 0))
                  from (select master_key, count(*) as n from core.identity_member where kind = %(kind)s
                         group by 1) g
                  full join {master} p on p.{key} = g.master_key""",
            {"kind": kind},
        ).fetchone()
    return Tally(
        expected,
        found,
        {
            "records_without_membership": missing,
            "memberships_without_record": stray,
            "memberships_without_master": dangling,
            "masters_miscounted": miscounted,
        },
    )


def geo_entities(conn: psycopg.Connection, path: Path) -> Tally:
    """core.geo_entity = the hand-over file's rows, as its Parquet metadata counts them (not the load's reader)."""
    import pyarrow.parquet as pq

    expected = pq.ParquetFile(path).metadata.num_rows
    found = conn.execute("select count(*) from core.geo_entity").fetchone()[0]
    return Tally(expected, found, detail={"source_file": str(path)})


def address_points(conn: psycopg.Connection) -> Tally:
    """One core.address_point row per door plate of core.geo_entity (by entity id)."""
    expected, found, missing, stray = conn.execute(
        """with g as (select entity_id from core.geo_entity where entity_type = 'address_point')
           select (select count(*) from g), (select count(*) from core.address_point),
                  (select count(*) from g where not exists (select 1 from core.address_point a where a.entity_id = g.entity_id)),
                  (select count(*) from core.address_point a where not exists (select 1 from g where g.entity_id = a.entity_id))"""
    ).fetchone()
    return Tally(expected, found, {"door_plates_without_point": missing, "points_without_door_plate": stray})
