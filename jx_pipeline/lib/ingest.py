"""Loading one feed partition into ``raw``: landing files or a source-database slice, streamed with COPY.

Each partition load is one transaction: the partition's previous rows are replaced, so a re-run never
duplicates and a crash leaves the previous good state. Every row read is either loaded (with lineage: batch,
partition, source file, row number) or written to ``quality.rejects`` with its reason; ``quality.load_audit``
records the reconciliation. ``_source_file`` holds the file's name within the feed's landing folder of that day
(the full paths are in the audit): lineage bytes on every row cost COPY speed (~10 % for a full path).

Row identity: ``_row_number`` is the row within its file (row 1 is the header), for messages a person can follow
into the file; ``_row_id`` is the row's ordinal over the whole landing day in delivery order, unique in the feed's
partition and the same on every re-run. Delivery order is the day's files in name order, so a later delivery must
sort later: ``<feed>_<YYYYMMDD>.csv`` first, then ``<feed>_<YYYYMMDD>_part2.csv``, ``<feed>_<YYYYMMDD>_resend1.csv``.
A database feed's slice is one delivery ordered by (watermark, key).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

import psycopg
import pyarrow as pa
import pyarrow.compute as pc
from psycopg import sql

from jx_pipeline.catalog.schema import DatabaseSource, Feed
from jx_pipeline.lib import late_rows, locks, readers
from jx_pipeline.lib.errors import JxError
from jx_pipeline.lib.pg import STEP_WAIT_S, connect

LINEAGE = ("_extra", "_batch_id", "_partition", "_source_file", "_row_number", "_row_id")
CATALOG_FIX = "update the feed's columns in jx_pipeline/catalog/feeds.yaml, or ask the department to re-send"


@dataclass
class LoadResult:
    feed_id: str
    partition: str
    batch_id: str
    files: list[str] = field(default_factory=list)
    rows_read: int = 0
    rows_loaded: int = 0
    rows_rejected: int = 0
    extra_columns: list[str] = field(default_factory=list)


def raw_table(feed: Feed) -> sql.Composed:
    return sql.SQL("raw.{}").format(sql.Identifier(feed.id))


def raw_columns(feed: Feed) -> list[str]:
    return [c.lower() for c in feed.columns]


def ensure_raw_table(conn: psycopg.Connection, feed: Feed) -> None:
    """The feed's raw table, LIST-partitioned by landing day: replacing a day is dropping one partition."""
    kind, existing = table_columns(conn, "raw", feed.id) or (None, None)
    if kind and kind != "p":
        raise JxError(
            f"raw.{feed.id} was created by an older jx-pipeline (not partitioned by day)",
            fix=f'psql "$(jx-pipeline db url)" -c \'drop table raw."{feed.id}"\'  then re-run the load',
        )
    if existing is None:
        cols = sql.SQL(", ").join(sql.SQL("{} text").format(sql.Identifier(c)) for c in raw_columns(feed))
        conn.execute(
            sql.SQL(
                "create table if not exists {} ({}, _extra jsonb, _batch_id text not null, _partition text not null,"
                " _source_file text not null, _row_number bigint not null, _row_id bigint not null)"
                " partition by list (_partition)"
            ).format(raw_table(feed), cols)
        )
        return
    if "_row_id" not in existing:
        raise JxError(
            f"raw.{feed.id} was created by an older jx-pipeline (no _row_id)",
            fix="jx-pipeline db migrate  (migration 0010 numbers the existing rows), then re-run the load",
        )
    for c in raw_columns(feed):  # a column added to the catalog later
        if c not in existing:
            conn.execute(
                sql.SQL("alter table {} add column if not exists {} text").format(
                    raw_table(feed), sql.Identifier(c)
                )
            )


def table_columns(conn: psycopg.Connection, schema: str, table: str) -> tuple[str, set[str]] | None:
    """(relkind, column names) of a table, None when it does not exist: one catalog lookup per load, where
    information_schema took ~4 ms a query."""
    row = conn.execute(
        """select c.relkind, array_agg(a.attname::text) filter (where a.attnum > 0 and not a.attisdropped)
             from pg_class c join pg_namespace n on n.oid = c.relnamespace
             left join pg_attribute a on a.attrelid = c.oid
            where n.nspname = %s and c.relname = %s group by c.relkind""",
        (schema, table),
    ).fetchone()
    return (row[0], set(row[1] or ())) if row else None


def day_name(feed: Feed, partition: str) -> str:
    """The table of one landing day of a feed (raw and staged alike): ``<feed>__YYYYMMDD``."""
    return f"{feed.id}__{partition.replace('-', '')}"


def _day_table(feed: Feed, partition: str) -> tuple[sql.Composed, sql.Composed, sql.Composed]:
    """The day table and its two counters: the row in the file (restarted per file) and the row id (per day)."""
    name = day_name(feed, partition)
    return (
        sql.SQL("raw.{}").format(sql.Identifier(name)),
        sql.SQL("raw.{}").format(sql.Identifier(name + "_row")),
        sql.SQL("raw.{}").format(sql.Identifier(name + "_id")),
    )


def new_day_partition(conn: psycopg.Connection, feed: Feed, partition: str, batch_id: str) -> None:
    """Drop the day's partition (its rows from an earlier load) and create it empty, with lineage defaults:
    constants and two counters, so that COPY of a file's own columns fills the lineage at COPY speed."""
    table, seq, ids = _day_table(feed, partition)
    conn.execute(sql.SQL("drop table if exists {}").format(table))
    # cached: one nextval per row and counter, without a lock per call (each file restarts both explicitly)
    conn.execute(sql.SQL("create sequence {} start 2 cache 10000").format(seq))
    conn.execute(sql.SQL("create sequence {} start 1 cache 10000").format(ids))
    conn.execute(
        sql.SQL(
            "create table {t} partition of {parent} (_batch_id default {b}, _partition default {p},"
            " _row_number default nextval({s}), _row_id default nextval({i})) for values in ({p})"
        ).format(
            t=table,
            parent=raw_table(feed),
            b=sql.Literal(batch_id),
            p=sql.Literal(partition),
            s=sql.Literal(seq.as_string(conn)),
            i=sql.Literal(ids.as_string(conn)),
        )
    )
    conn.execute(sql.SQL("alter sequence {} owned by {}._row_number").format(seq, table))
    conn.execute(sql.SQL("alter sequence {} owned by {}._row_id").format(ids, table))


def check_drift(feed: Feed, where: str, found: list[str]) -> list[str]:
    """Compare a header with the catalog; returns the extra columns the feed's policy accepts."""
    expected = list(feed.columns)
    dup = sorted({c for c in found if found.count(c) > 1})
    if dup:
        raise JxError(f"feed {feed.id} {where} row 1: column(s) {dup} appear more than once", fix=CATALOG_FIX)
    missing = [c for c in expected if c not in found]
    extra = [c for c in found if c not in expected]
    if missing:
        hint = f" (renamed to {extra}?)" if extra and len(extra) == len(missing) else ""
        raise JxError(
            f"feed {feed.id} {where} row 1: column(s) {missing} missing{hint}; found {found}", fix=CATALOG_FIX
        )
    if extra and feed.schema_drift == "fail":
        hint = (
            " (an empty name: a blank header cell, or a delimiter ending the header line?)"
            if "" in extra
            else ""
        )
        raise JxError(
            f"feed {feed.id} {where} row 1: unexpected column(s) {extra}{hint} (schema_drift: fail)",
            fix="add them to the feed's columns, or set schema_drift: accept_extra in the catalog",
        )
    return extra


def landing_files(world: Path, feed: Feed, partition: str) -> list[Path]:
    """The day's files in name order; hidden files (uploads in progress) are skipped, and anything else that is
    not a readable regular file stops the load, since its rows would be silently lost."""
    folder = world / "landing" / feed.department / feed.id / partition
    if not folder.is_dir():
        return []
    files = sorted(p for p in folder.iterdir() if not p.name.startswith("."))
    for p in files:
        if not p.is_file():
            what = (
                "a folder" if p.is_dir() else "a broken or looping link" if p.is_symlink() else "not a file"
            )
            raise JxError(
                f"feed {feed.id} landing folder {folder}: {p.name} is {what}; its rows cannot be loaded",
                fix="put the files themselves in the day's folder (folders and links to nothing are not read),"
                " then re-run the partition",
            )
    return files


def _nul_rows(batch: pa.RecordBatch) -> tuple[pa.Array, list[tuple[int, str, str]]]:
    """Mask of rows free of NUL bytes (PostgreSQL text cannot hold them) and the offending (row, column, value)."""
    bad = None
    hits = []
    for name, col in zip(batch.schema.names, batch.columns, strict=True):
        m = pc.fill_null(pc.match_substring(col, "\x00"), False)
        if pc.any(m).as_py():
            for i in pc.indices_nonzero(m).to_pylist():
                hits.append((i, name, col[i].as_py()))
            bad = m if bad is None else pc.or_(bad, m)
    return (pc.invert(bad) if bad is not None else None), hits


PG_ENCODING = {"utf-8": "UTF8", "utf-8-sig": "UTF8", "gbk": "GBK", "gb18030": "GB18030"}


def _copy_csv_direct(conn, feed: Feed, path: Path, found: list[str], partition: str, first_id: int) -> int:
    """The common case at the speed of COPY: the file's bytes go to the server as they are, the server decodes
    the declared encoding, and the lineage columns come from the day partition's defaults (the row id counter
    set to ``first_id``, so that an attempt rolled back leaves no gap)."""
    table, seq, ids = _day_table(feed, partition)
    conn.execute(
        sql.SQL("alter table {} alter column _source_file set default {}").format(
            table, sql.Literal(path.name)
        )
    )
    conn.execute(sql.SQL("alter sequence {} restart with 2").format(seq))
    conn.execute(sql.SQL("alter sequence {} restart with {}").format(ids, sql.Literal(first_id)))
    stmt = sql.SQL("copy {} ({}) from stdin (format csv, header true, delimiter {}, encoding {})").format(
        table,
        sql.SQL(", ").join(sql.Identifier(c.lower()) for c in found),
        sql.Literal(feed.source.delimiter),
        sql.Literal(PG_ENCODING[feed.source.encoding]),
    )
    guard = readers.Utf8InGbk(feed, path) if feed.source.encoding in ("gbk", "gb18030") else None
    with conn.cursor() as cur:
        with cur.copy(stmt) as copy, path.open("rb") as fh:
            if feed.source.encoding in ("utf-8", "utf-8-sig") and fh.read(3) != b"\xef\xbb\xbf":
                fh.seek(0)
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                if guard:  # UTF-8 text decodes as GBK without an error: refuse it before it loads as mojibake
                    guard.feed_bytes(chunk)
                copy.write(chunk)
            if guard:
                guard.close()
        return cur.rowcount


def _copy_file(
    conn, feed: Feed, path: Path, partition: str, batch_id: str, result: LoadResult, rejects: list[tuple]
) -> None:
    try:
        before = path.stat()
    except FileNotFoundError:
        raise JxError(
            f"feed {feed.id} file {path} disappeared before it was read",
            fix="re-run the partition once the landing folder is complete (its previous load is kept)",
        ) from None
    found = readers.header(feed, path)
    extra = check_drift(feed, f"file {path}", found)
    result.extra_columns = sorted(set(result.extra_columns) | set(extra))
    if feed.source.format == "csv" and not extra:
        try:
            with conn.transaction():  # a savepoint: on a NUL byte or a malformed row, take the careful path
                n = _copy_csv_direct(conn, feed, path, found, partition, result.rows_loaded + 1)
            result.rows_read += n
            result.rows_loaded += n
            _unchanged(feed, path, before)
            result.files.append(str(path))
            return
        except (psycopg.errors.DataError, psycopg.errors.BadCopyFileFormat):
            pass
    target = raw_columns(feed) + list(LINEAGE)
    stmt = sql.SQL("copy {} ({}) from stdin (format csv)").format(
        raw_table(feed), sql.SQL(", ").join(sql.Identifier(c) for c in target)
    )
    row = 1  # the header
    with conn.cursor().copy(stmt) as copy:
        for batch in readers.batches(feed, path, found):
            n = batch.num_rows
            numbers = pa.array(range(row + 1, row + 1 + n), pa.int64())
            row += n
            keep, hits = _nul_rows(batch)
            by_row: dict[int, list[tuple[str, str]]] = {}
            for i, col, value in hits:
                by_row.setdefault(i, []).append((col, value))
            for i, cells in sorted(by_row.items()):  # one reject per row, naming every bad column
                rejects.append(
                    (
                        row - n + 1 + i,
                        ",".join(c for c, _ in cells),
                        "nul_byte: NUL character in value",
                        (cells[0][1] or "").replace("\x00", "\\0")[:200],
                    )
                )
            if keep is not None:
                batch, numbers = batch.filter(keep), numbers.filter(keep)
            cols = [batch.column(c) for c in feed.columns]
            if extra:
                ex = [
                    json.dumps(dict(zip(extra, vals, strict=True)), ensure_ascii=False)
                    for vals in zip(*(batch.column(c).to_pylist() for c in extra), strict=True)
                ]
                cols.append(pa.array(ex, pa.string()))
            else:
                cols.append(pa.nulls(batch.num_rows, pa.string()))
            m = batch.num_rows
            cols += [
                pa.array([batch_id] * m, pa.string()),
                pa.array([partition] * m, pa.string()),
                pa.array([path.name] * m, pa.string()),
                numbers,
                pa.array(range(result.rows_loaded + 1, result.rows_loaded + 1 + m), pa.int64()),
            ]
            copy.write(readers.csv_bytes(pa.Table.from_arrays(cols, names=target)))
            result.rows_read += n
            result.rows_loaded += m
    _unchanged(feed, path, before)
    result.files.append(str(path))


def _unchanged(feed: Feed, path: Path, before) -> None:
    after = path.stat()
    if (after.st_size, after.st_mtime_ns) != (before.st_size, before.st_mtime_ns):
        raise JxError(
            f"feed {feed.id} file {path} changed while it was read ({before.st_size} -> {after.st_size} bytes)",
            fix="wait until the upload is complete, then re-run this partition",
        )


def source_window(feed: Feed, partition: str, first: bool) -> sql.Composed:
    """The source rows of a database feed's landing day, by watermark; the first partition also takes everything
    written before it (the initial extract). The load and the check's independent count share it."""
    day = date.fromisoformat(partition)
    wm = sql.Identifier(feed.source.watermark)
    cond = sql.SQL("{wm} < {end}").format(wm=wm, end=sql.Literal(str(day + timedelta(days=1))))
    if not first:
        cond = sql.SQL("{} and {wm} >= {start}").format(cond, wm=wm, start=sql.Literal(str(day)))
    return cond


def _copy_database(
    conn,
    feed: Feed,
    source_url: str,
    partition: str,
    first: bool,
    batch_id: str,
    result: LoadResult,
    first_partition: str = "",
) -> None:
    src: DatabaseSource = feed.source
    if not source_url:
        raise JxError(
            f"feed {feed.id}: no source database configured", fix="export JX_SOURCE_DB_URL=postgresql://..."
        )
    table = sql.SQL("{}.{}").format(sql.Identifier(feed.department), sql.Identifier(src.table))
    wm = sql.Identifier(src.watermark)
    with connect(source_url, what=f"source database of feed {feed.id}", wait=STEP_WAIT_S) as source:
        found = [
            r[0]
            for r in source.execute(
                "select column_name from information_schema.columns where table_schema = %s and table_name = %s"
                " order by ordinal_position",
                (feed.department, src.table),
            ).fetchall()
        ]
        if not found:
            raise JxError(
                f"feed {feed.id}: table {feed.department}.{src.table} not found in the source database",
                fix="check the feed's source.table in the catalog and the source database URL",
            )
        extra = check_drift(feed, f"table {feed.department}.{src.table}", found)
        result.extra_columns = extra
        if not first:  # rows written into days already loaded would fall outside every later window
            late_rows.check(conn, source, feed, partition, first_partition)
        extra_json = (
            sql.SQL("json_build_object({})::text").format(
                sql.SQL(", ").join(sql.SQL("{}, {}").format(sql.Literal(c), sql.Identifier(c)) for c in extra)
            )
            if extra
            else sql.SQL("null")
        )
        cond = source_window(feed, partition, first)
        key = sql.SQL(", ").join(sql.Identifier(k) for k in feed.key)
        select = sql.SQL(
            "select {cols}, {extra}, {batch}, {part}, {file}, row_number() over w, row_number() over w"
            " from {table} where {cond} window w as (order by {wm}, {key})"
        ).format(
            cols=sql.SQL(", ").join(sql.SQL("{}::text").format(sql.Identifier(c)) for c in feed.columns),
            extra=extra_json,
            batch=sql.Literal(batch_id),
            part=sql.Literal(partition),
            file=sql.Literal(f"db:{feed.department}.{src.table}"),
            wm=wm,
            key=key,
            table=table,
            cond=cond,
        )
        target = sql.SQL(", ").join(sql.Identifier(c) for c in raw_columns(feed) + list(LINEAGE))
        with (
            source.cursor().copy(sql.SQL("copy ({}) to stdout").format(select)) as out,
            conn.cursor().copy(sql.SQL("copy {} ({}) from stdin").format(raw_table(feed), target)) as into,
        ):
            for data in out:
                into.write(data)
        n = conn.execute(
            sql.SQL("select count(*) from {} where _partition = %s").format(raw_table(feed)), (partition,)
        ).fetchone()[0]
    result.files = [f"db:{feed.department}.{src.table}"]
    result.rows_read = result.rows_loaded = n


def load_partition(
    conn: psycopg.Connection,
    feed: Feed,
    partition: str,
    batch_id: str,
    *,
    world: Path,
    source_url: str = "",
    first_partition: str = "",
) -> LoadResult:
    """Replace the raw rows of one feed partition, atomically; returns the accounting."""
    result = LoadResult(feed.id, partition, batch_id)
    rejects: list[tuple] = []
    with conn.transaction():
        locks.load(conn, "raw", feed.id)  # a concurrent load of this feed waits here, then reloads
        ensure_raw_table(conn, feed)
        new_day_partition(conn, feed, partition, batch_id)
        conn.execute(
            "delete from quality.rejects where feed_id = %s and partition_key = %s and stage = 'raw'",
            (feed.id, partition),
        )
        if isinstance(feed.source, DatabaseSource):
            _copy_database(
                conn,
                feed,
                source_url,
                partition,
                partition <= first_partition,
                batch_id,
                result,
                first_partition,
            )
        else:
            for path in landing_files(world, feed, partition):
                file_rejects: list[tuple] = []
                _copy_file(conn, feed, path, partition, batch_id, result, file_rejects)
                rejects += [(feed.id, partition, "raw", batch_id, str(path), *r) for r in file_rejects]
        result.rows_rejected = len(rejects)  # rows_loaded was counted file by file: it numbers the row ids
        if rejects:
            with conn.cursor().copy(
                "copy quality.rejects (feed_id, partition_key, stage, batch_id, source_file,"
                " row_number, column_name, reason, value) from stdin"
            ) as copy:
                for r in rejects:
                    copy.write_row(r)
        conn.execute(
            """insert into quality.load_audit (feed_id, partition_key, stage, batch_id, source_files, rows_read,
                                               rows_loaded, rows_rejected, extra_columns)
               values (%s, %s, 'raw', %s, %s, %s, %s, %s, %s)
               on conflict (feed_id, partition_key, stage) do update set
                 batch_id = excluded.batch_id, source_files = excluded.source_files, rows_read = excluded.rows_read,
                 rows_loaded = excluded.rows_loaded, rows_rejected = excluded.rows_rejected,
                 extra_columns = excluded.extra_columns, loaded_at = now()""",
            (
                feed.id,
                partition,
                batch_id,
                result.files,
                result.rows_read,
                result.rows_loaded,
                result.rows_rejected,
                result.extra_columns,
            ),
        )
    return result
