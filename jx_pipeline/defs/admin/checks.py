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
