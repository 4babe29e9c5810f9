"""Resident IDs as departments really hold them, through the staged layer (real PostgreSQL, issue 9).

A department file of elderly residents (born 1935-1960) whose genuine IDs carry the codes of their current
counties — codes those counties got decades after the births — must keep every ID; a file in which some check
characters are wrong must reject exactly those values, nothing else. IDs are built here with python-stdnum's
check character, not by our world generator.
"""

import random
from datetime import date, timedelta

import dagster as dg
import pytest
from stdnum.cn import ric

from jx_pipeline.catalog import load_catalog
from jx_pipeline.defs.ingest import assets as ingest_assets
from jx_pipeline.defs.staged import assets as staged_assets
from jx_pipeline.lib.warehouse import WarehouseResource
from jx_pipeline_tests.conftest import catalog_with

DAY = "2026-11-01"
# Jiaxing's county codes today; all but 330421/330424 came into use after 1960 (stdnum's cn/loc table:
# 330402 南湖区 2005, 330411 秀洲区 1999, 330481 海宁市 1989, 330482 平湖市 1991, 330483 桐乡市 1993)
COUNTIES = ("330481", "330402", "330411", "330482", "330483", "330421", "330424")
ROWS = 80
FEEDS = ("gaj_test_elderly", "gaj_test_bad_checks")


def _elderly_ids(seed: int) -> list[str]:
    rng = random.Random(seed)
    out = []
    for i in range(ROWS):
        born = date(1935, 1, 1) + timedelta(days=rng.randrange((date(1960, 12, 31) - date(1935, 1, 1)).days))
        body = f"{COUNTIES[i % len(COUNTIES)]}{born:%Y%m%d}{rng.randrange(1, 1000):03d}"
        out.append(body + ric.calc_check_digit(body + "0"))
    return out


def _wrong_check(n: str) -> str:
    return n[:17] + next(c for c in "0123456789X" if c != n[17])


def _feed(feed_id: str) -> dict:
    return {
        "id": feed_id,
        "department": "gaj",
        "name": "老年人信息(测试)",
        "name_en": "Elderly residents (test)",
        "domain": "population",
        "archetype": "person_service",
        "source": {"kind": "file", "format": "csv", "encoding": "utf-8"},
        "records": ROWS,
        "key": ["BH"],
        "columns": {"BH": "record_key", "SFZH": "id_number", "CSRQ": "birth_date", "RQ": "event_date"},
    }


def _write(world, feed_id: str, ids: list[str]) -> None:
    folder = world / "landing" / "gaj" / feed_id / DAY
    folder.mkdir(parents=True)
    lines = ["BH,SFZH,CSRQ,RQ"]
    for i, n in enumerate(ids):
        born = f"{n[6:10]}-{n[10:12]}-{n[12:14]}"
        lines.append(f"B{i:04d},{n},{born},2026-10-01")
    (folder / "a.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")


@pytest.fixture
def staged_feeds(tmp_path, warehouse_url, monkeypatch):
    """Stages both test feeds; returns (ids of the elderly feed, corrupted ids, corrupted CSV row numbers)."""
    world = tmp_path / "world"
    genuine = _elderly_ids(9)
    rng = random.Random(10)
    wrong_rows = set(rng.sample(range(ROWS), 7))
    corrupted = [_wrong_check(n) if i in wrong_rows else n for i, n in enumerate(_elderly_ids(11))]
    _write(world, FEEDS[0], genuine)
    _write(world, FEEDS[1], corrupted)
    catalog_path = catalog_with(tmp_path, lambda doc: doc["feeds"].extend(_feed(f) for f in FEEDS))
    monkeypatch.setenv("JX_CATALOG", str(catalog_path))
    monkeypatch.setenv("JX_WORLD_DIR", str(world))
    catalog = load_catalog()
    feeds = ingest_assets.by_department(catalog)["gaj"]
    raw = ingest_assets._department_asset("gaj", feeds, catalog)
    staged = staged_assets._department_asset("gaj", feeds, catalog)
    keys = [ingest_assets.feed_key(catalog.feed(f), layer) for f in FEEDS for layer in ("raw", "staged")]
    result = dg.materialize(
        [raw, staged],
        selection=keys,
        partition_key=DAY,
        resources={
            "warehouse": WarehouseResource(url=warehouse_url),
            "source_db": ingest_assets.SourceDatabaseResource(url=""),
        },
        raise_on_error=False,
    )
    # CSV row numbers as the raw layer counts them: the header is row 1
    return result, genuine, corrupted, {i + 2 for i in wrong_rows}


def test_elderly_residents_keep_their_genuine_ids(staged_feeds, wh):
    result, genuine, _, _ = staged_feeds
    # the old rule (python-stdnum's birthplace check) would have thrown most of these away
    assert sum(not ric.is_valid(n) for n in genuine) > ROWS // 2
    assert result.success
    checks = {
        (e.asset_key.path[-1], e.check_name): e.passed
        for e in result.get_asset_check_evaluations()
        if e.asset_key.path[0] == "staged"
    }
    name = FEEDS[0].removeprefix("gaj_")
    assert checks[(name, "expectations")] and checks[(name, "rows_reconcile")]
    kept = [
        r[0]
        for r in wh.execute(
            f'select id_number from staged."{FEEDS[0]}" where _partition = %s order by _row_number', (DAY,)
        ).fetchall()
    ]
    assert kept == genuine
    reasons = wh.execute(
        "select reason, count(*) from quality.rejects where feed_id = %s and partition_key = %s group by reason",
        (FEEDS[0], DAY),
    ).fetchall()
    assert reasons == []


def test_wrong_check_characters_reject_exactly_those_values(staged_feeds, wh):
    result, _, corrupted, wrong_rows = staged_feeds
    rejected = wh.execute(
        "select row_number, column_name, reason, scope from quality.rejects"
        " where feed_id = %s and partition_key = %s and stage = 'staged'",
        (FEEDS[1], DAY),
    ).fetchall()
    assert {r[0] for r in rejected} == wrong_rows
    assert {(r[1], r[2], r[3]) for r in rejected} == {("SFZH", "id_checksum", "value")}
    staged = dict(
        wh.execute(
            f'select _row_number, id_number from staged."{FEEDS[1]}" where _partition = %s', (DAY,)
        ).fetchall()
    )
    assert len(staged) == ROWS  # a bad value is nulled, its row stays
    assert {row for row, v in staged.items() if v is None} == wrong_rows
    assert all(staged[i + 2] == n for i, n in enumerate(corrupted) if i + 2 not in wrong_rows)
    evals = [
        e
        for e in result.get_asset_check_evaluations()
        if e.asset_key.path[-1] == FEEDS[1].removeprefix("gaj_")
    ]
    assert evals and all(e.passed for e in evals)  # 7 of 80 bad stays within the completeness allowance
