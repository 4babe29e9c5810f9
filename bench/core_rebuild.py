"""Benchmark: linking and identity resolution on a warehouse already loaded and staged (e.g. a demo's).

``bench/linking_scale.py`` builds its own worlds and warehouses; this one times the two rebuilds where the data
already is, at any scale: ``core/entity_link`` as a day's run does it (only the records changed since the last
run, and only texts not parsed before) and with ``full`` (every record linked, every text parsed again), then
identity resolution the same two ways. Per step: wall time, µs per current record, records linked or resolved
again, texts parsed, how the table was written, and this process's peak RSS (the rebuilds run in PostgreSQL; the
PostgreSQL backend's memory is bounded by its work_mem and the shared buffers, lib/warehouse.session_memory).

    .venv/bin/python bench/core_rebuild.py --warehouse-url "$(.venv/bin/jx-pipeline db url)"
    .venv/bin/python bench/core_rebuild.py --warehouse-url "$(JX_DB_PREFIX=s01 .venv/bin/jx-pipeline db url)" --full

It writes the same links and memberships the pipeline would (the rebuilds are idempotent).
"""

from __future__ import annotations

import argparse
import resource
import time

from jx_pipeline.catalog import load_catalog
from jx_pipeline.lib import identity, linking
from jx_pipeline.lib.migrations import migrate
from jx_pipeline.lib.pg import connect


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--warehouse-url", required=True)
    ap.add_argument("--full", action="store_true", help="also time full rebuilds (every record, every text)")
    args = ap.parse_args()
    catalog = load_catalog()
    with connect(args.warehouse_url) as conn:
        migrate(conn)
        conn.commit()
        steps = [("link", False)] + ([("link --full", True)] if args.full else [])
        for name, full in steps:
            stats: dict = {}
            t = time.perf_counter()
            counts = linking.link(conn, catalog, full=full, stats=stats)
            dt, n = time.perf_counter() - t, sum(counts.values())
            print(
                f"{name}: {dt:.1f} s, {n:,} records, {dt / n * 1e6:.1f} µs/record, read {stats['records_read']:,},"
                f" relinked {stats['records_relinked']:,}, texts parsed {stats['texts_parsed']:,}, rows {stats['mode']}"
                f" (-{stats['deleted']:,} +{stats['inserted']:,}), peak RSS {_peak_mb():.0f} MB",
                flush=True,
            )
        for name, full in [("identity", False)] + ([("identity --full", True)] if args.full else []):
            stats = {}
            t = time.perf_counter()
            members = identity.resolve(conn, catalog, full=full, stats=stats)
            dt, n = time.perf_counter() - t, sum(sum(c.values()) for c in members.values())
            print(
                f"{name}: {dt:.1f} s, {n:,} memberships, {dt / n * 1e6:.1f} µs/record, resolved"
                f" {stats['records_resolved']:,}, read {stats['records_read']:,},"
                f" peak RSS {_peak_mb():.0f} MB",
                flush=True,
            )


if __name__ == "__main__":
    main()
