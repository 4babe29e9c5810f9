"""Standardizing one raw feed partition into ``staged``: typed canonical columns, one per mapped field.

A bad value becomes null and is written to ``quality.rejects`` (scope ``value``) with its reason; a row whose key
is empty, or an earlier copy of a key delivered again the same day, is not staged (scope ``row``). Rows read =
rows staged + rows rejected, recorded in ``quality.load_audit`` (stage ``staged``). Like raw, the staged table is
partitioned by landing day and a partition is replaced in one transaction.

A row is identified by its raw ``_row_id`` (unique over the day's files, in delivery order): it decides which copy
of a repeated key is kept (the last delivered) and which version of a record is current; ``_source_file`` and
``_row_number`` only name the row in messages.
"""

import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from itertools import compress

import numpy as np
import psycopg
from psycopg import sql

from jx_pipeline.catalog.schema import Feed
from jx_pipeline.lib import canonical, coords, ingest, locks, quarantine, staging_fast
from jx_pipeline.lib.errors import JxError

# Jiaxing's extent with a margin; points inside it are then tested against the city boundary (if loaded).
BBOX = (120.0, 30.2, 121.6, 31.2)
CITY_MARGIN_M = 200
CHUNK = 20000
FAST = True  # the fast path (lib/staging_fast.py); tests and the bench turn it off to compare
# what Python's str.strip() strips (str.isspace): a key is compared without it, in Arrow as in Python
WHITESPACE = staging_fast.SPACE


@dataclass
class StageResult:
    feed_id: str
    partition: str
    rows_read: int = 0
    rows_fast: int = 0  # of rows_read: standardized by the fast path, in Arrow (lib/staging_fast.py)
    rows_staged: int = 0
    rows_rejected: int = 0
    values_nulled: int = 0
    reasons: Counter = field(default_factory=Counter)


def staged_table(feed: Feed, partition: str | None = None) -> sql.Composed:
    name = feed.id if partition is None else ingest.day_name(feed, partition)
    return sql.SQL("staged.{}").format(sql.Identifier(name))


def current(
    conn: psycopg.Connection, feed: Feed, keys: str | None = None, read: Iterable[str] | None = None
) -> sql.Composed | None:
    """The latest version of every record of the feed (a subquery ``s``), or None before it was ever staged.
    ``keys``: a working table (feed_id, record_key); only the records of the feed it names (found by index).
    ``read``: the fields the caller reads (those the feed maps are kept, with record_key and _partition); the
    versions are sorted with those only, not whole rows (at scale 0.1 the widest feeds' rows are ~210 bytes).

    Quarantined partitions (lib/quarantine.py) are left out: a record falls back to its latest version in a
    partition that passed its checks; one seen only in quarantined partitions is absent."""
    if conn.execute("select to_regclass(%s)", (staged_table(feed).as_string(conn),)).fetchone()[0] is None:
        return None
    only = sql.SQL("")
    if keys is not None:
        only = sql.SQL(" and record_key in (select record_key from {} where feed_id = {})").format(
            sql.Identifier(keys), sql.Literal(feed.id)
        )
    columns = sql.SQL("*")
    if read is not None:
        wanted = set(read)
        kept = ["record_key", *(f for f in fields(feed)[1:] if f in wanted), "_partition"]
        columns = sql.SQL(", ").join(map(sql.Identifier, kept))
    return sql.SQL(
        "(select distinct on (record_key) {} from {} where {}{}"
        " order by record_key, _partition desc, _row_id desc) s"
    ).format(columns, staged_table(feed), quarantine.good_partitions(feed), only)


def fields(feed: Feed) -> list[str]:
    """Canonical fields of the feed in staged column order (record_key first)."""
    return ["record_key"] + [c for c in feed.columns.values() if c != "record_key"]


def ensure_staged_table(conn: psycopg.Connection, feed: Feed) -> None:
    cols = [sql.SQL("{} {}").format(sql.Identifier(f), sql.SQL(canonical.sql_type(f))) for f in fields(feed)]
    if feed.coordinates:
        cols.append(
            sql.SQL(
                "geom geometry(Point, 4490) generated always as"
                " (case when lon is not null and lat is not null then st_setsrid(st_makepoint(lon, lat), 4490) end)"
                " stored"
            )
        )
    _, existing = ingest.table_columns(conn, "staged", feed.id) or (None, None)
    if existing is None:
        conn.execute(
            sql.SQL(
                "create table if not exists {} ({}, _batch_id text not null, _partition text not null,"
                " _source_file text not null, _row_number bigint not null, _row_id bigint not null)"
                " partition by list (_partition)"
            ).format(staged_table(feed), sql.SQL(", ").join(cols))
        )
        # on every partition: a record's versions found by key (lib/changes.py reads only what changed)
        conn.execute(
            sql.SQL("create index if not exists {} on {} (record_key)").format(
                sql.Identifier(f"{feed.id}_record_key"), staged_table(feed)
            )
        )
        return
    if "_row_id" not in existing:
        raise JxError(
            f"staged.{feed.id} was created by an older jx-pipeline (no _row_id)",
            fix="jx-pipeline db migrate  (migration 0010 numbers the existing rows), then re-run",
        )
    for f in fields(feed):  # a field mapped in the catalog later
        if f not in existing:
            conn.execute(
                sql.SQL("alter table {} add column if not exists {} {}").format(
                    staged_table(feed),
                    sql.Identifier(f),
                    sql.SQL(canonical.sql_type(f).replace(" not null", "")),
                )
            )


def _coordinates(feed: Feed, xs: list, ys: list) -> tuple[np.ndarray, np.ndarray, list[str | None]]:
    """Source x/y (declared CRS) -> CGCS2000 lon/lat, NaN where unusable, with the reason per row."""
    n = len(xs)
    x, y = np.full(n, np.nan), np.full(n, np.nan)
    reasons: list[str | None] = [None] * n
    for i, (a, b) in enumerate(zip(xs, ys, strict=True)):
        a, b = (a or "").strip(), (b or "").strip()
        if not a and not b:
            continue
        try:
            x[i], y[i] = float(a), float(b)
        except ValueError:
            reasons[i] = "coord_invalid"
            continue
        if not (np.isfinite(x[i]) and np.isfinite(y[i])):
            reasons[i] = "coord_invalid"
    ok = np.isfinite(x) & np.isfinite(y)
    lon, lat = np.full(n, np.nan), np.full(n, np.nan)
    if ok.any():
        lon[ok], lat[ok] = coords.to_cgcs2000(feed.coordinates.crs, x[ok], y[ok])
    inside = (lon >= BBOX[0]) & (lon <= BBOX[2]) & (lat >= BBOX[1]) & (lat <= BBOX[3])
    for i in np.flatnonzero(ok & ~inside):
        reasons[i] = "coord_outside_jiaxing"
    lon[~inside], lat[~inside] = np.nan, np.nan
    return lon, lat, reasons


def _outside_city(conn, feed: Feed, partition: str) -> list[tuple[str, int, str]]:
    """Points inside the box but outside the city boundary (plus a margin) are nulled with a reason."""
    if not feed.coordinates:
        return []
    city = conn.execute(
        "select 1 from core.admin_unit where level = 'city' and geom is not null"
        if conn.execute("select to_regclass('core.admin_unit')").fetchone()[0]
        else "select 1 where false"
    ).fetchone()
    if not city:
        return []
    day = staged_table(feed, partition)
    rows = conn.execute(
        sql.SQL(
            # materialized: made once, not per point. The exact projected test runs only for the few points
            # outside the city itself, taken as the rule sees it: in EPSG:4549, its edges cut to 100 m and
            # brought back (a long straight edge in one CRS bows away from the other's, ~260 m over a degree;
            # over 100 m by millimetres, far inside the margin)
            "with city as materialized (select st_transform(st_segmentize(p, 100), 4490) geom,"
            " st_buffer(p, %s) g from (select st_transform(geom, 4549) p from core.admin_unit"
            " where level = 'city') c)"
            " select _source_file, _row_number, lon || ',' || lat, _row_id from {} s, city"
            " where s.geom is not null and not st_intersects(s.geom, city.geom)"
            " and not st_intersects(st_transform(s.geom, 4549), city.g)"
        ).format(day),
        (CITY_MARGIN_M,),
    ).fetchall()
    if rows:
        conn.execute(
            sql.SQL("update {} set lon = null, lat = null where _row_id = any(%s)").format(day),
            ([r[3] for r in rows],),
        )
    return [r[:3] for r in rows]


def stage_partition(conn: psycopg.Connection, feed: Feed, partition: str, batch_id: str) -> StageResult:
    """Replace the staged rows of one feed partition from its raw rows, atomically; returns the accounting."""
    result = StageResult(feed.id, partition)
    src = list(feed.columns)
    key_col = feed.column_for("record_key")
    names = fields(feed)
    std = canonical.standardizers(names, feed.date_format, date.fromisoformat(partition))
    source_of = {canon: s for s, canon in feed.columns.items()}
    rejects: list[tuple] = []
    with conn.transaction():
        locks.load(conn, "staged", feed.id)  # a concurrent staged or raw load of it finishes first
        audit = conn.execute(
            "select rows_loaded from quality.load_audit where feed_id = %s and partition_key = %s and stage = 'raw'",
            (feed.id, partition),
        ).fetchone()
        if audit is None:
            raise JxError(
                f"feed {feed.id}: raw partition {partition} has not been loaded",
                fix=f"materialize raw/{feed.department}/... for {partition} first (the staged asset's upstream)",
            )
        ensure_staged_table(conn, feed)
        # the lock the attach at the end needs, taken first (not an upgrade from the read of the parent by
        # ``like`` below); readers of the parent are not blocked by it
        conn.execute(sql.SQL("lock table only {} in share update exclusive mode").format(staged_table(feed)))
        day = staged_table(feed, partition)
        conn.execute(sql.SQL("drop table if exists {}").format(day))
        # made apart, filled, indexed, then attached: an index built over the rows costs a fifth of one kept up
        # row by row (0.2 s against 1.0 s of COPY for 642k rows)
        conn.execute(
            sql.SQL("create table {} (like {} including defaults including generated)").format(
                day, staged_table(feed)
            )
        )
        conn.execute(
            "delete from quality.rejects where feed_id = %s and partition_key = %s and stage = 'staged'",
            (feed.id, partition),
        )
        columns = [*names, "_batch_id", "_partition", "_source_file", "_row_number", "_row_id"]
        copy_slow = sql.SQL("copy {} ({}) from stdin").format(
            day, sql.SQL(", ").join(map(sql.Identifier, columns))
        )
        # at any size: a day's 168 small partitions at 0.1 staged in 2.8 s this way, 3.4 s all in Python
        fast = FAST and staging_fast.fast_way(feed)
        latest = canonical.latest_date(date.fromisoformat(partition))
        tail = (batch_id, partition)
        with staging_fast.spooled(conn, feed, partition) as spool:
            dups = staging_fast.duplicates(spool, key_col)
            col_index = {c: i for i, c in enumerate(src)}
            order = (*src, *staging_fast.META)  # as _ChunkStager reads a row
            text_tail = "\t".join(copy_text(v) for v in tail)
            stager = _ChunkStager(feed, names, std, source_of, col_index, key_col, dups, rejects, text_tail)
            for batch in spool.batches():
                result.rows_read += batch.num_rows
                if fast:  # the rows standard as written are copied in; the rest go the Python way
                    rows, batch = staging_fast.split(feed, batch, names, dups, latest, canonical.EARLIEST)
                    result.rows_fast += staging_fast.copy_in(conn, day, rows, tail)
                slow = list(zip(*(batch.column(c).to_pylist() for c in order), strict=True))
                for i in range(0, len(slow), CHUNK):
                    if data := stager.copy_data(slow[i : i + CHUNK]):
                        with conn.cursor().copy(copy_slow) as copy:
                            copy.write(data)
        if result.rows_fast:
            staging_fast.shared_defaults(conn, day, None)
        conn.execute(sql.SQL("create index on {} (record_key)").format(day))
        conn.execute(
            sql.SQL("alter table {} attach partition {} for values in ({})").format(
                staged_table(feed), day, sql.Literal(partition)
            )
        )
        for path, row, value in _outside_city(conn, feed, partition):
            rejects.append(
                (path, row, f"{source_of['lon']},{source_of['lat']}", "coord_outside_jiaxing", value, "value")
            )
        _finish(conn, feed, partition, batch_id, result, rejects, audit[0])
    return result


# COPY's text format: a backslash and the control characters that delimit fields and rows are escaped
_COPY_ESCAPE = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})
_COPY_NULL = "\\N"
_NEEDS_ESCAPE = re.compile(r"[\\\t\n\r]")
MEMO_LIMIT = 200_000  # distinct raw values remembered per column: flat memory on partitions of unique values


def copy_text(value: object) -> str:
    """A standardized value as a field of COPY's text format (what psycopg's dumpers would send)."""
    if value is None:
        return _COPY_NULL
    if value is True or value is False:
        return "t" if value else "f"
    if isinstance(value, str):
        return value.translate(_COPY_ESCAPE) if _NEEDS_ESCAPE.search(value) else value
    if isinstance(value, date):  # and datetime
        return value.isoformat()
    return str(value)


def _escaped(texts) -> list[str]:
    """A column of texts in COPY's text format (most columns need no escape: one search decides)."""
    if _NEEDS_ESCAPE.search("".join(texts)):
        return [t.translate(_COPY_ESCAPE) for t in texts]
    return list(texts)


class _ChunkStager:
    """Standardizes chunks of raw rows of one partition column by column: each distinct raw value of a column is
    standardized once (and formatted for COPY once), rows are then assembled by joins, not a loop per value.
    Rejects accumulate in the given list."""

    def __init__(self, feed, names, std, source_of, col_index, key_col, dups, rejects, tail):
        self.feed, self.names, self.std, self.source_of = feed, names, std, source_of
        self.col, self.key_col, self.dups, self.rejects = col_index, key_col, dups, rejects
        self.n_src = len(col_index)
        self.coord_cols = f"{source_of.get('lon')},{source_of.get('lat')}"
        self.tail = tail  # COPY text of the columns every row of the partition shares (batch, partition)
        self.memo = {f: ({}, {}) for f in names}  # raw value -> COPY text; raw value -> reason (if any)

    def _column(self, f: str, values: tuple) -> tuple[list[str], dict]:
        """COPY texts of one field's raw values, and the reasons of the raw values it rejects."""
        texts, reasons = self.memo[f]
        if len(texts) > MEMO_LIMIT:
            texts.clear()
            reasons.clear()
        fn = self.std[f]
        for v in set(values).difference(texts):
            value, reason = fn(v)
            texts[v] = copy_text(value)
            if reason:
                reasons[v] = reason
        return list(map(texts.__getitem__, values)), reasons

    def copy_data(self, chunk: list[tuple]) -> bytes:
        """The chunk's staged rows in COPY text format; its row and value rejects appended to the list."""
        feed, col, rejects, n_src = self.feed, self.col, self.rejects, self.n_src
        columns = list(zip(*chunk, strict=True))
        paths, numbers, row_ids = columns[n_src], columns[n_src + 1], columns[n_src + 2]
        keys = [(k or "").strip() for k in columns[col[self.key_col]]]
        keep = [True] * len(chunk)
        for i, key in enumerate(keys):
            if not key:
                keep[i] = False
                rejects.append((paths[i], numbers[i], self.key_col, "key_empty", None, "row"))
            elif (kept := self.dups.get(key)) is not None and kept[0] != row_ids[i]:
                keep[i] = False
                later = f"{key} (kept: {kept[1]} row {kept[2]})"
                rejects.append((paths[i], numbers[i], self.key_col, "duplicate_key", later, "row"))
        out = [_escaped(keys)]
        if feed.coordinates:
            xs, ys = columns[col[feed.coordinates.x]], columns[col[feed.coordinates.y]]
            lon, lat, why = _coordinates(feed, xs, ys)
            for i in (i for i, r in enumerate(why) if r and keep[i]):
                rejects.append((paths[i], numbers[i], self.coord_cols, why[i], f"{xs[i]},{ys[i]}", "value"))
        for f in self.names[1:]:
            if f in ("lon", "lat"):
                out.append([_COPY_NULL if v != v else repr(v) for v in (lon if f == "lon" else lat).tolist()])
                continue
            values = columns[col[self.source_of[f]]]
            texts, reasons = self._column(f, values)
            out.append(texts)
            if reasons and not reasons.keys().isdisjoint(values):
                for i, v in enumerate(values):
                    if v in reasons and keep[i]:
                        rejects.append(
                            (
                                paths[i],
                                numbers[i],
                                self.source_of[f],
                                reasons[v],
                                canonical.mask(f, v),
                                "value",
                            )
                        )
        out.append([self.tail] * len(chunk))
        out.append(_escaped(paths))
        out.append(list(map(str, numbers)))
        out.append(list(map(str, row_ids)))
        lines = map("\t".join, compress(zip(*out, strict=True), keep))
        return ("\n".join(lines) + "\n").encode() if any(keep) else b""


def _finish(
    conn,
    feed: Feed,
    partition: str,
    batch_id: str,
    result: StageResult,
    rejects: list[tuple],
    raw_loaded: int,
) -> None:
    if rejects:
        with conn.cursor().copy(
            "copy quality.rejects (feed_id, partition_key, stage, batch_id, source_file, row_number, column_name,"
            " reason, value, scope) from stdin"
        ) as copy:
            for r in rejects:
                copy.write_row((feed.id, partition, "staged", batch_id, *r))
    result.rows_rejected = sum(1 for r in rejects if r[5] == "row")
    result.values_nulled = len(rejects) - result.rows_rejected
    result.reasons = Counter(r[3] for r in rejects)
    result.rows_staged = conn.execute(
        sql.SQL("select count(*) from {}").format(staged_table(feed, partition))
    ).fetchone()[0]
    if result.rows_read != raw_loaded:
        raise JxError(
            f"feed {feed.id} partition {partition}: raw holds {result.rows_read} rows but its load recorded {raw_loaded}",
            fix="re-run the raw partition, then the staged one",
        )
    conn.execute(
        """insert into quality.load_audit (feed_id, partition_key, stage, batch_id, source_files, rows_read,
                                           rows_loaded, rows_rejected)
           select %s, %s, 'staged', %s, source_files, %s, %s, %s from quality.load_audit
            where feed_id = %s and partition_key = %s and stage = 'raw'
           on conflict (feed_id, partition_key, stage) do update set
             batch_id = excluded.batch_id, source_files = excluded.source_files, rows_read = excluded.rows_read,
             rows_loaded = excluded.rows_loaded, rows_rejected = excluded.rows_rejected, loaded_at = now()""",
        (
            feed.id,
            partition,
            batch_id,
            result.rows_read,
            result.rows_staged,
            result.rows_rejected,
            feed.id,
            partition,
        ),
    )
