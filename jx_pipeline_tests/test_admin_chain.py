"""The admin chain on the real warehouse: dg.materialize, the Dagster CLI on Postgres storage, idempotence."""

import dagster as dg
import pytest

from jx_pipeline.defs.admin import assets, checks
from jx_pipeline.lib import divisions as sources
from jx_pipeline.lib.errors import JxError
from jx_pipeline.lib.pg import connect
from jx_pipeline.lib.warehouse import WarehouseResource
from jx_pipeline_tests.conftest import run_cli, table_digest

ASSETS = [assets.raw_admin_division, assets.raw_admin_boundary, assets.core_admin_unit]


def _materialize(warehouse_url):
    return dg.materialize(ASSETS, resources={"warehouse": WarehouseResource(url=warehouse_url)})


def test_materialize_builds_admin_units_with_metadata(warehouse_url, wh):
    result = _materialize(warehouse_url)
    assert result.success
    levels = dict(wh.execute("select level, count(*) from core.admin_unit group by level").fetchall())
    assert levels == {"city": 1, "county": 7, "town": 72, "village": 1202}
    assert wh.execute(
        "select name, parent_code from core.admin_unit where code = '330402007024'"
    ).fetchone() == ("百福弄社区居委会", "330402007")
    assert (
        wh.execute("select short_name from core.admin_unit where code = '330402007024'").fetchone()[0]
        == "百福弄社区"
    )

    events = result.get_asset_materialization_events()
    mats = {e.asset_key.to_user_string(): e.materialization.metadata for e in events}
    core = mats["core/admin_unit"]
    assert core["dagster/row_count"].value == 1282
    assert core["dagster/table_name"].value.endswith(".core.admin_unit")
    cols = {c.name: c.type for c in core["dagster/column_schema"].schema.columns}
    assert cols["geom"] == "geometry(MultiPolygon,4490)" and "parent_code" in cols
    assert mats["raw/reference/admin_division"]["dagster/row_count"].value == 1281

    evals = {e.check_name: e.passed for e in result.get_asset_check_evaluations()}
    assert evals == {"level_counts": True, "parent_tree": True, "boundaries": True}
    assert wh.execute("select count(*) from core.admin_unit where geom is null").fetchone()[0] == 0
    assert mats["raw/reference/admin_boundary"]["dagster/row_count"].value == 1282


def test_rematerializing_leaves_an_identical_table(warehouse_url, wh):
    _materialize(warehouse_url)
    before = table_digest(wh, "core.admin_unit", "code")
    wh.commit()
    _materialize(warehouse_url)
    assert table_digest(wh, "core.admin_unit", "code") == before
    assert (
        wh.execute("select count(*) from raw.admin_division").fetchone()[0] == 1281
    )  # replaced, not appended


def test_checks_fail_on_a_broken_tree(warehouse_url, wh):
    _materialize(warehouse_url)
    with wh.transaction(force_rollback=True):
        wh.execute("set constraints all deferred")
        wh.execute("delete from core.admin_unit where code = '330402007'")  # a town with 10+ villages
        orphans = wh.execute(
            "select count(*) from core.admin_unit where parent_code = '330402007'"
        ).fetchone()[0]
        wh.execute(
            "update core.admin_unit set parent_code = '330411' where code = '330402008'"
        )  # wrong county
        results = {r.check_name: r for r in checks.evaluate(wh)}
    assert not results["level_counts"].passed
    assert results["level_counts"].metadata["town_count"].value == 71
    assert not results["parent_tree"].passed
    assert results["parent_tree"].metadata["broken_units"].value == orphans + 1
    assert "parent missing" in results["parent_tree"].metadata["sample"].value


def test_boundary_check_fails_on_a_gap_or_overlap(warehouse_url, wh):
    _materialize(warehouse_url)
    with wh.transaction(force_rollback=True):
        wh.execute(
            "update core.admin_unit set geom = st_multi(st_translate(geom, 0.002, 0)) where code = '330402007024'"
        )
        moved = {r.check_name: r for r in checks.evaluate(wh)}["boundaries"]
    assert not moved.passed
    assert moved.metadata["parents_not_tessellated"].value >= 1  # its town now has a gap and an overlap
    with wh.transaction(force_rollback=True):
        wh.execute("update core.admin_unit set geom = null where code = '330402007024'")
        gone = {r.check_name: r for r in checks.evaluate(wh)}["boundaries"]
    assert not gone.passed and gone.metadata["units_without_boundary"].value == 1
    assert {r.check_name: r for r in checks.evaluate(wh)}["boundaries"].passed


def test_bad_source_row_names_file_row_and_column_and_keeps_previous_state(
    warehouse_url, wh, tmp_path, monkeypatch
):
    _materialize(warehouse_url)
    before = table_digest(wh, "raw.admin_division", "source_file, row_number")
    wh.commit()
    src = sources.source_dir()
    for f in src.glob("*.csv"):
        (tmp_path / f.name).write_bytes(f.read_bytes())
    villages = (tmp_path / "jiaxing_villages.csv").read_text(encoding="utf-8").splitlines()
    villages[5] = villages[5].replace("330402", "33O402", 1)  # letter O instead of zero, on file row 6
    (tmp_path / "jiaxing_villages.csv").write_text("\n".join(villages) + "\n", encoding="utf-8")
    monkeypatch.setenv("JX_ADMIN_DIVISIONS_DIR", str(tmp_path))

    with pytest.raises(JxError) as err:
        list(sources.read_rows())
    assert "jiaxing_villages.csv row 6 column code" in err.value.message and "33O402" in err.value.message

    result = dg.materialize(
        ASSETS, resources={"warehouse": WarehouseResource(url=warehouse_url)}, raise_on_error=False
    )
    assert not result.success
    assert table_digest(wh, "raw.admin_division", "source_file, row_number") == before


def test_cli_materialize_records_the_run_in_postgres(dagster_url):
    with connect(dagster_url) as conn:
        before = conn.execute("select count(*) from runs where status = 'SUCCESS'").fetchone()[0]
    done = run_cli("materialize", "--select", "group:reference", "--executor", "multiprocess")
    assert done.returncode == 0, done.stderr[-3000:]
    with connect(dagster_url) as conn:
        after = conn.execute("select count(*) from runs where status = 'SUCCESS'").fetchone()[0]
        checks_passed = conn.execute(
            """select count(*) from asset_check_executions
                where execution_status = 'SUCCEEDED' and run_id =
                      (select run_id from runs order by create_timestamp desc limit 1)"""
        ).fetchone()[0]
    assert after == before + 1
    assert checks_passed == 3
