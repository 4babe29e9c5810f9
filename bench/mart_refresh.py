"""Benchmark: a day's mart refresh (the records of one landing day read again) against a refresh that reads every
record (``full``), measured in the same run on the same warehouse.

The day is made by noting the records of a landing day (the latest by default) in ``staged._mart_change``, as the
triggers on core.entity_link and core.identity_member note a record whose link or membership changed: the refresh
then reads them again, rewrites their kept inputs, brings the sums and counts up to date and rebuilds every mart.
The records themselves did not change, so every round must leave the marts as they were: each round prints a
digest of every mart, and the run fails if one differs from the first round's or from the full refresh's.

``--adopt-key`` writes this code's key of the kept inputs before each round, so that code of another version (a
worktree on ``PYTHONPATH``) and this one can be compared on one warehouse without each reading every record the
first time; only for a scratch warehouse whose kept inputs both versions make alike (code without the kept
counts per feed leaves them as they were: right only because the rounds change no record). That code needs
``marts.compared_columns`` (lib/marts.py), which this bench reads.

    .venv/bin/python bench/mart_refresh.py --rounds 3 --warehouse URL
"""

from __future__ import annotations

import argparse
import json
import os
import time

from psycopg import sql

from jx_pipeline.catalog import load_catalog
from jx_pipeline.lib import marts
from jx_pipeline.lib.pg import connect


def digest(conn) -> dict[str, str]:
    """Per mart, a digest of its rows in order (the service catalog's refresh time left out) and their count."""
    out = {}
    for name in marts.MARTS:
        cols = marts.compared_columns(conn, name)
        row = sql.SQL("row({})::text").format(sql.SQL(", ").join(map(sql.Identifier, cols)))
        out[name] = "{} rows {}".format(
            *conn.execute(
                sql.SQL(
                    "select count(*), md5(coalesce(string_agg({0}, '|' order by {0}), '')) from {1}"
                ).format(row, sql.Identifier("mart", name))
            ).fetchone()
        )
    return out


def one_round(conn, catalog, day: str | None, full: bool, adopt_key: bool) -> dict:
    if adopt_key:
        conn.execute("update staged._mart_input_key set key = %s", (marts._input_key(conn, catalog),))
    noted = conn.execute(
        "insert into staged._mart_change (feed_id, record_key) select feed_id, record_key from staged._mart_record"
        " where _partition = coalesce(%s, (select max(_partition) from staged._mart_record))",
        (day,),
    ).rowcount
    conn.commit()
    stats: dict = {}
    started = time.perf_counter()
    marts.refresh(conn, catalog, full=full, stats=stats)
    conn.commit()
    seconds = time.perf_counter() - started
    return {"full": full, "noted": noted, **stats, "seconds": round(seconds, 1), "marts": digest(conn)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--warehouse", default=os.environ.get("JX_WAREHOUSE_URL"), help="the warehouse's URL")
    ap.add_argument("--rounds", type=int, default=3, help="day refreshes, at least 1 (a full one follows)")
    ap.add_argument("--day", help="the landing day whose records are noted (default: the latest)")
    ap.add_argument("--no-full", action="store_true", help="skip the full refresh")
    ap.add_argument("--adopt-key", action="store_true", help="see the module's docstring")
    args = ap.parse_args()
    if not args.warehouse or args.rounds < 1:
        raise SystemExit("--warehouse (or JX_WAREHOUSE_URL) and --rounds of at least 1 are required")
    catalog = load_catalog()
    rows = []
    with connect(args.warehouse) as conn:
        for _ in range(args.rounds):
            rows.append(one_round(conn, catalog, args.day, False, args.adopt_key))
            print(json.dumps(rows[-1]), flush=True)
        if not args.no_full:
            rows.append(one_round(conn, catalog, args.day, True, args.adopt_key))
            print(json.dumps(rows[-1]), flush=True)
    if any(r["marts"] != rows[0]["marts"] for r in rows):
        raise SystemExit("the marts differ between rounds: see the digests above")
    days = [r["seconds"] for r in rows if not r["full"]]
    if days:
        summary = {"day_refresh_s": sorted(days)[len(days) // 2], "records_read": rows[0]["records_read"]}
        if not args.no_full:
            summary |= {
                "full_refresh_s": rows[-1]["seconds"],
                "ratio": round(rows[-1]["seconds"] / max(summary["day_refresh_s"], 0.1), 1),
            }
        print(json.dumps(summary))


if __name__ == "__main__":
    main()
