"""Driving the off-the-shelf address parsers (cpca, jionlp) from the bench, each in its own Python.

They are not dependencies of the pipeline, so each lives in a venv of its own (see address_real.py) and runs
a small script in a subprocess: JSON lines ``{"group": ..., "text": ...}`` on stdin, in groups; one JSON
document on stdout with, per address, the names it found by level and, per group, the seconds spent parsing
(imports and dictionary loading excluded), so the throughput compares with ours measured in the same run.
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass

# shared by both scripts: read the groups, call parse_group(texts) -> list of name dicts, time each group
_DRIVER = r"""
import json, sys, time
rows = [json.loads(line) for line in sys.stdin if line.strip()]
groups = {}
for r in rows:
    groups.setdefault(r["group"], []).append(r["text"])
parse_group(["浙江省杭州市西湖区"])  # warm up: lazy loading is not parsing
out, seconds = [], {}
for g, texts in groups.items():
    t = time.perf_counter()
    found = parse_group(texts)
    seconds[g] = time.perf_counter() - t
    out += found
print(json.dumps({"names": out, "seconds": seconds}, ensure_ascii=False))
"""

CPCA = (
    r"""
import cpca
def parse_group(texts):
    df = cpca.transform(texts)
    clean = lambda v: None if v != v or v is None else str(v)  # NaN -> None
    return [{"prov": clean(p), "city": clean(c), "county": clean(a)}
            for p, c, a in zip(df["省"], df["市"], df["区"])]
"""
    + _DRIVER
)

JIONLP = (
    r"""
import jionlp
def parse_group(texts):
    out = []
    for t in texts:
        r = jionlp.parse_location(t, town_village=True)
        out.append({"prov": r.get("province"), "city": r.get("city"), "county": r.get("county"),
                    "town": r.get("town"), "village": r.get("village")})
    return out
"""
    + _DRIVER
)

TOOLS = {"cpca": (CPCA, ("county",)), "jionlp": (JIONLP, ("county", "town", "village"))}


@dataclass
class ToolRun:
    names: list[dict[str, str | None]]  # per address, in input order
    seconds: dict[str, float]  # per group


def run_tool(tool: str, python: str, rows: list[tuple[str, str]]) -> ToolRun:
    """Run ``tool`` under ``python`` over ``rows`` of (group, text); rows of a group must be contiguous."""
    script, _ = TOOLS[tool]
    stdin = "".join(json.dumps({"group": g, "text": t}, ensure_ascii=False) + "\n" for g, t in rows)
    proc = subprocess.run([python, "-c", script], input=stdin, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"{tool} under {python} failed:\n{proc.stderr[-2000:]}")
    doc = json.loads(proc.stdout.strip().splitlines()[-1])
    if len(doc["names"]) != len(rows):
        raise RuntimeError(f"{tool} returned {len(doc['names'])} results for {len(rows)} addresses")
    return ToolRun(doc["names"], doc["seconds"])
