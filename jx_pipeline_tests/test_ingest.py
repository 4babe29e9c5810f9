"""Raw ingestion from the catalog: every feed an asset, COPY loads per partition, exact accounting, drift."""

import dagster as dg
import pandas as pd
import pytest

from jx_pipeline.catalog import load_catalog
from jx_pipeline.defs.ingest import assets as ingest_assets
from jx_pipeline.lib import ingest
from jx_pipeline.lib.errors import JxError
from jx_pipeline.lib.warehouse import WarehouseResource
from jx_pipeline_tests.conftest import WORLD_DAYS, catalog_with, run_cli

DAYS = [f"2026-11-{d:02d}" for d in range(1, WORLD_DAYS + 2)]


def _resources(warehouse_url, source_url):
    return {
        "warehouse": WarehouseResource(url=warehouse_url),
        "source_db": ingest_assets.SourceDatabaseResource(url=source_url),
    }


def _run(assets_def, warehouse_url, source_url, first=DAYS[0], last=DAYS[-1]):
    return dg.materialize(
        [assets_def],
        resources=_resources(warehouse_url, source_url),
        tags={"dagster/asset_partition_range_start": first, "dagster/asset_partition_range_end": last},
    )


def _dept(code, catalog=None):
    defs = ingest_assets.build_defs(catalog)
    return next(a for a in defs.assets if a.node_def.name == f"raw_{code}")


def test_every_catalog_feed_is_an_asset_grouped_by_department():
    defs = ingest_assets.build_defs()
    specs = [s for a in defs.assets for s in a.specs]
    assert len(specs) == 168 and len(defs.assets) == 27
    assert {s.group_name for s in specs} == {d.code for d in load_catalog().departments}
    hjrk = next(s for s in specs if s.key == dg.AssetKey(["raw", "gaj", "hjrk"]))
    assert hjrk.owners and "户籍人口信息" in hjrk.description and hjrk.tags["domain"] == "population"
    assert all(a.partitions_def == ingest_assets.DAILY and a.can_subset for a in defs.assets)


def _file_rows(world, feed, day) -> int:
    total = 0
    for path in ingest.landing_files(world, feed, day):
        fmt = feed.source.format
        if fmt == "csv":
            total += len(pd.read_csv(path, encoding=feed.source.encoding, dtype=str, keep_default_na=False))
        elif fmt == "jsonl":
            total += sum(1 for line in path.open(encoding="utf-8") if line.strip())
        elif fmt == "xlsx":
            total += len(pd.read_excel(path, dtype=str))
        else:
            total += len(pd.read_parquet(path))
    return total


def test_department_loads_every_partition_exactly_and_idempotently(world, warehouse_url, source_url, wh):
    cat = load_catalog()
    result = _run(_dept("gaj"), warehouse_url, source_url)
    assert result.success
    assert all(e.passed for e in result.get_asset_check_evaluations())
    for feed in (f for f in cat.feeds if f.department == "gaj"):
        for day in DAYS:
            n = wh.execute(f'select count(*) from raw."{feed.id}" where _partition = %s', (day,)).fetchone()[
                0
            ]
            audit = wh.execute(
                "select rows_read, rows_loaded, rows_rejected from quality.load_audit"
                " where feed_id = %s and partition_key = %s and stage = 'raw'",
                (feed.id, day),
            ).fetchone()
            assert audit[0] == audit[1] + audit[2] and audit[1] == n
            if feed.source.kind == "file":
                assert n == _file_rows(world, feed, day), (feed.id, day)
        lineage = wh.execute(
            f'select count(*) from raw."{feed.id}" where _batch_id is null or _row_number < 1'
        ).fetchone()[0]
        assert lineage == 0
    before = wh.execute(
        "select count(*), md5(string_agg(xm || coalesce(sfzh, ''), '|' order by lsh)) from raw.\"gaj_hjrk\""
    ).fetchone()
    wh.commit()
    assert _run(_dept("gaj"), warehouse_url, source_url).success
    after = wh.execute(
        "select count(*), md5(string_agg(xm || coalesce(sfzh, ''), '|' order by lsh)) from raw.\"gaj_hjrk\""
    ).fetchone()
    assert after == before  # re-running replaces, never duplicates


def test_database_feed_pulls_by_watermark_per_day(world, warehouse_url, source_url, wh):
    feed = load_catalog().feed("gaj_hjrk")
    _run(_dept("gaj"), warehouse_url, source_url)
    per_day = dict(wh.execute('select _partition, count(*) from raw."gaj_hjrk" group by 1').fetchall())
    from jx_pipeline.lib.pg import connect

    with connect(source_url) as src:
        total = src.execute('select count(*) from gaj."hjrk"').fetchone()[0]
        first = src.execute(
            f'select count(*) from gaj."hjrk" where "{feed.source.watermark}" < %s', (DAYS[1],)
        ).fetchone()[0]
    assert per_day[DAYS[0]] == first and sum(per_day.values()) == total
    # one delivery per day: the row id is the row's place in (watermark, key) order, 1..n without a gap
    ids = wh.execute(
        "select _partition, count(distinct _row_id), min(_row_id), max(_row_id),"
        ' count(*) filter (where _row_id <> _row_number) from raw."gaj_hjrk" group by 1'
    ).fetchall()
    assert {d: (n, 1, n, 0) for d, n in per_day.items()} == {d: tuple(r) for d, *r in ids}


def test_a_feed_added_in_yaml_only_is_ingested(tmp_path, warehouse_url, monkeypatch):
    new = {
        "id": "gaj_test_feed",
        "department": "gaj",
        "name": "测试数据",
        "name_en": "Test feed",
        "domain": "other",
        "archetype": "place_event",
        "source": {"kind": "file", "format": "csv", "encoding": "gbk"},
        "records": 10,
        "key": ["BH"],
        "columns": {"BH": "record_key", "DZ": "address", "RQ": "event_date"},
    }
    cat = load_catalog(catalog_with(tmp_path, lambda d: d["feeds"].append(new)))
    world = tmp_path / "world"
    day = world / "landing" / "gaj" / "gaj_test_feed" / DAYS[0]
    day.mkdir(parents=True)
    (day / "a.csv").write_bytes(
        'BH,DZ,RQ\n1,嘉兴市南湖区建设街道中山东路1号,2026-11-01\n2,"有,逗号\n和换行",20261101\n'.encode("gbk")
    )
    monkeypatch.setenv("JX_WORLD_DIR", str(world))
    asset = _dept("gaj", cat)
    key = dg.AssetKey(["raw", "gaj", "test_feed"])
    assert key in asset.keys
    result = dg.materialize(
        [asset], selection=[key], partition_key=DAYS[0], resources=_resources(warehouse_url, "")
    )
    assert result.success
    from jx_pipeline.lib.pg import connect

    with connect(warehouse_url) as conn:
        rows = conn.execute(
            'select bh, dz, _row_number, _row_id from raw."gaj_test_feed" order by bh'
        ).fetchall()
    assert rows == [("1", "嘉兴市南湖区建设街道中山东路1号", 2, 1), ("2", "有,逗号\n和换行", 3, 2)]


def _single(tmp_path, feed_id, content: bytes, drift="fail", name="x.csv"):
    cat = load_catalog(
        catalog_with(
            tmp_path,
            lambda d: next(f for f in d["feeds"] if f["id"] == feed_id).update({"schema_drift": drift}),
        )
    )
    feed = cat.feed(feed_id)
    world = tmp_path / "world"
    day = world / "landing" / feed.department / feed.id / DAYS[0]
    day.mkdir(parents=True, exist_ok=True)
    (day / name).write_bytes(content)
    return feed, world


def test_schema_drift_fails_or_is_accepted_by_policy(tmp_path, wh):
    feed = load_catalog().feed("gaj_ldrk")  # csv, gbk
    cols = list(feed.columns)
    missing = ",".join(cols[:-1]) + "\n" + ",".join(["v"] * (len(cols) - 1)) + "\n"
    f, world = _single(tmp_path, feed.id, missing.encode("gbk"))
    with pytest.raises(
        JxError, match=rf"feed gaj_ldrk file .*x\.csv row 1: column\(s\) \['{cols[-1]}'\] missing"
    ):
        ingest.load_partition(wh, f, DAYS[0], "t", world=world)
    renamed = ",".join([*cols[:-1], "NEWNAME"]) + "\n" + ",".join(["v"] * len(cols)) + "\n"
    f, world = _single(tmp_path, feed.id, renamed.encode("gbk"))
    with pytest.raises(JxError, match=r"renamed to \['NEWNAME'\]\?"):
        ingest.load_partition(wh, f, DAYS[0], "t", world=world)
    extra = ",".join([*cols, "EXTRA"]) + "\n" + ",".join(["v"] * len(cols) + ["额外"]) + "\n"
    f, world = _single(tmp_path, feed.id, extra.encode("gbk"), drift="accept_extra")
    res = ingest.load_partition(wh, f, DAYS[0], "t", world=world)
    assert res.extra_columns == ["EXTRA"] and res.rows_loaded == 1
    assert (
        wh.execute(
            "select _extra->>'EXTRA' from raw.\"gaj_ldrk\" where _partition = %s", (DAYS[0],)
        ).fetchone()[0]
        == "额外"
    )
    wh.rollback()


def test_nul_bytes_are_quarantined_and_accounting_reconciles(tmp_path, wh):
    feed = load_catalog().feed("gaj_ldrk")
    cols = list(feed.columns)
    body = ",".join(cols) + "\n" + ",".join(["a"] * len(cols)) + "\n" + ",".join(["b\x00"] * len(cols)) + "\n"
    f, world = _single(tmp_path, feed.id, body.encode("gbk"))
    res = ingest.load_partition(wh, f, DAYS[0], "t", world=world)
    assert (res.rows_read, res.rows_loaded, res.rows_rejected) == (2, 1, 1)
    rej = wh.execute(
        "select row_number, reason from quality.rejects where feed_id = %s and partition_key = %s"
        " and stage = 'raw'",
        (feed.id, DAYS[0]),
    ).fetchall()
    assert rej == [(3, "nul_byte: NUL character in value")]
    wh.rollback()


def test_wrong_encoding_names_feed_file_and_row(tmp_path, wh):
    feed = load_catalog().feed("gaj_ldrk")  # declared gbk
    cols = list(feed.columns)
    body = ",".join(cols) + "\n" + ",".join(["嘉兴"] * len(cols)) + "\n"
    f, world = _single(tmp_path, feed.id, body.encode("utf-8") + "𠀀".encode())
    with pytest.raises(JxError, match=r"feed gaj_ldrk file .*x\.csv"):
        ingest.load_partition(wh, f, DAYS[0], "t", world=world)
    wh.rollback()


def _materialize(world, source_url, dagster_url, select: str, *days: str) -> tuple[str, str]:
    """``jx-pipeline materialize`` of the selection for the days (CLI arguments); the run's id and status."""
    done = run_cli(
        "materialize",
        "--select",
        select,
        *days,
        env={"JX_SOURCE_DB_URL": source_url, "JX_WORLD_DIR": str(world)},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    from jx_pipeline.lib.pg import connect

    with connect(dagster_url) as conn:
        return conn.execute(
            "select run_id, status from runs order by create_timestamp desc limit 1"
        ).fetchone()


def test_cli_backfills_a_department_over_the_world_days_in_one_run(world, source_url, dagster_url, wh):
    run_id, status = _materialize(world, source_url, dagster_url, "group:gaj", "--partition-range", "world")
    from jx_pipeline.lib.pg import connect

    with connect(dagster_url) as conn:
        parts = conn.execute(
            "select count(distinct partition) from event_logs where run_id = %s"
            " and dagster_event_type = 'ASSET_MATERIALIZATION'",
            (run_id,),
        ).fetchone()[0]
    assert status == "SUCCESS" and parts == len(DAYS)
    bad = wh.execute(
        "select count(*) from quality.load_audit where feed_id like 'gaj\\_%%' and stage = 'raw'"
        " and batch_id = %s and rows_read <> rows_loaded + rows_rejected",
        (run_id,),
    ).fetchone()[0]
    loads = dict(
        wh.execute(
            "select stage, count(*) from quality.load_audit where batch_id = %s group by stage", (run_id,)
        ).fetchall()
    )
    n = len(DAYS) * sum(1 for f in load_catalog().feeds if f.department == "gaj")
    assert bad == 0 and loads == {"raw": n, "staged": n}  # the group holds both layers


def test_cli_runs_a_day_with_unpartitioned_assets_in_one_run(world, source_url, dagster_url):
    """``--partition DAY``: a day's feeds and the unpartitioned assets after them in one run, as the daily job
    runs a landing day (a range with unpartitioned assets is refused by Dagster's CLI)."""
    run_id, status = _materialize(
        world, source_url, dagster_url, "group:jyj or group:entities", "--partition", DAYS[-1]
    )
    from jx_pipeline.lib.pg import connect

    with connect(dagster_url) as conn:
        made = conn.execute(
            "select asset_key, coalesce(partition, '') from event_logs where run_id = %s"
            " and dagster_event_type = 'ASSET_MATERIALIZATION'",
            (run_id,),
        ).fetchall()
    jyj = sum(1 for f in load_catalog().feeds if f.department == "jyj")
    assert status == "SUCCESS"
    assert sum(1 for key, part in made if '"raw"' in key and part == DAYS[-1]) == jyj
    assert {key for key, part in made if not part} == {'["core", "geo_entity"]', '["core", "address_point"]'}
