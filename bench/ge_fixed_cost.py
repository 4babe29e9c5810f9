"""What one feed partition's Great Expectations validation costs, and how much of it is fixed.

Issue 13 asks for the per-partition fixed cost (GE ~0.33 s a feed partition at scale 0.001) down to 30 ms. This
times ``expectations.suite`` + ``expectations.validate`` (exactly what the staged asset runs) on a feed's canonical
columns at several partition sizes, against a baseline measured in the same run: the same completeness figures
computed by pandas directly (``notna().mean()`` per column). A time that does not grow with the rows is GE's
own bookkeeping (its metric graph is built per expectation), not the data.

    .venv/bin/python bench/ge_fixed_cost.py --feed gaj_hjrk --rows 20 2000 200000
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


if __name__ == "__main__":
    main()
