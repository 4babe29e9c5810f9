"""The staged layer through Dagster: typed tables from the world's feeds, GE checks that block downstream assets,
exact accounting, and the quality scorecard."""

import dagster as dg
import psycopg
import pytest
from stdnum.cn import ric

from jx_pipeline.catalog import load_catalog
from jx_pipeline.defs.ingest import assets as ingest_assets
from jx_pipeline.defs.quality import assets as quality_assets
from jx_pipeline.defs.staged import assets as staged_assets
from jx_pipeline.lib import expectations, quarantine
from jx_pipeline.lib.errors import JxError
from jx_pipeline.lib.pg import connect
from jx_pipeline.lib.warehouse import WarehouseResource
from jx_pipeline_tests.conftest import catalog_with

DAY = "2026-11-01"


def _defs(catalog, code):
    feeds = ingest_assets.by_department(catalog)[code]
    return (
        ingest_assets._department_asset(code, feeds, catalog),
        staged_assets._department_asset(code, feeds, catalog),
    )


def _resources(url, source_url=""):
    return {
        "warehouse": WarehouseResource(url=url),
        "source_db": ingest_assets.SourceDatabaseResource(url=source_url),
    }


def test_every_feed_has_a_staged_asset_with_quarantining_checks():
    defs = staged_assets.build_defs()
    keys = {k for a in defs.assets for k in a.keys}
    assert len(keys) == 168 and all(k.path[0] == "staged" for k in keys)
    # not Dagster-blocking: a failing partition is quarantined and the run goes on (lib/quarantine.py)
    checks = {(c.asset_key.path[0], c.name, c.blocking) for a in defs.assets for c in a.check_specs}
    assert checks == {("staged", "rows_reconcile", False), ("staged", "expectations", False)}
    assert all("quarantined" in c.description for a in defs.assets for c in a.check_specs)


def test_a_department_stages_typed_rows_that_reconcile(warehouse_url, source_url, wh):
    catalog = load_catalog()
    raw, staged = _defs(catalog, "scjgj")
    result = dg.materialize([raw, staged], partition_key=DAY, resources=_resources(warehouse_url, source_url))
    assert result.success
    mats = {
        e.asset_key.to_user_string(): e.materialization.metadata
        for e in result.get_asset_materialization_events()
    }
    qydj = mats["staged/scjgj/qydj"]
    assert qydj["rows_read"].value == qydj["rows_staged"].value + qydj["rows_rejected"].value > 0
    spec = staged.specs_by_key[dg.AssetKey(["staged", "scjgj", "qydj"])]
    assert {c.name for c in spec.metadata["dagster/column_schema"].columns} >= {
        "credit_code",
        "reg_date",
        "reg_capital",
    }
    evals = [e for e in result.get_asset_check_evaluations() if e.asset_key.path[0] == "staged"]
    assert len(evals) == 2 * len(staged.keys) and all(e.passed for e in evals)
    types = dict(
        wh.execute(
            "select column_name, data_type from information_schema.columns"
            " where table_schema = 'staged' and table_name = 'scjgj_qydj'"
        ).fetchall()
    )
    assert types["reg_date"] == "date" and types["reg_capital"] == "numeric"
    # every credit code kept is 18 characters; every raw row is staged or rejected, never both or neither
    assert (
        wh.execute('select count(*) from staged."scjgj_qydj" where length(credit_code) <> 18').fetchone()[0]
        == 0
    )
    lost = wh.execute(
        """select count(*) from raw."scjgj_qydj" r
            where r._partition = %(d)s
              and not exists (select 1 from staged."scjgj_qydj" s where s._partition = %(d)s and s._row_id = r._row_id)
              and not exists (select 1 from quality.rejects q where q.feed_id = 'scjgj_qydj' and q.stage = 'staged'
                                and q.scope = 'row' and q.partition_key = %(d)s
                                and (q.source_file, q.row_number) = (r._source_file, r._row_number))""",
        {"d": DAY},
    ).fetchone()[0]
    assert lost == 0


def test_staged_ids_pass_stdnum_and_legacy_ids_are_upgraded(warehouse_url, wh):
    catalog = load_catalog()
    raw, staged = _defs(catalog, "gaj")
    key = ingest_assets.feed_key(catalog.feed("gaj_ldrk"))
    result = dg.materialize(
        [raw, staged],
        selection=[key, ingest_assets.feed_key(catalog.feed("gaj_ldrk"), "staged")],
        partition_key=DAY,
        resources=_resources(warehouse_url),
    )
    assert result.success
    pairs = wh.execute(
        """select r.zjhm, s.id_number from raw."gaj_ldrk" r join staged."gaj_ldrk" s using (_partition, _row_id)
            where r._partition = %s""",
        (DAY,),
    ).fetchall()
    kept = [s for _, s in pairs if s]
    # stdnum's own check character and birth date (its birthplace rule rejects IDs as issued: issue 9)
    assert kept and all(ric.calc_check_digit(s) == s[17] and ric.get_birth_date(s) for s in kept)
    legacy = [(r, s) for r, s in pairs if r and len(r) == 15]
    assert legacy and all(s is None or (s[:6] + s[8:17] == r) for r, s in legacy)
    assert sum(1 for _, s in legacy if s) >= len(legacy) // 2


def _bad_catalog(tmp_path, world):
    """A test-only feed whose delivery has mostly invalid IDs: its completeness expectation must fail."""
    new = {
        "id": "gaj_bad_ids",
        "department": "gaj",
        "name": "测试",
        "name_en": "Bad IDs",
        "domain": "population",
        "archetype": "person_service",
        "source": {"kind": "file", "format": "csv", "encoding": "utf-8"},
        "records": 10,
        "key": ["BH"],
        "columns": {"BH": "record_key", "SFZH": "id_number", "RQ": "event_date"},
    }
    path = catalog_with(tmp_path, lambda doc: doc["feeds"].append(new))
    good = "33042119900101001" + ric.calc_check_digit("330421199001010010")
    ids = [good, good] + [good[:-1] + ("0" if good[-1] != "0" else "1")] * 8
    folder = world / "landing" / "gaj" / "gaj_bad_ids" / DAY
    folder.mkdir(parents=True)
    lines = ["BH,SFZH,RQ"] + [f"B{i},{v},2026-10-01" for i, v in enumerate(ids)]
    (folder / "a.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_failing_expectations_quarantine_the_partition_and_show_in_the_scorecard(
    tmp_path, warehouse_url, wh, monkeypatch
):
    world = tmp_path / "world"
    monkeypatch.setenv("JX_CATALOG", str(_bad_catalog(tmp_path, world)))
    monkeypatch.setenv("JX_WORLD_DIR", str(world))
    catalog = load_catalog()
    raw, staged = _defs(catalog, "gaj")
    scorecard = quality_assets.build_defs().assets[0]
    feed = catalog.feed("gaj_bad_ids")
    keys = [
        ingest_assets.feed_key(feed),
        ingest_assets.feed_key(feed, "staged"),
        dg.AssetKey(["quality", "scorecard"]),
    ]
    result = dg.materialize(
        [raw, staged, scorecard],
        selection=keys,
        partition_key=DAY,
        resources=_resources(warehouse_url),
        raise_on_error=False,
    )
    assert result.success  # the partition is quarantined instead (lib/quarantine.py): the run goes on
    evals = {e.check_name: e for e in result.get_asset_check_evaluations() if e.asset_key == keys[1]}
    assert evals["rows_reconcile"].passed and not evals["expectations"].passed
    assert evals["expectations"].severity == dg.AssetCheckSeverity.WARN
    assert ("gaj_bad_ids", DAY) in quarantine.active(wh)
    assert evals["expectations"].metadata["failed"].value == 1
    assert "id_number" in evals["expectations"].metadata["results"].value
    materialized = {e.asset_key for e in result.get_asset_materialization_events()}
    assert keys[2] in materialized  # the scorecard is built in the same run and shows the quarantined day

    # run downstream on its own again: the scorecard shows the failure and the reasons
    assert dg.materialize([scorecard], partition_key=DAY, resources=_resources(warehouse_url)).success
    card = wh.execute(
        "select rows_read, rows_staged, rows_rejected, rows_flagged, pass_rate, expectations_failed, reasons"
        " from quality.scorecard where feed_id = 'gaj_bad_ids' and partition_key = %s",
        (DAY,),
    ).fetchone()
    assert card[:4] == (10, 10, 0, 8) and float(card[4]) == 0.2 and card[5] == 1
    assert card[6] == {"id_checksum": 8}
    dept = wh.execute(
        "select rows_read, rows_flagged from quality.department_scorecard where department = 'gaj'"
        " and partition_key = %s",
        (DAY,),
    ).fetchone()
    assert dept[0] >= 10 and dept[1] >= 8


def test_allowance_scales_with_partition_size():
    small, large, huge = (expectations.allowance(0.9, n) for n in (10, 1000, 10**9))
    assert small < large < huge <= 0.9 and huge >= 0.899
    assert expectations.allowance(1.0, 3) == 1.0


def test_a_catalog_expectation_that_ge_does_not_know_is_a_clear_error(tmp_path):
    feed = load_catalog().feed("scjgj_qydj")
    bad = feed.model_copy(
        update={"expectations": [feed.expectations[0].model_copy(update={"type": "expect_magic"})]}
    )
    with pytest.raises(
        JxError, match="feed scjgj_qydj: expect_magic is not a Great Expectations expectation"
    ):
        expectations.suite(bad, 100)


def test_the_worlds_resent_records_are_staged_from_the_resend_file(world, wh):
    """The generated world's corrected re-sends (truth/resends.parquet): each re-sent record is staged once, from
    the day's last file, with the corrected value; its first delivery is rejected as a duplicate naming it."""
    import pandas as pd

    from jx_pipeline.lib import ingest, staging

    resends = pd.read_parquet(world / "truth" / "resends.parquet")
    resends = resends[resends["landing_date"] == DAY]
    assert len(resends) > 0, "the session world has no re-send on the first day"
    catalog = load_catalog()
    for feed_id, sent in resends.groupby("feed_id"):
        feed = catalog.feed(feed_id)
        raw = ingest.load_partition(wh, feed, DAY, "t", world=world)
        staging.stage_partition(wh, feed, DAY, "t")
        assert wh.execute(
            f'select count(distinct _row_id), count(*) from raw."{feed_id}" where _partition = %s', (DAY,)
        ).fetchone() == (raw.rows_loaded, raw.rows_loaded)
        key_col = feed.column_for("record_key").lower()
        for rec in sent.itertuples():
            staged_rows = wh.execute(
                f'select s._source_file, r."{rec.column.lower()}" from staged."{feed_id}" s'
                f' join raw."{feed_id}" r using (_partition, _row_id) where s._partition = %s and s.record_key = %s',
                (DAY, rec.record_key),
            ).fetchall()
            assert staged_rows == [(rec.file, rec.corrected)], (feed_id, rec.record_key)
            firsts = wh.execute(
                f'select r._source_file, q.value from raw."{feed_id}" r join quality.rejects q'
                " on q.feed_id = %s and q.partition_key = r._partition and q.reason = 'duplicate_key'"
                " and (q.source_file, q.row_number) = (r._source_file, r._row_number)"
                f' where r._partition = %s and btrim(r."{key_col}") = %s',
                (feed_id, DAY, rec.record_key),
            ).fetchall()
            assert firsts and all(f != rec.file and f"(kept: {rec.file} row " in q for f, q in firsts), firsts
    wh.rollback()


def test_the_allowance_quantile_is_scipy_stats_binomial_ppf():
    """The quantile is bisected on scipy.special's CDF (a cheaper import): scipy.stats' own ppf is the oracle, at
    the false-failure rate the expectations use, over small and large partitions and any target share."""
    import random

    from scipy.stats import binom

    rng = random.Random(13)
    cases = [
        (n, p) for n in (1, 2, 3, 7, 10, 100, 999, 10**4, 10**6) for p in (0.5, 0.85, 0.9, 0.95, 0.99, 0.999)
    ]
    cases += [(rng.randint(1, 3_000_000), rng.random()) for _ in range(200)]
    q = expectations.FALSE_FAILURE
    assert [expectations.binomial_quantile(q, n, p) for n, p in cases] == [
        int(binom.ppf(q, n, p)) for n, p in cases
    ]


def test_a_department_staged_on_two_workers_equals_one_process(
    warehouse_url, source_url, wh, monkeypatch, tmp_path
):
    """The department's feeds are staged on forked workers (lib/fork_pool.py), each on its own connection: the
    same rows, rejects, expectation results and Dagster events, in the same order, as in one process."""
    import os

    from jx_pipeline.defs.staged import results
    from jx_pipeline.lib import fork_pool

    catalog = load_catalog()
    raw, staged = _defs(catalog, "scjgj")  # several feeds, one with expectations of its own (GE)
    feeds = [f for f in catalog.feeds if f.department == "scjgj"]
    assert len(feeds) > 2 and any(f.expectations for f in feeds)
    assert dg.materialize([raw], partition_key=DAY, resources=_resources(warehouse_url, source_url)).success
    pids = tmp_path / "pids"
    stage_feed = results.stage_feed

    def spy(conn, feed, partitions, batch_id):  # forked workers inherit it: they log their pid
        with pids.open("a") as f:
            f.write(f"{os.getpid()}\n")
        return stage_feed(conn, feed, partitions, batch_id)

    monkeypatch.setattr(results, "stage_feed", spy)
    monkeypatch.setattr(results, "PARALLEL_ROWS", 0)  # the demo's partitions are small
    ids = "'" + "', '".join(f.id for f in feeds) + "'"
    tables = [
        "select feed_id, partition_key, source_file, row_number, column_name, reason, value, scope"
        f" from quality.rejects where stage = 'staged' and feed_id in ({ids})",
        "select feed_id, partition_key, expectation, column_name, success, element_count, unexpected_count"
        f" from quality.expectation_result where feed_id in ({ids})",
        f"select feed_id, rows_read, rows_loaded, rows_rejected from quality.load_audit where stage = 'staged'"
        f" and feed_id in ({ids})",
    ]
    tables += [
        f"select to_jsonb(s) - '_batch_id' from staged.{f.id} s"
        for f in catalog.feeds
        if f.department == "scjgj"
    ]
    seen = []
    for n in ("2", "1"):
        monkeypatch.setenv(fork_pool.WORKERS_ENV, n)
        pids.write_text("")
        result = dg.materialize([staged], partition_key=DAY, resources=_resources(warehouse_url, source_url))
        assert result.success
        events = [
            (
                e.event_type_value,
                e.asset_key.to_user_string(),
                dict(e.event_specific_data.materialization.metadata),
            )
            for e in result.get_asset_materialization_events()
        ] + [
            (c.asset_key.to_user_string(), c.check_name, c.passed, dict(c.metadata))
            for c in result.get_asset_check_evaluations()
        ]
        rows = [sorted(map(str, wh.execute(q).fetchall())) for q in tables]
        wh.rollback()  # its locks would hold the next staging's drop of the day's tables
        seen.append((events, rows, pids.read_text().split()))
    (events2, rows2, pids2), (events1, rows1, pids1) = seen
    assert len(set(pids2)) == 2 and str(os.getpid()) not in pids2  # two workers, neither of them this process
    assert set(pids1) == {str(os.getpid())} and len(pids1) == len(pids2) == len(feeds)
    assert events2 == events1 and len(events1) == 3 * len(feeds)  # a materialization and two checks each
    assert rows2 == rows1 and all(rows1)

    # fewer raw rows than PARALLEL_ROWS: staged in this process, whatever the workers allowed
    raw_rows = wh.execute(
        f"select sum(rows_loaded) from quality.load_audit where stage = 'raw' and feed_id in ({ids})"
        " and partition_key = %s",
        (DAY,),
    ).fetchone()[0]
    wh.rollback()
    monkeypatch.setattr(results, "PARALLEL_ROWS", raw_rows + 1)
    monkeypatch.setenv(fork_pool.WORKERS_ENV, "2")
    pids.write_text("")
    assert dg.materialize(
        [staged], partition_key=DAY, resources=_resources(warehouse_url, source_url)
    ).success
    assert set(pids.read_text().split()) == {str(os.getpid())}

    # in process, each feed's partitions commit on their own: the connection is left idle for the next feed
    with connect(warehouse_url) as conn:
        stage_feed(conn, feeds[0], [DAY], "idle-check")
        assert conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
