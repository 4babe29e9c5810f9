"""Benchmark: the reads of a day's increment that touch every row, each the way the pipeline does it now against
the way it did before, alternating in one run on a warehouse that holds linked data (the end-to-end bench's,
`bench/end_to_end.py --keep`).

- a day's keys (the last landing day's records) joined with linking's memory and link rows: by index
  (``Memory.by_key``) vs the planner's hash of every row;
- every feed's current versions sorted with the fields read only (``staging.current(read=…)``) vs whole rows, as
  the links check's expected side (a key tally);
- the marts' persons check grouped vs ``count(distinct)``.

Nothing is written but temporary tables.

    .venv/bin/python bench/increment_reads.py --warehouse URL --repeat 2
"""

from __future__ import annotations

import argparse
import time

from psycopg import sql

from jx_pipeline.catalog import load_catalog
from jx_pipeline.lib import linking, settings, staging
from jx_pipeline.lib.pg import BY_KEY, connect, key_tally, settings_for

PERSONS = """select {} from core.identity_member m
               join core.entity_link l on l.feed_id = m.feed_id and l.record_key = m.record_key
              where m.kind = 'person' and l.entity_id is not null and l.feed_id = any(%s)"""


def timed(fn) -> tuple[float, object]:
    started = time.perf_counter()
    out = fn()
    return time.perf_counter() - started, out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--warehouse", help="warehouse URL (default: this checkout's)")
    p.add_argument("--repeat", type=int, default=2)
    args = p.parse_args()
    catalog = load_catalog()
    population = [f.id for f in catalog.feeds if f.domain == "population"]
    with connect(args.warehouse or settings.resolve_urls()[0]) as conn:
        conn.execute(
            "create temp table day_keys as select feed_id, record_key from staged._link_input"
            " where _partition = (select max(_partition) from staged._link_input)"
        )
        conn.execute("alter table day_keys add primary key (feed_id, record_key); analyze day_keys")
        keys = conn.execute("select count(*) from day_keys").fetchone()[0]
        # whole rows, as link_delta.sql takes them (a count alone is answered from the key index either way)
        day = (
            "create temp table bench_day as select m.* from {} m join day_keys w using (feed_id, record_key)"
        )

        def joins(how: dict) -> object:
            counts = []
            with settings_for(conn, **how):
                for table in ("staged._link_input", "core.entity_link"):
                    conn.execute(day.format(table))
                    counts.append(conn.execute("select count(*) from bench_day").fetchone()[0])
                    conn.execute("drop table bench_day")
            return counts

        def expected(read) -> object:
            selects = []
            for feed in catalog.feeds:
                latest = staging.current(conn, feed, read=read)
                if latest is not None:
                    selects.append(
                        sql.SQL("select {}::text as feed_id, record_key::text from {} where {}").format(
                            sql.Literal(feed.id), latest, linking.alive(feed)
                        )
                    )
            union = sql.SQL("({}) c").format(sql.SQL(" union all ").join(selects))
            return key_tally(conn, union, ("feed_id", "record_key"))

        cases = {
            f"a day's {keys:,} keys joined with the memory and the links": (
                lambda: joins(BY_KEY),
                lambda: joins({}),
            ),
            "the links check's expected side": (
                lambda: expected(linking.ALIVE_FIELDS),
                lambda: expected(None),
            ),
            "the marts' persons check": (
                lambda: conn.execute(
                    PERSONS.format("count(*) from (select m.master_key") + " group by 1) p", (population,)
                ).fetchone(),
                lambda: conn.execute(
                    PERSONS.format("count(distinct m.master_key)"), (population,)
                ).fetchone(),
            ),
        }
        for name, (now, before) in cases.items():
            now(), before()  # the pages read once, for both
            for _ in range(args.repeat):
                t_now, got_now = timed(now)
                t_before, got_before = timed(before)
                assert got_now == got_before, (name, got_now, got_before)
                print(
                    f"{name}: now {t_now:.2f} s, before {t_before:.2f} s ({t_before / t_now:.2f}x)",
                    flush=True,
                )


if __name__ == "__main__":
    main()
