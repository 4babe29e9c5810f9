"""Benchmark: staging rows/s per feed partition (standardize, reject, COPY into staged), against a plain COPY
of the same raw rows out of and back into PostgreSQL, and against staging with the fast path turned off (every
row standardized in Python), both measured in the same run.

Reads partitions the warehouse already holds (the demo's by default: run `make demo` first); every staging is
done inside a transaction that is rolled back, so the warehouse is left as it was. One core: staging is a
single Python process per partition, and its server process works while it waits (and the other way round);
rows per CPU second count the CPU time of both, and of every other server process meanwhile (parallel workers
included: run it on an otherwise idle server), read from /proc when the server runs on this machine.

    .venv/bin/python bench/staging_throughput.py --top 5
"""

from __future__ import annotations

import argparse
import json
import os
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


def _ticks(pid: int | str, children: bool = False) -> tuple[int, int]:
    """(parent pid, CPU ticks) of a process: its own, plus those of its children it has reaped."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[1]), sum(int(t) for t in fields[11 : 15 if children else 13])


def server_cpu(conn) -> float | None:
    """CPU seconds the whole server has used: the postmaster and every process it started, alive or ended
    (the connection's own, the parallel workers of its queries and index builds, the background ones, and any
    other client's: run it on an otherwise idle server). None when the server is not on this machine."""
    try:
        postmaster = _ticks(conn.info.backend_pid)[0]
        while True:  # a process reaped between the two reads would be counted in neither: read again
            reaped = _ticks(postmaster, children=True)[1]
            ticks = reaped
            for entry in os.scandir("/proc"):
                if entry.name.isdigit():
                    try:
                        parent, used = _ticks(entry.name)
                    except OSError:  # ended meanwhile
                        continue
                    ticks += used if parent == postmaster else 0
            if _ticks(postmaster, children=True)[1] == reaped:
                break
    except OSError:
        return None
    return ticks / os.sysconf("SC_CLK_TCK")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--warehouse", help="warehouse URL (default: this checkout's)")
    p.add_argument("--top", type=int, default=5, help="the largest N raw partitions")
    p.add_argument("--feeds", nargs="*", help="these feeds' largest partitions instead")
    p.add_argument("--all", action="store_true", help="every feed's largest partition")
    p.add_argument("--repeat", type=int, default=3, help="runs of each way per partition (the best counts)")
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
        parts = sorted(parts, key=lambda r: -r[2])[: args.top if not (args.feeds or args.all) else None]
        for feed_id, partition, loaded in parts:
            feed = catalog.feed(feed_id)
            base = copy_baseline(conn, feed_id, partition)
            conn.rollback()
            took, cpu, result = {}, {}, None
            for _ in range(args.repeat):  # alternating, so that both see the same machine
                for fast in (True, False):
                    staging.FAST = fast
                    started, ours, theirs = time.perf_counter(), time.process_time(), server_cpu(conn)
                    with conn.transaction(
                        force_rollback=True
                    ):  # the staging's transaction becomes a savepoint
                        got = staging.stage_partition(conn, feed, partition, "bench")
                    took[fast] = min(took.get(fast, 1e9), time.perf_counter() - started)
                    # CPU of our process and the server's: the work per core (the server otherwise idle)
                    used = time.process_time() - ours + ((server_cpu(conn) or 0) - (theirs or 0))
                    cpu[fast] = min(cpu.get(fast, 1e9), used)
                    result = got if fast else result
            staging.FAST = True
            rows.append(
                {
                    "feed": feed_id,
                    "partition": partition,
                    "rows": result.rows_read,
                    "rows_fast": result.rows_fast,
                    "columns": len(feed.columns),
                    "staging_s": round(took[True], 3),
                    "python_s": round(took[False], 3),
                    "staging_rows_per_s": round(result.rows_read / took[True]),
                    "staging_cpu_s": round(cpu[True], 3),
                    "staging_rows_per_cpu_s": round(result.rows_read / cpu[True]),
                    "python_rows_per_s": round(result.rows_read / took[False]),
                    "copy_rows_per_s": round(loaded / base),
                    "ratio_to_copy": round(base / took[True], 3),
                }
            )
    print(
        "| feed | rows | fast | columns | staging rows/s | per CPU second | Python only rows/s | COPY out+in rows/s"
        " | staging / COPY |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['feed']} {r['partition']} | {r['rows']:,} | {r['rows_fast'] / max(r['rows'], 1):.0%} | {r['columns']}"
            f" | {r['staging_rows_per_s']:,} | {r['staging_rows_per_cpu_s']:,} | {r['python_rows_per_s']:,}"
            f" | {r['copy_rows_per_s']:,}"
            f" | {r['ratio_to_copy']:.3f}× |"
        )
    total_rows = sum(r["rows"] for r in rows)
    fast_s, python_s = sum(r["staging_s"] for r in rows), sum(r["python_s"] for r in rows)
    cpu_s = sum(r["staging_cpu_s"] for r in rows)
    print(
        f"all: {total_rows:,} rows, {sum(r['rows_fast'] for r in rows) / max(total_rows, 1):.0%} by the fast path;"
        f" staged in {fast_s:.1f} s, {total_rows / fast_s:,.0f} rows/s on one core ({cpu_s:.1f} CPU s of our"
        f" process and the server's: {total_rows / cpu_s:,.0f} rows per CPU second); Python only {python_s:.1f} s,"
        f" {total_rows / python_s:,.0f} rows/s ({python_s / fast_s:.2f}x)"
    )
    print(json.dumps(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
