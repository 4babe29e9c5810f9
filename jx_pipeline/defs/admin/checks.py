"""Checks on ``core.admin_unit``: the published NBS counts and a closed parent tree.

They run inside the asset's own step (no extra process) and are blocking: nothing downstream is built on an
incomplete or broken division tree. ``evaluate`` is a plain function, so tests call it directly.
"""

from __future__ import annotations

import dagster as dg
import psycopg

from jx_pipeline.lib.warehouse import sql_file

ASSET_KEY = dg.AssetKey(["core", "admin_unit"])
# Jiaxing in the NBS 2022 statistical division codes (see data/admin_divisions/PROVENANCE.md).
EXPECTED_COUNTS = {"city": 1, "county": 7, "town": 72, "village": 1202}

SPECS = [
    dg.AssetCheckSpec(
        "level_counts",
        asset=ASSET_KEY,
        blocking=True,
        description="1 city, 7 counties, 72 towns/sub-districts, 1,202 villages/communities.",
    ),
    dg.AssetCheckSpec(
        "boundaries",
        asset=ASSET_KEY,
        blocking=True,
        description="Every unit has a boundary, and each unit's children tessellate it: no gap, no overlap (0.1 %).",
    ),
    dg.AssetCheckSpec(
        "parent_tree",
        asset=ASSET_KEY,
        blocking=True,
        description="Every unit's parent exists, is one level up, and its code extends the parent's.",
    ),
]


def evaluate(conn: psycopg.Connection) -> list[dg.AssetCheckResult]:
    counts = dict(conn.execute("select level, count(*) from core.admin_unit group by level").fetchall())
    off = {
        lvl: (counts.get(lvl, 0), want) for lvl, want in EXPECTED_COUNTS.items() if counts.get(lvl, 0) != want
    }
    extra = sorted(set(counts) - set(EXPECTED_COUNTS))
    broken = conn.execute(sql_file("admin/check_admin_unit.sql")).fetchall()
    sample = "\n".join(
        f"- {code} ({lvl}, parent {parent}): {problem}" for code, lvl, parent, problem in broken[:10]
    )
    return [
        _boundaries(conn),
        dg.AssetCheckResult(
            check_name="level_counts",
            asset_key=ASSET_KEY,
            passed=not off and not extra,
            metadata={
                **{f"{lvl}_count": dg.MetadataValue.int(counts.get(lvl, 0)) for lvl in EXPECTED_COUNTS},
                "mismatches": dg.MetadataValue.json(
                    {k: {"found": f, "expected": w} for k, (f, w) in off.items()}
                ),
            },
        ),
        dg.AssetCheckResult(
            check_name="parent_tree",
            asset_key=ASSET_KEY,
            passed=not broken,
            metadata={
                "broken_units": dg.MetadataValue.int(len(broken)),
                "sample": dg.MetadataValue.md(sample or "none"),
            },
        ),
    ]


TOLERANCE = 0.001


def _boundaries(conn: psycopg.Connection) -> dg.AssetCheckResult:
    missing = conn.execute("select count(*) from core.admin_unit where geom is null").fetchone()[0]
    rows = conn.execute(sql_file("admin/check_admin_boundaries.sql")).fetchall()
    bad = []
    for code, level, parent, total, union in rows:
        gap, overlap = abs(union - parent) / parent, (total - union) / parent
        if gap > TOLERANCE or overlap > TOLERANCE:
            bad.append((code, level, gap, overlap))
    worst = max((max(g, o) for _, _, g, o in bad), default=0.0)
    return dg.AssetCheckResult(
        check_name="boundaries",
        asset_key=ASSET_KEY,
        passed=missing == 0 and not bad,
        metadata={
            "units_without_boundary": dg.MetadataValue.int(missing),
            "parents_checked": dg.MetadataValue.int(len(rows)),
            "parents_not_tessellated": dg.MetadataValue.int(len(bad)),
            "worst_mismatch_share": dg.MetadataValue.float(round(worst, 6)),
            "sample": dg.MetadataValue.md("\n".join(f"- {c} ({lv})" for c, lv, _, _ in bad[:10]) or "none"),
        },
    )
