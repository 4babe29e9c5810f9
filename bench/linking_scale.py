"""Benchmark: linking and identity resolution time against the number of records (scale 0.01 and 0.03).

For each scale, in a scratch warehouse on the same server: generate a world (1 day of increments), load and stage
every feed (its snapshot and the day), load the gazetteer, then time ``linking.link`` and ``identity.resolve``.
Linear growth shows as a constant time per record: the ratio of the two scales' per-record times is printed
(1.0 = perfectly linear), with the link precision/recall against the truth of each world.

    .venv/bin/python bench/linking_scale.py --scales 0.01 0.03
    .venv/bin/python bench/linking_scale.py --scales 0.01 --noise bench/habits_off.yaml   # habits off
"""

import argparse
import json
import tempfile
import time
import uuid
from pathlib import Path

from jx_pipeline.catalog import load_catalog
from jx_pipeline.lib import evaluate, identity, ingest, linking, settings, staging
from jx_pipeline.lib.migrations import migrate
from jx_pipeline.lib.pg import connect


def _scratch(base_url: str) -> str:
    name = f"jx_bench_{uuid.uuid4().hex[:8]}"
    with connect(base_url, autocommit=True) as conn:
        conn.execute(f'create database "{name}"')
    return base_url.rsplit("/", 1)[0] + "/" + name


def _drop(url: str, base_url: str) -> None:
    with connect(base_url, autocommit=True) as conn:
        conn.execute(f'drop database if exists "{url.rsplit("/", 1)[1]}" with (force)')


def run(scale: float, tmp: Path, base_url: str, noise: Path | None = None) -> dict:
    import dagster as dg

    from jx_pipeline.defs.admin import assets as admin
    from jx_pipeline.defs.entities import assets as entities
    from jx_pipeline.lib.warehouse import WarehouseResource
    from jx_pipeline.world import generate, sourcedb

    wh, src = _scratch(base_url), _scratch(base_url)
    try:
        out = tmp / f"w{scale}"
        generate.generate(
            generate.Options(out=out, scale=scale, seed=7, days=1, progress=False, noise_file=noise),
            log=lambda m: None,
        )
        sourcedb.load(out, src, load_catalog())
        with connect(wh) as conn:
            migrate(conn)
            conn.commit()
        import os

        os.environ["JX_WORLD_DIR"] = str(out)
        assets = [admin.raw_admin_division, admin.raw_admin_boundary, admin.core_admin_unit]
        assets += [entities.core_geo_entity, entities.core_address_point]
        assert dg.materialize(assets, resources={"warehouse": WarehouseResource(url=wh)}).success
        catalog = load_catalog()
        t = time.perf_counter()
        with connect(wh) as conn:
            for feed in catalog.feeds:
                for day in ("2026-11-01", "2026-11-02"):
                    ingest.load_partition(
                        conn, feed, day, "b", world=out, source_url=src, first_partition="2026-11-01"
                    )
                    staging.stage_partition(conn, feed, day, "b")
            load = time.perf_counter() - t
            t = time.perf_counter()
            methods = linking.link(conn, catalog)
            link_s = time.perf_counter() - t
            t = time.perf_counter()
            identity.resolve(conn, catalog)
            ident_s = time.perf_counter() - t
            figures = evaluate.evaluate(conn, out / "truth")
        records = sum(methods.values())
        return {
            "scale": scale,
            "records": records,
            "load_and_stage_s": round(load, 1),
            "link_s": round(link_s, 2),
            "identity_s": round(ident_s, 2),
            "link_us_per_record": round(link_s / records * 1e6, 1),
            "identity_us_per_record": round(ident_s / records * 1e6, 1),
            "link_precision": figures["links"]["precision"],
            "link_recall": figures["links"]["recall"],
            "person_f1": figures["identity_person"].get("f1"),
            "legal_person_f1": figures["identity_legal_person"].get("f1"),
            "linked_without_truth_entity": figures["linked_without_truth_entity"],
        }
    finally:
        _drop(wh, base_url)
        _drop(src, base_url)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--scales", type=float, nargs="+", default=[0.01, 0.03])
    ap.add_argument("--noise", type=Path, help="a noise file overriding jx_pipeline/world/noise.yaml")
    args = ap.parse_args()
    base = settings.resolve_urls()[0]
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for s in args.scales:
            r = run(s, Path(tmp), base, args.noise)
            results.append(r)
            print(
                f"scale {s}: {r['records']:,} records; link {r['link_s']} s ({r['link_us_per_record']} µs/record), "
                f"identity {r['identity_s']} s ({r['identity_us_per_record']} µs/record); precision "
                f"{r['link_precision']}, recall {r['link_recall']}, F1 persons {r['person_f1']}, "
                f"legal persons {r['legal_person_f1']}; linked without a true entity "
                f"{r['linked_without_truth_entity']:,}",
                flush=True,
            )
    if len(results) > 1:
        a, b = results[0], results[-1]
        print(
            f"records x{b['records'] / a['records']:.2f}: link time x{b['link_s'] / a['link_s']:.2f}, per-record ratio "
            f"{b['link_us_per_record'] / a['link_us_per_record']:.2f}; identity time x{b['identity_s'] / a['identity_s']:.2f},"
            f" per-record ratio {b['identity_us_per_record'] / a['identity_us_per_record']:.2f} (1.0 = linear)"
        )
    print(json.dumps(results))


if __name__ == "__main__":
    main()
