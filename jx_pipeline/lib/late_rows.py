"""Rows of a database feed that arrived after their landing day was loaded.

A database feed loads a day by watermark (``source_window``). A row written later with a watermark in a day
already loaded — a backdated insert, a transaction that committed after the day's load, a clock set back — is
outside every later window, so it would never be loaded and nobody would know. Before each partition (after the
first) the source's (key, watermark) pairs of earlier days are compared with raw; rows missing from a day that
was loaded stop the load with the days to re-run, which then take them in (nothing lost, nothing duplicated,
and the day's own count still matches the source). The comparison reads the key and watermark of every earlier
source row: a second per million rows, paid only by database feeds.
"""

from __future__ import annotations

import psycopg
from psycopg import sql

from jx_pipeline.catalog.schema import Feed, pg_column_name
from jx_pipeline.lib.errors import JxError


def check(
    conn: psycopg.Connection, source: psycopg.Connection, feed: Feed, partition: str, first: str
) -> None:
    """Raise if source rows with a watermark before ``partition`` belong to a loaded partition but are not in
    raw (``first``: the first partition, which takes everything written before it)."""
    src = feed.source
    pair = [*feed.key, src.watermark]
    signature = sql.SQL("row({})::text").format(
        sql.SQL(", ").join(sql.SQL("{}::text").format(sql.Identifier(c)) for c in pair)
    )
    conn.execute("create temporary table jx_late_check (sig text, day text)")
    select = sql.SQL("select {sig}, left({wm}::text, 10) from {table} where {wm} < {day}").format(
        sig=signature,
        wm=sql.Identifier(src.watermark),
        table=sql.Identifier(feed.department, src.table),
        day=sql.Literal(partition),
    )
    with (
        source.cursor().copy(sql.SQL("copy ({}) to stdout").format(select)) as out,
        conn.cursor().copy("copy jx_late_check from stdin") as into,
    ):
        for data in out:
            into.write(data)
    raw_signature = sql.SQL("row({})::text").format(
        sql.SQL(", ").join(sql.Identifier(pg_column_name(c)) for c in pair)
    )
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
