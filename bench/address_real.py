"""Benchmark: address parsing on real addresses (NAACL-2019 corpus), ours vs cpca vs jionlp, per city and level.

Our synthetic figures score the parser on noise we wrote ourselves; this bench scores it on addresses real people
wrote, with gold labels made by others. The corpus is the one of Li et al., "Neural Chinese Address Parsing"
(NAACL 2019): about 15,000 labelled addresses, mostly Zhejiang. It is not part of this repository; get it from
github.com/leodotnet/neural-chinese-address-parsing (data/train.txt, data/dev.txt, data/test.txt), e.g.

    git clone --depth 1 https://github.com/leodotnet/neural-chinese-address-parsing /tmp/naacl-repo
    mkdir -p /tmp/naacl && cp /tmp/naacl-repo/data/{train,dev,test}.txt /tmp/naacl/

Gold codes come from the labelled prov/city/district/town/community spans by plain name rules of the bench's own
(naacl_gold.py), never from our parser; a label naming no unique NBS 2022 unit is left out of its level (the
counts are printed). Each address is assigned to a city by its gold labels; the parser is configured for that
city (``AddressParser(city=...)``) and scored by code at county, town and village level; cpca and jionlp, run in
the same run from their own venvs, are scored by mapping the names they return with the same rules.

**Jiaxing (3304) is reserved for independent testing**: its addresses are dropped right after city assignment,
never parsed, shown or counted beyond one line. Do not develop against them.

The other tools, each in a venv of its own (cpca needs pkg_resources, hence the old setuptools):

    uv venv /tmp/cpca && uv pip install --python /tmp/cpca/bin/python cpca "setuptools<70"
    uv venv /tmp/jionlp && uv pip install --python /tmp/jionlp/bin/python jionlp

Run (the table is markdown, for the README):

    .venv/bin/python bench/address_real.py /tmp/naacl \
        --cpca-python /tmp/cpca/bin/python --jionlp-python /tmp/jionlp/bin/python

Our parser's misses in one city and level, for development (printed only; ``--tool cpca|jionlp`` with its
``--...-python`` shows theirs):

    .venv/bin/python bench/address_real.py /tmp/naacl --failures 3301 --level town -n 30
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from address_tools import TOOLS, ToolRun, run_tool
from naacl_gold import Address, Divisions, Lookup, city_of, read_corpus

from jx_pipeline.lib import settings

RESERVED = "3304"  # Jiaxing: independent testing only
SCORED = ("county", "town", "village")
WHY = {
    "ambiguous": "ambiguous",
    "unknown": "naming no NBS 2022 unit",
    "stale": "contradicted by the town's NBS 2022 county",
    "county_now": "towns made counties",
    "no_parent": "with no city, county or town found above",
}
CODE_FIELD = {"county": "county_code", "town": "town_code", "village": "village_code"}


def load(corpus: Path, files: list[str], div: Divisions) -> tuple[dict[str, list], Counter]:
    """Addresses with their gold codes, by city; the reserved city is dropped here, before anything else."""
    by_city: dict[str, list[tuple[Address, dict[str, Lookup]]]] = defaultdict(list)
    counts: Counter = Counter()
    for name in files:
        path = corpus / name
        if not path.is_file():
            raise SystemExit(f"{path}: not found (the corpus folder must hold {', '.join(files)})")
        for a in read_corpus(path):
            gold = div.gold(a)
            city = city_of(gold)
            if city == RESERVED or touches_reserved(div, a):
                counts["reserved"] += 1
            elif city is None:
                counts["no_city"] += 1
            else:
                by_city[city].append((a, gold))
    return by_city, counts


def touches_reserved(div: Divisions, a: Address) -> bool:
    """Whether any place in the address may be Jiaxing: 嘉兴 in the text, or a city, county or town label that
    names a Jiaxing unit on its own. Such addresses are reserved too, even when assigned elsewhere (a migrant's
    home county written first), so that no Jiaxing address is ever scored or shown."""
    if "嘉兴" in a.text:
        return True
    for label, text in a.spans:
        level = {"city": "city", "district": "county", "town": "town"}.get(label)
        hit = level and div.lookup(level, text)
        if hit and (hit.code or hit.place or "").startswith(RESERVED):
            return True
    return False


def make_parser(city: str):
    """Our parser configured for ``city``, or (None, why not)."""
    from jx_pipeline.lib.address import AddressParser

    try:
        return AddressParser(city=city), None
    except TypeError as e:
        if "city" in str(e):
            return None, "our AddressParser does not take city= yet (issue 9, H-PARSER)"
        raise
    except Exception as e:  # a city the parser does not support: say so, score it 0
        return None, f"AddressParser(city={city!r}) failed: {type(e).__name__}: {e}"


def run_ours(by_city: dict[str, list]) -> tuple[dict[str, list], dict[str, float], dict[str, str]]:
    parsed, seconds, problems = {}, {}, {}
    for city, rows in by_city.items():
        parser, why = make_parser(city)
        if parser is None:
            problems[city] = why
            continue
        t = time.perf_counter()
        parsed[city] = [parser.parse(a.text) for a, _ in rows]
        seconds[city] = time.perf_counter() - t
    return parsed, seconds, problems


def split_rows(by_city: dict[str, list], cities: list[str], flat: list) -> dict[str, list]:
    """A flat list in the order of ``cities``' rows, cut back into cities."""
    out, i = {}, 0
    for city in cities:
        out[city] = flat[i : i + len(by_city[city])]
        i += len(by_city[city])
    return out


def tool_codes(div: Divisions, run: ToolRun) -> list[dict[str, str | None]]:
    return [{lvl: hit.code for lvl, hit in div.resolve(names).items()} for names in run.names]


def batch(city: str) -> str:
    """The tools' batch of a city: itself in Zhejiang, one batch for all others."""
    return city if city.startswith("33") else "elsewhere"


def pct(hit: int, n: int) -> str:
    return f"{hit / n:.1%}" if n else "n/a"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("corpus", type=Path, help="folder with the corpus' train.txt, dev.txt, test.txt")
    ap.add_argument("--files", nargs="+", default=["train.txt", "dev.txt", "test.txt"])
    ap.add_argument("--cpca-python", help="a Python with cpca installed")
    ap.add_argument("--jionlp-python", help="a Python with jionlp installed")
    ap.add_argument("--min-city", type=int, default=300, help="cities with fewer addresses are marked †")
    ap.add_argument(
        "--failures", metavar="CITY", help="print our misses in this city (4-digit code) and stop"
    )
    ap.add_argument("--level", choices=SCORED, default="town", help="level of --failures")
    ap.add_argument("-n", type=int, default=30, help="how many misses --failures prints")
    ap.add_argument("--tool", choices=["ours", *TOOLS], default="ours", help="whose misses --failures prints")
    args = ap.parse_args()

    div = Divisions.load(settings.DATA_DIR / "china_divisions")
    if args.failures == RESERVED:
        raise SystemExit(f"{RESERVED} (Jiaxing) is reserved for independent testing: no failures are shown")
    by_city, counts = load(args.corpus, args.files, div)
    print(f"{counts['reserved']} Jiaxing addresses skipped (reserved)")
    if args.failures:
        python = {"cpca": args.cpca_python, "jionlp": args.jionlp_python}.get(args.tool)
        failures(div, by_city, args.failures, args.level, args.n, args.tool, python)
        return

    total = sum(len(v) for v in by_city.values())
    print(
        f"{total} addresses in {len(by_city)} other cities; {counts['no_city']} with no label naming a city"
    )
    left_out = {lvl: Counter() for lvl in SCORED}
    for rows in by_city.values():
        for _, gold in rows:
            for lvl in SCORED:
                if lvl in gold:
                    left_out[lvl][gold[lvl].why] += 1
    for lvl in SCORED:
        c = left_out[lvl]
        why = ", ".join(f"{n} {WHY[w]}" for w, n in sorted(c.items()) if w != "ok")
        print(f"{lvl} labels: {sum(c.values())}, left out {sum(c.values()) - c['ok']} ({why})")

    cities = sorted(by_city, key=lambda c: (-len(by_city[c]), c))
    ours, our_seconds, problems = run_ours(by_city)
    for why, n in Counter(problems.values()).items():
        print(f"ours not run for {n} cities: {why}")
    # the tools take no city: one batch per Zhejiang city, one for all the rest (no per-batch cost x 279)
    rows = [(batch(city), a.text) for city in cities for a, _ in by_city[city]]
    tools: dict[str, tuple[dict[str, list], dict[str, float]]] = {}
    for tool, python in (("cpca", args.cpca_python), ("jionlp", args.jionlp_python)):
        if not python:
            print(f"{tool} not run (give --{tool}-python)")
            continue
        run = run_tool(tool, python, rows)
        tools[tool] = (split_rows(by_city, cities, tool_codes(div, run)), run.seconds)

    zj = [c for c in cities if c.startswith("33")]
    mark = lambda c: "" if len(by_city[c]) >= args.min_city else " †"  # noqa: E731
    lines = [(f"{div.names['city'].get(c, '?')} {c}{mark(c)}", [c]) for c in zj]
    others = [c for c in cities if not c.startswith("33")]
    if others:
        lines.append((f"outside Zhejiang ({len(others)} cities) †", others))
    lines.append(("**all non-Jiaxing**", cities))
    summary = print_table(by_city, lines, ours, our_seconds, tools)
    print()
    print(
        f"† fewer than {args.min_city} addresses, or outside Zhejiang (towns and villages are known only there)"
    )
    print()
    names = ["ours", *tools]
    took = {t: sum((our_seconds if t == "ours" else tools[t][1]).values()) for t in names}
    done = {t: sum(len(by_city[c]) for c in (our_seconds if t == "ours" else cities)) for t in names}
    rate = {t: done[t] / took[t] for t in names if took[t]}
    if "ours" in rate:
        vs = ", ".join(f"{rate['ours'] / rate[t]:.1f}x {t}'s" for t in tools if t in rate)
        print(
            f"speed (parsing only, same addresses, same run): ours {rate['ours']:,.0f}/s"
            + (f" = {vs}" if vs else "")
        )
    print(json.dumps(summary, ensure_ascii=False))


def print_table(by_city: dict[str, list], lines: list, ours: dict, our_seconds: dict, tools: dict) -> dict:
    """The markdown table: per line of cities, gold labels and each tool's accuracy by level, speeds."""
    names = ["ours", *tools]
    head = ["city", "addresses"]
    for lvl in SCORED:
        head += [f"{lvl} gold", *(f"{lvl} {t}" for t in names)]
    head += ["ours outside", *(f"{t} /s" for t in names)]
    print()
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    summary = {}
    for label, group in lines:
        n = sum(len(by_city[c]) for c in group)
        cells = [label, str(n)]
        for lvl in SCORED:
            gold = [(c, i, g[lvl].code) for c in group for i, (_, g) in enumerate(by_city[c]) if g.get(lvl)]
            gold = [x for x in gold if x[2]]
            cells.append(str(len(gold)))
            for t in names:
                if t == "ours" and not any(c in ours for c in group):
                    cells.append("not run")
                    continue
                if t == "ours":
                    got = lambda c, i, lvl=lvl: getattr(ours[c][i], CODE_FIELD[lvl]) if c in ours else None  # noqa: E731
                elif lvl not in TOOLS[t][1]:
                    cells.append("—")
                    continue
                else:
                    got = lambda c, i, lvl=lvl, t=t: tools[t][0][c][i].get(lvl)  # noqa: E731
                hit = sum(got(c, i) == code for c, i, code in gold)
                cells.append(pct(hit, len(gold)))
                summary[f"{label}|{lvl}|{t}"] = [hit, len(gold)]
        done = [c for c in group if c in ours]
        cells.append(
            str(sum(bool(getattr(p, "outside", False)) for c in done for p in ours[c])) if done else "—"
        )
        for t in names:
            if t == "ours":
                ran = [c for c in group if c in our_seconds]
                took = sum(our_seconds[c] for c in ran)
            else:
                ran = group
                took = sum(tools[t][1][b] for b in {batch(c) for c in group})
            cells.append(f"{sum(len(by_city[c]) for c in ran) / took:,.0f}" if ran and took else "—")
        print("| " + " | ".join(cells) + " |")
    return summary


def failures(
    div: Divisions, by_city: dict[str, list], city: str, level: str, n: int, tool: str, python: str | None
) -> None:
    """A tool's misses at ``level`` in ``city`` (ours by default): text, gold, what it found."""
    if city not in by_city:
        raise SystemExit(f"no addresses assigned to city {city}; cities: {', '.join(sorted(by_city))}")
    rows = [(a, g[level].code) for a, g in by_city[city] if g.get(level) and g[level].code]
    names = div.names[level]
    if tool == "ours":
        parser, why = make_parser(city)
        if parser is None:
            raise SystemExit(why)
        found = [parser.parse(a.text) for a, _ in rows]
        codes = [getattr(p, CODE_FIELD[level]) for p in found]
        notes = [
            f"outside={getattr(p, 'outside', None)} stop={getattr(p, 'stop_reason', None)}" for p in found
        ]
    else:
        if not python:
            raise SystemExit(f"--tool {tool} needs --{tool}-python")
        run = run_tool(tool, python, [(city, a.text) for a, _ in rows])
        codes = [c.get(level) for c in tool_codes(div, run)]
        notes = [" ".join(f"{k}={v}" for k, v in found.items() if v) for found in run.names]
    misses = [
        (a, gold, got, note) for (a, gold), got, note in zip(rows, codes, notes, strict=True) if got != gold
    ]
    print(
        f"{tool}, {city} {level}: {len(rows) - len(misses)}/{len(rows)} right, {len(misses)} misses; first {n}:"
    )
    for a, gold, got, note in misses[:n]:
        print(f"- {a.text}  [{a.source}]")
        print(f"    gold {gold} {names.get(gold)} | {tool} {got} {names.get(got or '', '')} | {note}")


if __name__ == "__main__":
    main()
