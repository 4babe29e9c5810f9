"""Benchmark: staging rows/s per feed partition (standardize, reject, COPY into staged), against a plain COPY
of the same raw rows out of and back into PostgreSQL measured in the same run.

Reads partitions the warehouse already holds (the demo's by default: run `make demo` first); every staging is
done inside a transaction that is rolled back, so the warehouse is left as it was. One core: staging is a
single Python process per partition.

    .venv/bin/python bench/staging_throughput.py --top 5
"""

from __future__ import annotations

import argparse
import json
import time

from psycopg import sql

from jx_pipeline.catalog import load_catalog
from jx_pipeline.lib import settings, staging
from jx_pipeline.lib.pg import connect


def copy_baseline(conn, feed_id: str, partition: str) -> float:
    """Seconds to COPY the partition's raw rows out and into a temporary table of the same columns."""
    table = sql.Identifier("raw", feed_id)
    started = time.perf_counter()
    conn.execute(sql.SQL("create temp table bench_copy (like {}) on commit drop").format(table))
    with conn.cursor().copy(
        sql.SQL("copy (select * from {} where _partition = {}) to stdout").format(
            table, sql.Literal(partition)
        )
    ) as out:
        data = b"".join(bytes(chunk) for chunk in out)
    with conn.cursor().copy("copy bench_copy from stdin") as into:
        into.write(data)
    return time.perf_counter() - started


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--warehouse", help="warehouse URL (default: this checkout's)")
    p.add_argument("--top", type=int, default=5, help="the largest N raw partitions")
    p.add_argument("--feeds", nargs="*", help="these feeds' largest partitions instead")
    args = p.parse_args()
    url = args.warehouse or settings.resolve_urls()[0]
    catalog = load_catalog()
    rows = []
    with connect(url) as conn:
        parts = conn.execute(
            """select distinct on (feed_id) feed_id, partition_key, rows_loaded from quality.load_audit
                where stage = 'raw' and (%s::text[] is null or feed_id = any(%s))
                order by feed_id, rows_loaded desc""",
            (args.feeds, args.feeds),
        ).fetchall()
        parts = sorted(parts, key=lambda r: -r[2])[: args.top if not args.feeds else None]
        for feed_id, partition, loaded in parts:
            feed = catalog.feed(feed_id)
            base = copy_baseline(conn, feed_id, partition)
            conn.rollback()
            started = time.perf_counter()
            with conn.transaction(force_rollback=True):  # the staging's own transaction becomes a savepoint
                result = staging.stage_partition(conn, feed, partition, "bench")
                took = time.perf_counter() - started
            rows.append(
                {
                    "feed": feed_id,
                    "partition": partition,
                    "rows": result.rows_read,
                    "columns": len(feed.columns),
                    "staging_s": round(took, 3),
                    "staging_rows_per_s": round(result.rows_read / took),
                    "copy_rows_per_s": round(loaded / base),
                    "ratio_to_copy": round(base / took, 3),
                }
            )
    print("| feed | rows | columns | staging rows/s | COPY out+in rows/s | staging / COPY |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['feed']} {r['partition']} | {r['rows']:,} | {r['columns']} | {r['staging_rows_per_s']:,} "
            f"| {r['copy_rows_per_s']:,} | {r['ratio_to_copy']:.3f}× |"
        )
    total_rows, total_s = sum(r["rows"] for r in rows), sum(r["staging_s"] for r in rows)
    print(
        f"all: {total_rows:,} rows staged in {total_s:.1f} s, {total_rows / total_s:,.0f} rows/s on one core"
    )
    print(json.dumps(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
