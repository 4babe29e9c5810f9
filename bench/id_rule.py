"""Benchmark: how many resident IDs the old birthplace rule rejects against the rule "IDs as issued".

The old rule (python-stdnum's ``ric.get_birth_place``, used until issue 9) wants the area code in use IN the birth
year; an ID carries the code of the county that issued it, often decades after birth, so it rejects genuine IDs
of older residents. The new rule (``standardize.resident_id``) accepts a code in use at any time from the birth
year on. Both run over every id_number / legal_rep_id value of every feed of a generated world (landing files
and source-database tables), with the checks in the same order; the output counts rejects per rule and reason,
the values only one rule rejects, and each rule's throughput on the distinct values (the old rule's is the
baseline of the ratio).

    .venv/bin/jx-pipeline world generate --scale 0.001 --seed 7 --days 2 --out /tmp/world-ids
    .venv/bin/python bench/id_rule.py --world /tmp/world-ids
"""

import argparse
import json
import time
from collections import Counter
from datetime import date, timedelta
from functools import cache
from pathlib import Path

import pyarrow.parquet as pq
from stdnum.cn import ric
from stdnum.exceptions import InvalidComponent

from jx_pipeline.catalog import load_catalog
from jx_pipeline.catalog.schema import DatabaseSource
from jx_pipeline.lib import ingest, readers
from jx_pipeline.lib import standardize as std

ID_FIELDS = ("id_number", "legal_rep_id")


@cache
def _stdnum_birth_place_ok(area: str, year: str) -> bool:
    try:
        ric.get_birth_place(area + year + "01010000")
    except (InvalidComponent, KeyError):
        return False
    return True


@cache
def _real_date(yyyymmdd: str) -> bool:
    try:
        ric.get_birth_date("000000" + yyyymmdd + "0000")
    except InvalidComponent:
        return False
    return True


def old_rule(value: str, _latest: date | None = None) -> std.Result:
    """``standardize.resident_id`` as it was before issue 9 (commit d24fa95): the same form checks, then
    stdnum's birthplace rule."""
    v, reason = std.resident_id_form(value)
    if v is None:
        return None, reason
    if not _real_date(v[6:14]):
        return None, "id_birth_date"
    if not _stdnum_birth_place_ok(v[:6], v[6:10]):
        return None, "id_birth_place"
    return v, None


def id_values(world: Path) -> dict[str, list[tuple[str, date]]]:
    """Every non-empty ID value the world delivers with the day after its landing day (no birth may lie later, as
    in the staged layer), per feed.field: all days of files, whole source tables (landing on the last day)."""
    manifest = json.loads((world / "manifest.json").read_text(encoding="utf-8"))
    last = date.fromisoformat(manifest["start_date"]) + timedelta(days=manifest["days"] - 1)
    out: dict[str, list[tuple[str, date]]] = {}
    for feed in load_catalog().feeds:
        cols = {c: f for c, f in feed.columns.items() if f in ID_FIELDS}
        if not cols:
            continue
        if isinstance(feed.source, DatabaseSource):
            path = world / "sources" / feed.department / f"{feed.source.table}.parquet"
            table = pq.read_table(path, columns=list(cols))
            for col, field in cols.items():
                out[f"{feed.id}.{field}"] = [
                    (v, last + timedelta(days=1)) for v in table.column(col).to_pylist() if v and v.strip()
                ]
            continue
        days = sorted(p.name for p in (world / "landing" / feed.department / feed.id).glob("*") if p.is_dir())
        for day in days:
            latest = date.fromisoformat(day) + timedelta(days=1)
            for path in ingest.landing_files(world, feed, day):
                found = readers.header(feed, path)
                present = [c for c in found if c in cols]
                for batch in readers.batches(feed, path, found):
                    for col in present:
                        out.setdefault(f"{feed.id}.{cols[col]}", []).extend(
                            (v, latest) for v in batch.column(col).to_pylist() if v and v.strip()
                        )
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--world", type=Path, required=True, help="a folder written by `jx-pipeline world generate`"
    )
    ap.add_argument(
        "--examples", type=int, default=5, help="masked examples of IDs only the old rule rejects"
    )
    args = ap.parse_args()

    values = id_values(args.world)
    flat = [v for vs in values.values() for v in vs]
    distinct = sorted(set(flat))
    timing = {}
    results = {}
    for name, rule in (("old", old_rule), ("new", std.resident_id)):
        _stdnum_birth_place_ok.cache_clear()
        std._area_code_ok.cache_clear()
        std._birth_date.cache_clear()
        std.area_code_years.cache_clear()
        t = time.perf_counter()
        results[name] = {(v, d): rule(v, d) for v, d in distinct}
        timing[name] = time.perf_counter() - t

    print(
        f"world {args.world}: {len(flat):,} ID values ({len(distinct):,} distinct) in {len(values)} feed columns"
    )
    reasons = {name: Counter(results[name][v][1] for v in flat) for name in results}
    print(f"{'reason':<16}{'old rule':>10}{'new rule':>10}")
    for reason in sorted(set(reasons["old"]) | set(reasons["new"]), key=lambda r: (r is None, r)):
        label = reason or "kept"
        print(f"{label:<16}{reasons['old'][reason]:>10,}{reasons['new'][reason]:>10,}")
    rejected = {name: sum(n for r, n in reasons[name].items() if r) for name in results}
    print(
        f"{'rejected':<16}{rejected['old']:>10,}{rejected['new']:>10,}"
        f"   ({rejected['old'] / len(flat):.2%} -> {rejected['new'] / len(flat):.2%} of values)"
    )
    only_old = [v for v in flat if results["old"][v][1] and not results["new"][v][1]]
    only_new = [v for v in flat if results["new"][v][1] and not results["old"][v][1]]
    print(f"rejected by the old rule only: {len(only_old):,}; by the new rule only: {len(only_new):,}")
    if only_old:
        decades = Counter(results["new"][v][0][6:9] + "0s" for v in only_old)
        print(
            "  old-only rejects by birth decade:", ", ".join(f"{d} {n}" for d, n in sorted(decades.items()))
        )
        areas = Counter(results["new"][v][0][:6] for v in only_old)
        print("  by area code:", ", ".join(f"{a} {n}" for a, n in areas.most_common(8)))
        print("  examples:", ", ".join(std_mask(v) for v, _ in sorted(set(only_old))[: args.examples]))
    for v, d in sorted(set(only_new))[: args.examples]:
        print(
            f"  new-only reject {std_mask(v)} (born {v[6:14]}, landing before {d}): {results['new'][v, d][1]}"
        )
    per_feed = {k: sum(1 for v in vs if results["old"][v][1] == "id_birth_place") for k, vs in values.items()}
    worst = sorted(((n, k) for k, n in per_feed.items() if n), reverse=True)[:5]
    if worst:
        print("most id_birth_place rejects (old rule):", ", ".join(f"{k} {n}" for n, k in worst))
    n = len(distinct)
    print(
        f"throughput on distinct values, cold caches: old {n / timing['old']:,.0f}/s, new {n / timing['new']:,.0f}/s"
        f" (ratio new/old {timing['old'] / timing['new']:.2f})"
    )


def std_mask(v: str) -> str:
    from jx_pipeline.lib.canonical import mask

    return mask("id_number", v)


if __name__ == "__main__":
    main()
