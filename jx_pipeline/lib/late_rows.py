"""Rows of a database feed that arrived after their landing day was loaded.

A database feed loads a day by watermark (``source_window``). A row written later with a watermark in a day
already loaded — a backdated insert, a transaction that committed after the day's load, a clock set back — is
outside every later window, so it would never be loaded and nobody would know. Before each partition (after the
first) the source's (key, watermark) pairs of earlier days are compared with raw; rows missing from a day that
was loaded stop the load with the days to re-run, which then take them in (nothing lost, nothing duplicated,
and the day's own count still matches the source).

Reading the key and watermark of every earlier source row at every load would grow with the feed's history, not
with the day's change. So the source first sums, per earlier day, its rows and their (key, watermark) hashes; only
the days whose sum differs from the one verified last time (``quality.late_row_digest``) have their rows read and
compared, and the sums are remembered once they pass. Both reads see one snapshot of the source.
"""

from __future__ import annotations

import psycopg
from psycopg import sql

from jx_pipeline.catalog.schema import Feed, pg_column_name
from jx_pipeline.lib.errors import JxError


def _signature(columns: list[str], cast: bool) -> sql.Composable:
    cols = [sql.SQL("{}::text" if cast else "{}").format(sql.Identifier(c)) for c in columns]
    return sql.SQL("row({})::text").format(sql.SQL(", ").join(cols))


def _changed_days(
    conn: psycopg.Connection, source: psycopg.Connection, feed: Feed, partition: str, first: str
) -> list[tuple[str, int, int]]:
    """The earlier days (owner partitions) whose source rows differ from the digest verified last, with the
    source's digest now: (day, rows, hash sum)."""
    src = feed.source
    owner = sql.SQL("greatest(left({wm}::text, 10), {first})").format(
        wm=sql.Identifier(src.watermark), first=sql.Literal(first)
    )
    now = source.execute(
        sql.SQL(
            "select {owner}, count(*), coalesce(sum(hashtext({sig})::numeric), 0) from {table}"
            " where {wm} < {day} group by 1"
        ).format(
            owner=owner,
            sig=_signature([*feed.key, src.watermark], cast=True),
            table=sql.Identifier(feed.department, src.table),
            wm=sql.Identifier(src.watermark),
            day=sql.Literal(partition),
        )
    ).fetchall()
    known = {
        d: (n, h)
        for d, n, h in conn.execute(
            "select day, rows, digest from quality.late_row_digest where feed_id = %s", (feed.id,)
        ).fetchall()
    }
    return [(d, n, h) for d, n, h in now if known.get(d) != (n, h)]


def check(
    conn: psycopg.Connection, source: psycopg.Connection, feed: Feed, partition: str, first: str
) -> None:
    """Raise if source rows with a watermark before ``partition`` belong to a loaded partition but are not in
    raw (``first``: the first partition, which takes everything written before it). ``source`` is read in one
    snapshot (a repeatable-read transaction of its own, ended before returning)."""
    src = feed.source
    pair = [*feed.key, src.watermark]
    source.commit()  # what it read before (its columns) needs no snapshot of ours
    source.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
    try:
        changed = _changed_days(conn, source, feed, partition, first)
        if not changed:
            return
        conn.execute("create temporary table jx_late_check (sig text, day text)")
        select = sql.SQL(
            "select {sig}, left({wm}::text, 10) from {table} where {wm} < {day}"
            " and greatest(left({wm}::text, 10), {first}) = any({days})"
        ).format(
            sig=_signature(pair, cast=True),
            wm=sql.Identifier(src.watermark),
            table=sql.Identifier(feed.department, src.table),
            day=sql.Literal(partition),
            first=sql.Literal(first),
            days=sql.Literal([d for d, _, _ in changed]),
        )
        with (
            source.cursor().copy(sql.SQL("copy ({}) to stdout").format(select)) as out,
            conn.cursor().copy("copy jx_late_check from stdin") as into,
        ):
            for data in out:
                into.write(data)
    finally:
        source.commit()
        source.isolation_level = None
    raw_signature = _signature([pg_column_name(c) for c in pair], cast=False)
    late = conn.execute(
        sql.SQL(
            "select greatest(t.day, %(first)s) as owner, count(*), min(t.sig) from jx_late_check t"
            " where greatest(t.day, %(first)s) in (select partition_key from quality.load_audit"
            "   where feed_id = %(feed)s and stage = 'raw')"
            " and not exists (select 1 from raw.{raw} r where {raw_sig} = t.sig)"
            " group by 1 order by 1"
        ).format(raw=sql.Identifier(feed.id), raw_sig=raw_signature),
        {"first": first, "feed": feed.id},
    ).fetchall()
    conn.execute("drop table jx_late_check")
    if late:
        days = [d for d, _, _ in late]
        total = sum(n for _, n, _ in late)
        raise JxError(
            f"feed {feed.id} table {feed.department}.{src.table}: {total} row(s) with a {src.watermark} in"
            f" day(s) already loaded ({', '.join(f'{d}: {n}' for d, n, _ in late)}) are not in raw, e.g."
            f" ({', '.join(pair)}) = {late[0][2]}; they were written after that day's load (a backdated"
            f" {src.watermark} or a late commit) and no later partition would load them",
            fix=f"re-materialize raw and staged {feed.id} for {', '.join(days)} (jx-pipeline materialize --select"
            f" <its assets> --partition-range {days[0]}...{days[-1]}), then re-run {partition}",
        )
    loaded = {
        d
        for (d,) in conn.execute(
            "select partition_key from quality.load_audit where feed_id = %s and stage = 'raw'", (feed.id,)
        ).fetchall()
    }
    for d, n, h in changed:
        if d in loaded:  # a day not loaded yet is checked again when it is
            conn.execute(
                "insert into quality.late_row_digest (feed_id, day, rows, digest) values (%s, %s, %s, %s)"
                " on conflict (feed_id, day) do update set rows = excluded.rows, digest = excluded.digest,"
                " checked_at = now()",
                (feed.id, d, n, h),
            )
