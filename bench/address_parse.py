"""Benchmark: the Jiaxing address parser on one core, speed and accuracy on held-out noisy addresses.

The parser is built from the official divisions and the world's door plates (their clean addresses); the test
addresses are the departments' own records (every noise kind of the world), never seen by the parser, scored
against the ground truth. In the same run:
  - a floor: NFKC normalization alone over the same addresses (what any parser pays at least);
  - the whole command (``jx-pipeline address parse --gazetteer <world's door plates>``, one process: start-up,
    index, gazetteer, parsing and JSON out) over the distinct held-out lines, once each (issue 9 item 7 asks
    >= 20,000/s);
  - cpca (the open parser the issue cites, county level only), when ``--cpca-python`` names a Python that has it
    (it needs pkg_resources: ``uv venv /tmp/cpca && uv pip install --python /tmp/cpca/bin/python cpca "setuptools<70"``).

    .venv/bin/python bench/address_parse.py --world .jx/world [--cpca-python /tmp/cpca/bin/python]
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import unicodedata
from pathlib import Path

import pandas as pd

from jx_pipeline.catalog import load_catalog
from jx_pipeline.lib.address import AddressParser

CPCA = r"""
import json, sys, time
import cpca
lines = [l.rstrip("\n") for l in open(sys.argv[1], encoding="utf-8")]
t = time.perf_counter()
df = cpca.transform(lines)
wall = time.perf_counter() - t
print(json.dumps({"wall": wall, "adcode": [None if a != a else str(a) for a in df["adcode"]]}))
"""


def held_out(world: Path) -> pd.DataFrame:
    rows = []
    for f in load_catalog().feeds:
        if f.source.kind != "file" or "address" not in f.columns.values():
            continue
        key, col = f.column_for("record_key"), f.column_for("address")
        for path in sorted((world / "landing" / f.department / f.id).glob("*/*")):
            fmt = f.source.format
            if fmt == "csv":
                df = pd.read_csv(path, encoding=f.source.encoding, dtype=str, keep_default_na=False)
            elif fmt == "jsonl":
                df = pd.read_json(path, lines=True, dtype=str)
            elif fmt == "parquet":
                df = pd.read_parquet(path).astype(str)
            else:
                df = pd.read_excel(path, dtype=str)
            rows += [(f.id, k, a) for k, a in zip(df[key], df[col], strict=True)]
    d = pd.DataFrame(rows, columns=["feed_id", "record_key", "address"]).drop_duplicates(
        ["feed_id", "record_key"]
    )
    truth = pd.read_parquet(world / "truth" / "records.parquet")
    d = d.merge(truth, on=["feed_id", "record_key"])
    return d[d.entity_id.fillna("").str.startswith("A")].reset_index(drop=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--world", type=Path, default=Path(os.environ.get("JX_WORLD_DIR", ".jx/world")))
    ap.add_argument("--cpca-python", help="a Python with cpca installed (optional)")
    ap.add_argument("--min-parses", type=int, default=200_000, help="repeat the set until this many parses")
    args = ap.parse_args()
    g = pd.read_parquet(args.world / "entities" / "geo_entities.parquet")
    g = g[g.entity_type == "address_point"]
    t = time.perf_counter()
    parser = AddressParser(points=list(zip(g.entity_id, g.village_code, g.address, strict=True)))
    build = time.perf_counter() - t
    d = held_out(args.world)
    texts = d.address.tolist()
    rounds = max(1, -(-args.min_parses // len(texts)))

    t = time.perf_counter()
    for _ in range(rounds):
        for a in texts:
            unicodedata.normalize("NFKC", a)
    floor = rounds * len(texts) / (time.perf_counter() - t)

    t = time.perf_counter()
    for _ in range(rounds):
        parsed = [parser.parse(a) for a in texts]
    rate = rounds * len(texts) / (time.perf_counter() - t)

    v = d.village_code
    county = sum(p.county_code == c[:6] for p, c in zip(parsed, v, strict=True)) / len(d)
    town = sum(p.town_code == c[:9] for p, c in zip(parsed, v, strict=True)) / len(d)
    village = sum(p.village_code == c for p, c in zip(parsed, v, strict=True)) / len(d)
    linked = [(p.entity_id, e) for p, e in zip(parsed, d.entity_id, strict=True) if p.entity_id]
    result = {
        "addresses": len(d),
        "door_plates": len(g),
        "build_s": round(build, 2),
        "ours_per_s": round(rate),
        "floor_nfkc_per_s": round(floor),
        "county": round(county, 4),
        "town": round(town, 4),
        "village": round(village, 4),
        "door_plate_precision": round(sum(a == b for a, b in linked) / max(len(linked), 1), 4),
        "door_plate_coverage": round(len(linked) / len(d), 4),
    }
    distinct = list(dict.fromkeys(a.replace("\n", " ").replace("\r", " ") for a in texts))
    with tempfile.NamedTemporaryFile("w", encoding="utf-8", suffix=".txt") as fh:
        fh.write("\n".join(distinct) + "\n")
        fh.flush()
        command = [sys.executable, "-m", "jx_pipeline.cli", "address", "parse", "--gazetteer"]
        command.append(str(args.world / "entities" / "geo_entities.parquet"))
        with open(fh.name, encoding="utf-8") as stdin:
            t = time.perf_counter()
            subprocess.run(command, stdin=stdin, stdout=subprocess.DEVNULL, check=True)
            wall = time.perf_counter() - t
    result["cli_lines"] = len(distinct)
    result["cli_per_s"] = round(len(distinct) / wall)
    if args.cpca_python:
        lines = Path("/tmp/jx_cpca_input.txt")
        lines.write_text("\n".join(texts) + "\n", encoding="utf-8")
        out = subprocess.run(
            [args.cpca_python, "-c", CPCA, str(lines)], capture_output=True, text=True, check=True
        )
        cp = json.loads(out.stdout.strip().splitlines()[-1])
        result["cpca_county"] = round(
            sum((a or "")[:6] == c[:6] for a, c in zip(cp["adcode"], v, strict=True)) / len(d), 4
        )
        result["cpca_per_s"] = round(len(d) / cp["wall"])
    print(
        f"{result['addresses']:,} held-out addresses: ours {result['ours_per_s']:,}/s on one core "
        f"(NFKC normalization alone: {result['floor_nfkc_per_s']:,}/s); county {county:.2%}, "
        f"town {town:.2%}, village {village:.2%}; door plate precision {result['door_plate_precision']:.2%} at "
        f"coverage {result['door_plate_coverage']:.2%}"
    )
    print(
        f"whole command (jx-pipeline address parse --gazetteer …, one process) on {len(distinct):,} distinct "
        f"lines: {result['cli_per_s']:,}/s ({wall:.1f} s)"
    )
    if "cpca_county" in result:
        print(
            f"cpca on the same addresses: county {result['cpca_county']:.2%}, {result['cpca_per_s']:,}/s"
            f" (ours {rate / result['cpca_per_s']:.1f}x its speed)"
        )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
