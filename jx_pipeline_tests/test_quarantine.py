"""Only good data is published (issue 11 item 6): a feed partition whose blocking check fails is quarantined,
the run goes on for every other feed and department, linking and identities leave the partition out (each record
falls back to its latest version from a good partition), the quarantine outlives the run, and a fixed
re-delivery clears it.

The bad file: day 2 of 自然资源局 (zrzyj)'s 耕地保护 feed (zrzyj_gdbh, Parquet) delivered with every amount out of
the feed's range, so its own expectation (amount between 0.1 and 3000 for 99 % of rows) fails. Expected link rows
are counted from the landing files themselves (pyarrow / csv), not from the warehouse.
"""

import csv
import shutil
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import dagster as dg
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from jx_pipeline.catalog import load_catalog
from jx_pipeline.defs.admin import assets as admin
from jx_pipeline.defs.entities import assets as entities
from jx_pipeline.defs.ingest import assets as ingest_assets
from jx_pipeline.defs.linking import assets as linking_assets
from jx_pipeline.defs.staged import assets as staged_assets
from jx_pipeline.lib import automation, marts, quarantine, staging
from jx_pipeline.lib.migrations import migrate
from jx_pipeline.lib.pg import connect
from jx_pipeline.lib.warehouse import WarehouseResource
from jx_pipeline_tests.conftest import WORLD_DAYS, run_cli

CATALOG = load_catalog()
DAYS = [f"2026-11-{d:02d}" for d in range(1, WORLD_DAYS + 2)]  # the full extract, then the increments
BAD_DAY = DAYS[1]
BAD = CATALOG.feed("zrzyj_gdbh")  # Parquet, daily increments (I / U / D), expectation on amount
SAME_DEPT = CATALOG.feed("zrzyj_ghxk")  # the same department's next feed (Parquet, organisations)
OTHER = CATALOG.feed("jyj_jszg")  # another department (CSV, persons)
FEEDS = (BAD, SAME_DEPT, OTHER)


def _bad_file(world: Path) -> Path:
    return next((world / "landing" / BAD.department / BAD.id / BAD_DAY).glob("*.parquet"))


def _corrupt(world: Path) -> None:
    """Every amount of the bad day out of the feed's range (still a number: staged keeps it)."""
    path = _bad_file(world)
    table = pq.read_table(path)
    col = BAD.column_for("amount")
    amounts = pa.array(["99999"] * table.num_rows, type=table.schema.field(col).type)
    pq.write_table(table.set_column(table.schema.get_field_index(col), col, amounts), path)


def _rows(world: Path, feed, day: str) -> list[dict]:
    """The day's records of a feed as delivered, in delivery order (files in name order)."""
    out = []
    for path in sorted((world / "landing" / feed.department / feed.id / day).glob("*")):
        if path.suffix == ".parquet":
            out += pq.read_table(path).to_pylist()
        else:
            enc = "utf-8-sig" if feed.source.encoding == "utf-8" else feed.source.encoding
            with path.open(encoding=enc, newline="") as fh:
                out += list(csv.DictReader(fh, delimiter=feed.source.delimiter))
    return out


def _expected(world: Path, feed, days: list[str]) -> dict[str, tuple[str, str]]:
    """record key -> (day, change type) of its latest delivery over ``days``; deleted records left out."""
    key, change = feed.column_for("record_key"), feed.column_for("change_type")
    latest = {}
    for day in days:
        for r in _rows(world, feed, day):
            if (r[key] or "").strip():
                latest[r[key].strip()] = (day, (r.get(change) or "").strip() if change else "")
    return {k: v for k, v in latest.items() if v[1] != "D"}


def _resources(url):
    return {
        "warehouse": WarehouseResource(url=url),
        "source_db": ingest_assets.SourceDatabaseResource(url=""),
    }


def _assets():
    by_dept = ingest_assets.by_department(CATALOG)
    out = []
    for dept in sorted({f.department for f in FEEDS}):
        out += [
            ingest_assets._department_asset(dept, by_dept[dept], CATALOG),
            staged_assets._department_asset(dept, by_dept[dept], CATALOG),
        ]
    return out + list(linking_assets.build_defs().assets)


LINKING = [dg.AssetKey(["core", n]) for n in ("entity_link", "person", "legal_person")]


def _keys(feeds, layers=("raw", "staged")):
    return [ingest_assets.feed_key(f, layer) for f in feeds for layer in layers]


def _run(url, selection, first=None, last=None):
    tags = {"dagster/asset_partition_range_start": first, "dagster/asset_partition_range_end": last}
    return dg.materialize(
        _assets(),
        selection=selection,
        tags=tags if first else None,
        resources=_resources(url),
        raise_on_error=False,
    )


def _links(url, feed) -> set[str]:
    with connect(url) as conn:
        rows = conn.execute("select record_key from core.entity_link where feed_id = %s", (feed.id,))
        return {k for (k,) in rows.fetchall()}


def _quarantine_rows(url) -> list[tuple]:
    with connect(url) as conn:
        return conn.execute(
            "select feed_id, partition_key, check_name, reason, cleared_at is not null, run_id, cleared_by_run"
            " from quality.quarantine order by quarantine_id"
        ).fetchall()


@pytest.fixture(scope="module")
def bad_world(world, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("quarantine") / "w"
    shutil.copytree(world, out)
    _corrupt(out)
    return out


@pytest.fixture(scope="module")
def gazetteer(make_scratch_db_module, bad_world):
    """A scratch warehouse with the admin chain and the geographic entities (what linking attaches to)."""
    url = make_scratch_db_module()
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("JX_WORLD_DIR", str(bad_world))
        result = dg.materialize(
            [
                admin.raw_admin_division,
                admin.raw_admin_boundary,
                admin.core_admin_unit,
                entities.core_geo_entity,
                entities.core_address_point,
            ],
            resources=_resources(url),
        )
    assert result.success
    return url


def test_a_failing_partition_is_quarantined_the_rest_is_linked_and_a_fixed_redelivery_clears_it(
    gazetteer, bad_world, world, monkeypatch
):
    url = gazetteer
    monkeypatch.setenv("JX_WORLD_DIR", str(bad_world))
    good_days = [d for d in DAYS if d != BAD_DAY]

    # one run: three feeds of two departments over every day, then links and identities
    result = _run(url, _keys(FEEDS) + LINKING, DAYS[0], DAYS[-1])
    assert result.success  # the failed expectation did not stop the run ...
    evals = {(e.asset_key.to_user_string(), e.check_name): e for e in result.get_asset_check_evaluations()}
    failed = evals[("staged/zrzyj/gdbh", "expectations")]
    assert not failed.passed and failed.severity == dg.AssetCheckSeverity.WARN  # ... it failed as a warning
    assert list(failed.metadata["quarantined"].value) == [BAD_DAY]
    others = {k: e for k, e in evals.items() if k != ("staged/zrzyj/gdbh", "expectations")}
    assert all(e.passed for e in others.values()), [k for k, e in others.items() if not e.passed]
    assert {"core/entity_link", "core/person", "core/legal_person"} <= {
        e.asset_key.to_user_string() for e in result.get_asset_materialization_events()
    }

    rows = _quarantine_rows(url)
    assert [r[:3] for r in rows] == [(BAD.id, BAD_DAY, quarantine.EXPECTATIONS)]
    assert "values_to_be_between(amount)" in rows[0][3] and rows[0][4] is False
    assert rows[0][5] == result.run_id
    with connect(url) as conn:
        assert quarantine.active(conn) == {(BAD.id, BAD_DAY)}
        view = conn.execute("select feed_id, partition_key, checks from quality.quarantine_active").fetchall()
        assert view == [(BAD.id, BAD_DAY, [quarantine.EXPECTATIONS])]
        # the bad day's rows are staged (kept for the engineers) but not current
        staged_bad = conn.execute(
            f'select count(*) from staged."{BAD.id}" where _partition = %s', (BAD_DAY,)
        ).fetchone()[0]
        current = dict(
            conn.execute(
                f"select record_key, _partition from {staging.current(conn, BAD).as_string(conn)}"
            ).fetchall()
        )
    assert staged_bad == len(_rows(bad_world, BAD, BAD_DAY)) > 0

    # the bad day is left out: records fall back to their previous good version, new ones are absent
    expected = _expected(world, BAD, good_days)
    assert _links(url, BAD) == set(expected)
    assert BAD_DAY not in set(current.values())
    bad_day = {
        r[BAD.column_for("record_key")]: r[BAD.column_for("change_type")] for r in _rows(world, BAD, BAD_DAY)
    }
    untouched_later = {k: c for k, c in bad_day.items() if expected.get(k, (None,))[0] != DAYS[2]}
    assert {c for c in untouched_later.values()} == {"I", "U", "D"}  # the world has all three kinds that day
    for key, change in untouched_later.items():
        if change == "I":  # first seen in the quarantined partition: absent
            assert key not in current
        else:  # changed or deleted there: its day-1 version counts (the deletion is not applied yet)
            assert current[key] == DAYS[0], key
    # the other feeds (same department and another one) are linked in full
    for feed in (SAME_DEPT, OTHER):
        assert _links(url, feed) == set(_expected(world, feed, DAYS)), feed.id

    # the asset metadata says what was left out and why
    link_meta = next(
        e.materialization.metadata
        for e in result.get_asset_materialization_events()
        if e.asset_key == dg.AssetKey(["core", "entity_link"])
    )
    assert [(q["feed_id"], q["partition"]) for q in link_meta["quarantined"].value] == [(BAD.id, BAD_DAY)]

    # published: the marts count the good versions only and say which day was left out and why
    with connect(url) as conn:
        marts.refresh(conn, CATALOG)
        coverage = {
            f: (records, not_linked, quarantined, reasons)
            for f, records, not_linked, quarantined, reasons in conn.execute(
                "select feed_id, current_records, not_linked_yet, partitions_quarantined, quarantine_reasons"
                " from mart.feed_link_coverage where feed_id = any(%s)",
                ([f.id for f in FEEDS],),
            ).fetchall()
        }
    assert coverage[BAD.id][:3] == (len(expected), 0, 1)
    assert coverage[BAD.id][3] == [f"{BAD_DAY}: {rows[0][2]}: {rows[0][3]}"]
    for feed in (SAME_DEPT, OTHER):
        assert coverage[feed.id] == (len(_expected(world, feed, DAYS)), 0, 0, []), feed.id

    # a new run does not forget it: the same feed's next day passes, and the linking after it keeps the bad day out
    again = _run(url, _keys([BAD]) + LINKING, DAYS[2], DAYS[2])
    assert again.success and all(e.passed for e in again.get_asset_check_evaluations())
    with connect(url) as conn:
        assert quarantine.active(conn) == {(BAD.id, BAD_DAY)}
    assert _links(url, BAD) == set(expected)

    # the department re-delivers the day, fixed: the partition passes, the quarantine is cleared, its records link
    shutil.copy(_bad_file(world), _bad_file(bad_world))
    fixed = _run(url, _keys([BAD]) + LINKING, BAD_DAY, BAD_DAY)
    assert fixed.success and all(e.passed for e in fixed.get_asset_check_evaluations())
    rows = _quarantine_rows(url)
    assert len(rows) == 1 and rows[0][4] is True and rows[0][6] == fixed.run_id  # cleared, kept as history
    with connect(url) as conn:
        assert quarantine.active(conn) == set()
    assert _links(url, BAD) == set(_expected(world, BAD, DAYS))
    assert _links(url, BAD) - set(expected)  # the bad day's new records are linked now


def test_materialize_exits_0_and_prints_the_quarantine_while_a_crash_still_fails(
    world, tmp_path, make_scratch_db
):
    """`jx-pipeline materialize`: a quarantined check failure is printed and the command succeeds (so `make demo`
    goes on to linking); a step that crashes (a file that is not Parquet at all) still fails the command."""
    mini = tmp_path / "w"  # the bad feed's day only
    day = Path("landing", BAD.department, BAD.id, BAD_DAY)
    shutil.copytree(world / day, mini / day)
    _corrupt(mini)
    env = {"JX_WORLD_DIR": str(mini), "JX_WAREHOUSE_URL": make_scratch_db()}
    args = ("materialize", "--select", "key:raw/zrzyj/gdbh or key:staged/zrzyj/gdbh")
    args += ("--partition-range", f"{BAD_DAY}...{BAD_DAY}")

    done = run_cli(*args, env=env)
    assert done.returncode == 0, done.stderr
    assert "quarantined feed partitions (1), left out of linking and the marts" in done.stdout
    line = next(x for x in done.stdout.splitlines() if x.strip().startswith(f"{BAD.id} {BAD_DAY}"))
    assert "staged/expectations: 1 expectation(s) failed: column_values_to_be_between(amount)" in line
    assert f"--partition-range {BAD_DAY}...{BAD_DAY}" in done.stdout  # what to run once the file is fixed

    _bad_file(mini).write_bytes(b"PAR1 not a Parquet file")
    crashed = run_cli(*args, env=env)
    assert crashed.returncode != 0
    assert (
        "materializing 'key:raw/zrzyj/gdbh or key:staged/zrzyj/gdbh' failed"
        in crashed.stderr + crashed.stdout
    )
    assert f"{BAD.id} {BAD_DAY}" in crashed.stdout  # the earlier run's quarantine still holds


def test_a_quarantine_is_renewed_while_it_fails_cleared_once_and_reopened_as_a_new_episode(make_scratch_db):
    """quality.quarantine keeps one open row per feed, day and check: failing again renews it (same since, new
    reason and run), a pass clears it (kept as history), a later failure opens a new row."""
    url = make_scratch_db()
    with connect(url) as conn:
        migrate(conn)
        conn.commit()
        quarantine.record(conn, BAD, BAD_DAY, quarantine.EXPECTATIONS, "first reason", "run-1")
        quarantine.record(conn, BAD, BAD_DAY, quarantine.RAW, "rows lost", "run-1")
        quarantine.record(conn, OTHER, BAD_DAY, quarantine.RAW, None, "run-1")  # a pass with nothing open
        conn.commit()
        since = conn.execute("select min(since) from quality.quarantine").fetchone()[0]
        quarantine.record(conn, BAD, BAD_DAY, quarantine.EXPECTATIONS, "second reason", "run-2")
        conn.commit()
        assert quarantine.active(conn) == {(BAD.id, BAD_DAY)}
        [row] = quarantine.listing(conn)
        assert row["checks"] == [quarantine.RAW, quarantine.EXPECTATIONS]
        assert row["reason"] == f"{quarantine.RAW}: rows lost; {quarantine.EXPECTATIONS}: second reason"
        assert row["department"] == BAD.department and row["since"] == since.isoformat(timespec="seconds")

        quarantine.record(conn, BAD, BAD_DAY, quarantine.EXPECTATIONS, None, "run-3")
        assert quarantine.active(conn) == {(BAD.id, BAD_DAY)}  # the raw check has not passed yet
        quarantine.record(conn, BAD, BAD_DAY, quarantine.RAW, None, "run-3")
        assert quarantine.active(conn) == set() and quarantine.listing(conn) == []
        quarantine.record(conn, BAD, BAD_DAY, quarantine.EXPECTATIONS, "third reason", "run-4")
        rows = conn.execute(
            "select check_name, reason, run_id, cleared_by_run from quality.quarantine order by quarantine_id"
        ).fetchall()
    assert rows == [
        (quarantine.EXPECTATIONS, "second reason", "run-2", "run-3"),
        (quarantine.RAW, "rows lost", "run-1", "run-3"),
        (quarantine.EXPECTATIONS, "third reason", "run-4", None),
    ]


def _feed_and_rebuild(name: str, blocking: bool | None):
    """A day-partitioned feed with the real staged check specs (or the same ones declared Dagster-blocking)
    that quarantines the day when the run is tagged fail=1, as results.stage_feed does, and a rebuild downstream
    carrying the pipeline's automation condition."""
    key = dg.AssetKey(["staged", "quartest", name])
    specs = staged_assets._checks([key])
    if blocking is not None:
        specs = [
            dg.AssetCheckSpec(s.name, asset=key, blocking=blocking, description=s.description) for s in specs
        ]

    @dg.asset(key=key, partitions_def=ingest_assets.DAILY, check_specs=specs)
    def feed(context: dg.AssetExecutionContext):
        failures = {context.partition_key: "1 expectation(s) failed"} if context.run.tags.get("fail") else {}
        yield dg.MaterializeResult(metadata=quarantine.metadata(failures))
        yield dg.AssetCheckResult(check_name="rows_reconcile", passed=True)
        yield dg.AssetCheckResult(
            check_name="expectations", passed=not failures, severity=quarantine.severity(failures)
        )

    @dg.asset(
        key=["core", f"quartest_{name}"],
        deps=[feed],
        automation_condition=automation.after_ingestion(dg.AssetSelection.assets(feed), cron="none"),
    )
    def rebuild() -> None: ...

    return [feed, rebuild]


@pytest.mark.parametrize("blocking", [None, True], ids=["as-declared", "declared-blocking"])
def test_a_quarantined_day_does_not_hold_back_the_automated_linking_of_the_others(blocking):
    """The automation of linking and the marts (lib/automation.after_ingestion, as the automation sensor
    evaluates it) goes on after a feed's day is quarantined; it would wait forever if the feed checks were
    declared Dagster-blocking (a WARN failure counts as failed for ``all_deps_blocking_checks_passed``)."""
    assets = _feed_and_rebuild("declared" if blocking is None else "blocking", blocking)
    at = datetime.fromisoformat(f"{BAD_DAY}T09:00").replace(tzinfo=ZoneInfo("Asia/Shanghai"))
    with dg.DagsterInstance.get() as instance:  # the test session's Postgres storage
        before = dg.evaluate_automation_conditions(defs=assets, instance=instance, evaluation_time=at)
        assert before.total_requested == 0  # nothing landed yet
        run = dg.materialize(assets[:1], partition_key=BAD_DAY, instance=instance, tags={"fail": "1"})
        assert run.success
        [check] = [e for e in run.get_asset_check_evaluations() if e.check_name == "expectations"]
        assert not check.passed and check.severity == dg.AssetCheckSeverity.WARN
        requested = dg.evaluate_automation_conditions(
            defs=assets, instance=instance, evaluation_time=at.replace(minute=1), cursor=before.cursor
        )
    assert requested.total_requested == (1 if blocking is None else 0)
