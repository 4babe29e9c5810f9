"""Benchmark: loading one feed file into raw with our loader, against psql's COPY and pandas to_sql.

All three in one run, on the same files and the same local PostgreSQL:
  - `psql \\copy` of the same file into a plain (logged, unindexed) table of text columns: the limit here;
  - our `ingest.load_partition` (decode, drift check, NUL scan, lineage, COPY, audit);
  - pandas `DataFrame.to_sql` (SQLAlchemy, default inserts) on a 100,000-row slice, reported as rows/s.
Files of two sizes show whether memory grows with the file (peak RSS of a child process per load).
Timings are the best of ``--repeat`` alternating runs of psql and ours: single runs here vary by ±30 %.

    .venv/bin/python bench/ingest_load.py --rows 200000 1000000 --repeat 3
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pcsv

from jx_pipeline.catalog import load_catalog
from jx_pipeline.lib import settings
from jx_pipeline.world import vocab

FEED = "gaj_ldrk"  # a CSV feed, GBK in the catalog


def make_file(path: Path, rows: int, encoding: str) -> None:
    feed = load_catalog().feed(FEED)
    rng = np.random.default_rng(1)
    chars = np.array(list(vocab.GIVEN_CHARS))
    roads = np.array(vocab.ROAD_STEMS)
    cols = {}
    for src, canon in feed.columns.items():
        if canon == "record_key":
            cols[src] = np.char.add("LDRK", np.arange(rows).astype(str))
        elif canon == "person_name":
            cols[src] = np.char.add(
                np.char.add(rng.choice(list(vocab.SURNAMES), rows), rng.choice(chars, rows)),
                rng.choice(chars, rows),
            )
        elif canon == "address":
            cols[src] = np.char.add(
                np.char.add("嘉兴市南湖区建设街道", rng.choice(roads, rows)),
                np.char.add("路", rng.integers(1, 300, rows).astype(str)),
            )
        else:
            cols[src] = rng.integers(10**8, 10**9, rows).astype(str)
    table = pa.table({k: pa.array(v.tolist(), pa.string()) for k, v in cols.items()})
    utf8 = path.with_suffix(".utf8")
    pcsv.write_csv(table, utf8)
    if encoding == "utf-8":
        utf8.rename(path)
    else:
        with utf8.open(encoding="utf-8") as src, path.open("w", encoding=encoding) as dst:
            for chunk in iter(lambda: src.read(1 << 22), ""):
                dst.write(chunk)
        utf8.unlink()


CHILD = r"""
import json, sys, time
from pathlib import Path
from jx_pipeline.catalog import load_catalog
from jx_pipeline.lib import ingest, settings
from jx_pipeline.lib.pg import connect
feed = load_catalog().feed(sys.argv[1]).model_copy(update={"source": load_catalog().feed(sys.argv[1]).source.model_copy(update={"encoding": sys.argv[2]})})
world = Path(sys.argv[3])
with connect(settings.resolve_urls()[0]) as conn:
    t = time.monotonic()
    r = ingest.load_partition(conn, feed, "2026-11-01", "bench", world=world)
    wall = time.monotonic() - t
    conn.execute(f'delete from raw."{feed.id}" where _batch_id = %s', ("bench",))
    conn.execute("delete from quality.load_audit where batch_id = %s", ("bench",))
    conn.commit()
# VmHWM, not ru_maxrss: Linux carries ru_maxrss over from the forking parent, VmHWM is this program's own peak
hwm = next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM:"))
print(json.dumps({"rows": r.rows_loaded, "wall": wall, "peak_mb": hwm / 1024}))
"""


def ours(world: Path, encoding: str) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", CHILD, FEED, encoding, str(world)],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, **settings.dagster_env()},
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def psql_copy(path: Path, encoding: str, ncols: int, cols: list[str]) -> float:
    url = settings.resolve_urls()[0]
    ddl = ", ".join(f'"{c.lower()}" text' for c in cols)
    subprocess.run(
        ["psql", url, "-qc", f"drop table if exists bench_copy; create table bench_copy ({ddl})"],
        check=True,
    )
    t = time.monotonic()
    subprocess.run(
        [
            "psql",
            url,
            "-qc",
            f"\\copy bench_copy from '{path}' with (format csv, header true, encoding '{encoding.upper().replace('-', '')}')",
        ],
        check=True,
    )
    wall = time.monotonic() - t
    subprocess.run(["psql", url, "-qc", "drop table bench_copy"], check=True)
    return wall


def to_sql_rate(path: Path, encoding: str) -> float:
    import pandas as pd
    import sqlalchemy as sa

    frame = pd.read_csv(path, encoding=encoding, dtype=str, nrows=100_000, keep_default_na=False)
    engine = sa.create_engine(settings.resolve_urls()[0].replace("postgresql://", "postgresql+psycopg2://"))
    t = time.monotonic()
    frame.to_sql("bench_to_sql", engine, if_exists="replace", index=False)
    wall = time.monotonic() - t
    with engine.begin() as c:
        c.execute(sa.text("drop table bench_to_sql"))
    return len(frame) / wall


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, nargs="+", default=[1_000_000])
    ap.add_argument(
        "--repeat", type=int, default=3, help="best of N, alternating psql and ours (noisy machine)"
    )
    args = ap.parse_args()
    cols = list(load_catalog().feed(FEED).columns)
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for rows in args.rows:
            for encoding in ("utf-8", "gbk"):
                world = Path(tmp) / f"w_{rows}_{encoding}"
                folder = world / "landing" / "gaj" / FEED / "2026-11-01"
                folder.mkdir(parents=True)
                path = folder / f"{FEED}.csv"
                make_file(path, rows, encoding)
                size = path.stat().st_size
                base, runs = float("inf"), []
                for _ in range(args.repeat):
                    base = min(base, psql_copy(path, encoding, len(cols), cols))
                    runs.append(ours(world, encoding))
                mine = {"wall": min(r["wall"] for r in runs), "peak_mb": max(r["peak_mb"] for r in runs)}
                sql_rate = to_sql_rate(path, encoding)
                r = {
                    "rows": rows,
                    "encoding": encoding,
                    "mb": round(size / 2**20),
                    "copy_rows_s": round(rows / base),
                    "ours_rows_s": round(rows / mine["wall"]),
                    "ratio_to_copy": round(base / mine["wall"], 2),
                    "to_sql_rows_s": round(sql_rate),
                    "ratio_to_to_sql": round(rows / mine["wall"] / sql_rate, 1),
                    "ours_peak_mb": round(mine["peak_mb"]),
                }
                results.append(r)
                print(
                    f"{rows:>9,} rows {encoding:<5} ({r['mb']} MB): psql COPY {r['copy_rows_s']:,} rows/s; "
                    f"ours {r['ours_rows_s']:,} rows/s = {r['ratio_to_copy']}x COPY; to_sql {r['to_sql_rows_s']:,} "
                    f"rows/s -> ours {r['ratio_to_to_sql']}x; our peak memory {r['ours_peak_mb']} MB",
                    flush=True,
                )
    print(json.dumps(results))


if __name__ == "__main__":
    main()
