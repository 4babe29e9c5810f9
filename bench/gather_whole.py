"""Benchmark: a whole rebuild's gathering of every current record, one insert per feed vs one statement.

Linking and identity resolution read every feed's current records into their working tables when they rebuild
everything (a first run, a ``full`` one, a change of their rules). An insert per feed runs in one process (an
``INSERT … SELECT`` never gets parallel workers); one ``create table … as`` over the union of all feeds does,
since the working tables live where parallel workers read them (lib/work_schema.py). This times both ways on a
loaded warehouse, alternating, each in a transaction rolled back (nothing is written), and prints the records
gathered and the seconds.

    .venv/bin/python bench/gather_whole.py --warehouse URL --repeat 2
"""

from __future__ import annotations

import argparse
import json
import time

from jx_pipeline.catalog import load_catalog
from jx_pipeline.lib import changes, identity, linking, work_schema
from jx_pipeline.lib.pg import connect
from jx_pipeline.lib.warehouse import run_sql, session_memory

COUNT = {
    "linking": "select count(*) from link_rec",
    "identity": "select (select count(*) from ident_person) + (select count(*) from ident_org)",
}


def once(url: str, catalog, rebuild: str, way: str) -> dict:
    with connect(url) as conn:
        session_memory(conn)
        schema = work_schema.LINKING if rebuild == "linking" else work_schema.IDENTITY
        with conn.transaction(force_rollback=True), work_schema.opened(conn, schema):
            run_sql(conn, "core/link_records.sql" if rebuild == "linking" else "core/identity_records.sql")
            start = time.perf_counter()
            if rebuild == "linking" and way == "per feed":
                for feed in catalog.feeds:
                    linking._gather(conn, feed)
            elif rebuild == "linking":
                changes.gather_whole(conn, catalog, linking._select, "link_rec")
            elif way == "per feed":
                for feed in catalog.feeds:
                    identity._read(conn, feed)
            else:
                identity._read_whole(conn, catalog)
            seconds = time.perf_counter() - start
            records = conn.execute(COUNT[rebuild]).fetchone()[0]
    return {"rebuild": rebuild, "way": way, "records": records, "seconds": round(seconds, 2)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--warehouse", required=True, help="URL of a loaded warehouse")
    p.add_argument("--repeat", type=int, default=2)
    args = p.parse_args()
    catalog = load_catalog()
    for _ in range(args.repeat):
        for rebuild in COUNT:
            for way in ("per feed", "one statement"):
                print(json.dumps(once(args.warehouse, catalog, rebuild, way)), flush=True)


if __name__ == "__main__":
    main()
