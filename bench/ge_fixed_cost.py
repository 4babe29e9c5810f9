"""What one feed partition's Great Expectations validation costs, and how much of it is fixed.

Issue 13 asks for the per-partition fixed cost (GE ~0.33 s a feed partition at scale 0.001) down to 30 ms. This
times ``expectations.suite`` + ``expectations.validate`` (exactly what the staged asset runs) on a feed's canonical
columns at several partition sizes, against a baseline measured in the same run: the same completeness figures
computed by pandas directly (``notna().mean()`` per column). A time that does not grow with the rows is GE's
own bookkeeping (its metric graph is built per expectation), not the data.

    .venv/bin/python bench/ge_fixed_cost.py --feed gaj_hjrk --rows 20 2000 200000

With ``--warehouse-partitions N`` it then times, on N staged partitions of this checkout's warehouse (run
`make demo` first), what the staged asset now runs — ``expectations.check``: the catalog's expectations counted
in one SQL statement, GE only for a feed's own — against the GE path on the same partition (read into pandas,
suite, validate), and counts the partitions where the two results differ (they must not).

    .venv/bin/python bench/ge_fixed_cost.py --rows 20 --warehouse-partitions 200
"""

from __future__ import annotations

import argparse
import json
import time

import pandas as pd

from jx_pipeline.catalog import load_catalog
from jx_pipeline.lib import expectations, staging


def _frame(feed, rows: int) -> pd.DataFrame:
    """Every canonical column filled but for one value in ten (the figures need not be realistic, only sized)."""
    return pd.DataFrame(
        {c: [None if i % 10 == 0 else "x" for i in range(rows)] for c in staging.fields(feed)}
    )


def _time(fn, repeat: int) -> float:
    fn()  # warm: GE's context and the feed's batch definition are made once per process
    start = time.perf_counter()
    for _ in range(repeat):
        fn()
    return (time.perf_counter() - start) / repeat


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--feed", default="gaj_hjrk")
    p.add_argument("--rows", type=int, nargs="+", default=[20, 2000, 200000])
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--warehouse-partitions", type=int, default=0)
    args = p.parse_args()
    feed = load_catalog().feed(args.feed)
    for rows in args.rows:
        df = _frame(feed, rows)
        n = len(expectations.suite(feed, rows).expectations)
        ge = _time(
            lambda df=df, rows=rows: expectations.validate(feed, df, expectations.suite(feed, rows)),
            args.repeat,
        )
        base = _time(lambda df=df: df.notna().mean().to_dict(), args.repeat)
        print(
            json.dumps(
                {
                    "feed": feed.id,
                    "rows": rows,
                    "expectations": n,
                    "ge_ms": round(ge * 1000, 1),
                    "ge_ms_per_expectation": round(ge * 1000 / n, 1),
                    "pandas_ms": round(base * 1000, 2),
                    "ratio": round(ge / base, 1),
                }
            ),
            flush=True,
        )
    if args.warehouse_partitions:
        print(json.dumps(_warehouse(args.warehouse_partitions)), flush=True)


def _warehouse(limit: int) -> dict:
    """SQL path vs GE path on real staged partitions, one after the other on each."""
    from jx_pipeline.lib import settings
    from jx_pipeline.lib.pg import connect

    catalog = {f.id: f for f in load_catalog().feeds}
    sql_s = ge_s = 0.0
    n = differ = rows = 0
    with connect(settings.resolve_urls()[0]) as conn:
        parts = conn.execute(
            "select feed_id, partition_key, rows_loaded from quality.load_audit where stage = 'staged'"
            " order by feed_id, partition_key"
        ).fetchall()
        for feed_id, partition, loaded in [p for p in parts if p[0] in catalog][:limit]:
            feed = catalog[feed_id]
            expectations.check(conn, feed, partition)  # warm: the first call per feed registers it in GE
            start = time.perf_counter()
            ours, _ = expectations.check(conn, feed, partition)
            sql_s += time.perf_counter() - start
            start = time.perf_counter()
            df = expectations.frame(conn, feed, partition)
            theirs = expectations.validate(feed, df, expectations.suite(feed, len(df)))
            ge_s += time.perf_counter() - start
            n, rows = n + 1, rows + loaded
            differ += expectations.comparable(ours) != expectations.comparable(theirs)
            conn.rollback()
    return {
        "partitions": n,
        "mean_rows": round(rows / max(n, 1)),
        "sql_ms_per_partition": round(sql_s * 1000 / max(n, 1), 2),
        "ge_ms_per_partition": round(ge_s * 1000 / max(n, 1), 1),
        "ratio": round(ge_s / sql_s, 1) if sql_s else None,
        "partitions_differing": differ,
    }


if __name__ == "__main__":
    main()
