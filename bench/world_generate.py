"""Benchmark: `jx-pipeline world generate` wall time, records/s and peak memory at given scales.

Baseline in the same run: writing the same number of truth rows as one plain CSV with pandas (the I/O floor
of producing that many rows, without any generation). Targets (issue 3): scale 0.01 <= 60 s, scale 0.1
<= 10 min, peak memory <= 4 GB (PSS summed over the main process and its workers).

    .venv/bin/python bench/world_generate.py --scales 0.01 0.1 --days 1
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd


def _tree_memory_kb(pid: int) -> tuple[int, int]:
    """(RSS, PSS) summed over a process and its descendants, from /proc. RSS counts pages that forked workers
    share with their parent once per process; PSS splits them, so its sum is the memory really in use."""
    rss, pss, todo = 0, 0, [pid]
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
        except (OSError, IndexError, ValueError):
            continue
    while todo:
        p = todo.pop()
        try:
            for line in Path(f"/proc/{p}/smaps_rollup").read_text().splitlines():
                if line.startswith("Rss:"):
                    rss += int(line.split()[1])
                elif line.startswith("Pss:"):
                    pss += int(line.split()[1])
        except OSError:
            pass
        todo.extend(children.get(p, []))
    return rss, pss


def run(scale: float, days: int, seed: int, workdir: Path) -> dict:
    out = workdir / f"world_{scale}"
    cmd = [
        str(Path(sys.executable).with_name("jx-pipeline")),
        "world",
        "generate",
        "--scale",
        str(scale),
        "--seed",
        str(seed),
        "--days",
        str(days),
        "--out",
        str(out),
        "--source-db",
        "none",
        "--quiet",
    ]
    started = time.monotonic()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL)
    peak_rss = peak_pss = 0
    while proc.poll() is None:
        rss, pss = _tree_memory_kb(proc.pid)
        peak_rss, peak_pss = max(peak_rss, rss), max(peak_pss, pss)
        time.sleep(0.5)
    wall = time.monotonic() - started
    if proc.returncode:
        raise SystemExit(f"generation failed at scale {scale} (exit {proc.returncode})")
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    records = manifest["counts"]["records"]
    truth = pd.read_parquet(out / "truth" / "records.parquet")
    t0 = time.monotonic()
    truth.to_csv(workdir / "baseline.csv", index=False)
    base = time.monotonic() - t0
    size = sum((out / p).stat().st_size for p in manifest["files"])
    return {
        "scale": scale,
        "days": days,
        "records": records,
        "wall_s": round(wall, 1),
        "records_per_s": round(records / wall),
        "peak_pss_mb": round(peak_pss / 1024),
        "peak_rss_sum_mb": round(peak_rss / 1024),
        "baseline_csv_s": round(base, 1),
        "ratio_to_baseline": round(wall / base, 1),
        "output_mb": round(size / 2**20),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--scales", type=float, nargs="+", default=[0.01])
    ap.add_argument("--days", type=int, default=1)
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        for scale in args.scales:
            r = run(scale, args.days, args.seed, Path(tmp))
            print(
                f"scale {r['scale']}: {r['records']:,} records in {r['wall_s']} s = {r['records_per_s']:,} records/s; "
                f"peak memory {r['peak_pss_mb']:,} MB PSS ({r['peak_rss_sum_mb']:,} MB RSS summed over processes); output {r['output_mb']:,} MB; "
                f"plain CSV of the same rows {r['baseline_csv_s']} s -> generation is {r['ratio_to_baseline']}x that"
            )
            print(json.dumps(r))


if __name__ == "__main__":
    main()
