"""Every blocking check can fail: the data behind it is corrupted (a row dropped on the way in, a stray row added, a
link lost or pointed elsewhere, a file truncated after loading) and the check fails; on clean data it passes.

Faults inside a real Dagster run are injected with PostgreSQL triggers on the tables the step writes (a row
silently skipped, a key rewritten): the load's own counters then agree with themselves, so only a check with an
independent count sees it. Corruption after a load is made in a transaction that is rolled back, and the same
counting functions the assets call (lib/reconcile.py) are run on it. Every database here is a scratch one.
"""

import shutil
from contextlib import contextmanager

import dagster as dg
import pytest

from jx_pipeline.catalog import load_catalog
from jx_pipeline.defs.admin import assets as admin
from jx_pipeline.defs.entities import assets as entities
from jx_pipeline.defs.ingest import assets as ingest_assets
from jx_pipeline.defs.linking import assets as linking_assets
from jx_pipeline.defs.staged import assets as staged_assets
from jx_pipeline.lib import ingest, quarantine, reconcile, staging
from jx_pipeline.lib.migrations import migrate
from jx_pipeline.lib.pg import connect
from jx_pipeline.lib.warehouse import WarehouseResource, run_sql
from jx_pipeline_tests.conftest import WORLD_DAYS

DAYS = [f"2026-11-{d:02d}" for d in range(1, WORLD_DAYS + 1)]
DAY = DAYS[0]
DEPT = "jyj"  # a database feed, CSV (gbk, utf-8), JSON lines and xlsx; persons and organisations
PARQUET = "wjw_mzjz"
CATALOG = load_catalog()


def _resources(url, source_url=""):
    return {
        "warehouse": WarehouseResource(url=url),
        "source_db": ingest_assets.SourceDatabaseResource(url=source_url),
    }


def _layers(dept):
    feeds = ingest_assets.by_department(CATALOG)[dept]
    return (
        ingest_assets._department_asset(dept, feeds, CATALOG),
        staged_assets._department_asset(dept, feeds, CATALOG),
    )


def _linking():
    assets = linking_assets.build_defs().assets
    link = next(a for a in assets if dg.AssetKey(["core", "entity_link"]) in a.keys)
    person = next(a for a in assets if dg.AssetKey(["core", "person"]) in a.keys)
    return {"entity_link": link, "core_identity": person}


def _evals(result) -> dict[tuple[str, str], dg.AssetCheckEvaluation]:
    return {(e.asset_key.to_user_string(), e.check_name): e for e in result.get_asset_check_evaluations()}


def _meta(evaluation, name):
    return evaluation.metadata[name].value


def _materialized(result) -> set[str]:
    return {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()}


def _run(assets, url, source_url="", selection=None, partition=DAY, last=None):
    tags = (
        {"dagster/asset_partition_range_start": partition, "dagster/asset_partition_range_end": last}
        if last
        else None
    )
    return dg.materialize(
        assets,
        selection=selection,
        partition_key=None if last else partition,
        tags=tags,
        resources=_resources(url, source_url),
        raise_on_error=False,
    )


@contextmanager
def _trigger(url, table, body, when="before insert"):
    """A row trigger on ``table`` whose plpgsql ``body`` may skip (return null) or rewrite a row."""
    with connect(url) as conn:
        conn.execute(
            f"create or replace function public.jx_fault() returns trigger language plpgsql as $$ begin {body} end $$"
        )
        conn.execute(
            f"create trigger jx_fault {when} on {table} for each row execute function public.jx_fault()"
        )
        conn.commit()
    try:
        yield
    finally:
        with connect(url) as conn:
            conn.execute(f"drop trigger if exists jx_fault on {table}")
            conn.commit()


def _forget(url, statement):
    """Rows the next rebuild must write again: it writes only rows that changed (lib/rebuild.py), so a fault
    trigger on the table sees those."""
    with connect(url) as conn:
        conn.execute(statement)
        conn.commit()


def _migrated(url):
    with connect(url) as conn:
        migrate(conn)
        conn.commit()


@pytest.fixture(scope="module")
def pipeline(world, make_scratch_db_module, source_url):
    """A scratch warehouse built by real Dagster runs: the admin chain, the gazetteer, one department (and a
    Parquet feed) raw and staged over the world's days, then links and identities."""
    url = make_scratch_db_module()
    results = [
        dg.materialize(
            [
                admin.raw_admin_division,
                admin.raw_admin_boundary,
                admin.core_admin_unit,
                entities.core_geo_entity,
                entities.core_address_point,
            ],
            resources=_resources(url),
        )
    ]
    raw, staged = _layers(DEPT)
    results.append(_run([raw, staged], url, source_url, partition=DAYS[0], last=DAYS[-1]))
    praw, pstaged = _layers("wjw")
    keys = [ingest_assets.feed_key(CATALOG.feed(PARQUET), layer) for layer in ("raw", "staged")]
    results.append(_run([praw, pstaged], url, source_url, selection=keys, partition=DAYS[0], last=DAYS[-1]))
    link = _linking()
    results.append(_run([link["entity_link"], link["core_identity"]], url, partition=None))
    assert all(r.success for r in results)
    return url, results


def test_clean_data_passes_every_blocking_check(pipeline):
    _, results = pipeline
    evals = {k: e for r in results for k, e in _evals(r).items()}
    assert all(e.passed for e in evals.values()), [k for k, e in evals.items() if not e.passed]
    names = {name for _, name in evals}
    assert names == {
        "level_counts",
        "boundaries",
        "parent_tree",
        "rows_match_handover",
        "parses_to_itself",
        "one_point_per_door_plate",
        "rows_reconcile",
        "expectations",
        "one_row_per_record",
        "one_membership_per_record",
    }
    for (key, name), e in evals.items():
        if "expected" in e.metadata:  # the counted checks: the independent figure is shown and not trivial
            assert _meta(e, "expected") == _meta(e, "found"), (key, name)
    assert _meta(evals[("raw/jyj/jszg", "rows_reconcile")], "expected") > 0
    assert _meta(evals[("core/entity_link", "one_row_per_record")], "expected") > 100
    assert _meta(evals[("core/person", "one_membership_per_record")], "expected") > 0
    assert _meta(evals[("core/legal_person", "one_membership_per_record")], "expected") > 0
    # the current records were counted on a second connection in the step's snapshot (lib/aside.py)
    for key in (("core/entity_link", "one_row_per_record"), ("core/person", "one_membership_per_record")):
        assert _meta(evals[key], "current_counted").startswith("aside"), _meta(evals[key], "current_counted")


def _drop_one(layer, feed, day=DAY):
    """SQL deleting one row of a feed's day table (the partition itself: ctids repeat across partitions)."""
    table = f'{layer}."{ingest.day_name(feed, day)}"'
    return f"delete from {table} where ctid = (select min(ctid) from {table})"


# --- raw -------------------------------------------------------------------------------------------------------


def test_raw_check_fails_when_copy_stops_at_an_end_of_data_line(tmp_path, scratch_db, monkeypatch):
    """A line ``\\.`` ends COPY's input without an error: the rows after it are lost, COPY's own count agrees."""
    feed = CATALOG.feed("jyj_jszg")  # csv, utf-8
    cols = list(feed.columns)
    rows = [",".join(f"{c}{i}" for c in cols) for i in range(4)]
    folder = tmp_path / "landing" / feed.department / feed.id / DAY
    folder.mkdir(parents=True)
    (folder / "a.csv").write_text("\n".join([",".join(cols), *rows[:2], "\\.", *rows[2:]]) + "\n")
    monkeypatch.setenv("JX_WORLD_DIR", str(tmp_path))
    raw, staged = _layers(DEPT)
    keys = [ingest_assets.feed_key(feed, layer) for layer in ("raw", "staged")]
    result = _run([raw, staged], scratch_db, selection=keys)
    check = _evals(result)[("raw/jyj/jszg", "rows_reconcile")]
    assert not check.passed
    assert (_meta(check, "expected"), _meta(check, "found")) == (5, 2)
    # blocking: the partition is quarantined (a warning, the run goes on) and nothing downstream reads it
    assert check.severity == dg.AssetCheckSeverity.WARN
    with connect(scratch_db) as conn:
        assert quarantine.active(conn) == {(feed.id, DAY)}
        assert (
            conn.execute(f"select count(*) from {staging.current(conn, feed).as_string(conn)}").fetchone()[0]
            == 0
        )


@pytest.mark.parametrize(
    "feed_id",
    ["jyj_jszg", "jyj_yey", "jyj_xszz", "jyj_xxjbxx", PARQUET, "jyj_xjxx"],
    ids=["csv-utf8", "csv-gbk", "jsonl", "xlsx", "parquet", "database"],
)
def test_raw_check_fails_when_a_row_is_skipped_on_the_way_in(feed_id, scratch_db, source_url):
    feed = CATALOG.feed(feed_id)
    _migrated(scratch_db)
    with connect(scratch_db) as conn:
        ingest.ensure_raw_table(conn, feed)
        conn.commit()
    raw, _ = _layers(feed.department)
    key = ingest_assets.feed_key(feed)
    with _trigger(
        scratch_db, f'raw."{feed.id}"', "if new._row_number = 2 then return null; end if; return new;"
    ):
        result = _run([raw], scratch_db, source_url, selection=[key])
    check = _evals(result)[(key.to_user_string(), "rows_reconcile")]
    assert not check.passed
    files = [n for n in _meta(check, "detail")[DAY]["source"].values() if n]  # row 2 of each file is lost
    assert files and _meta(check, "expected") - _meta(check, "found") == len(files)
    clean = _run([raw], scratch_db, source_url, selection=[key])
    assert _evals(clean)[(key.to_user_string(), "rows_reconcile")].passed


def test_raw_check_fails_when_a_reject_is_lost(tmp_path, scratch_db, monkeypatch):
    feed = CATALOG.feed("jyj_jszg")
    cols = list(feed.columns)
    folder = tmp_path / "landing" / feed.department / feed.id / DAY
    folder.mkdir(parents=True)
    body = [",".join(cols), ",".join(["a"] * len(cols)), ",".join(["b\x00"] * len(cols))]
    (folder / "a.csv").write_text("\n".join(body) + "\n")
    monkeypatch.setenv("JX_WORLD_DIR", str(tmp_path))
    _migrated(scratch_db)
    raw, _ = _layers(DEPT)
    key = ingest_assets.feed_key(feed)
    with _trigger(scratch_db, "quality.rejects", "return null;"):
        result = _run([raw], scratch_db, selection=[key])
    check = _evals(result)[("raw/jyj/jszg", "rows_reconcile")]
    assert not check.passed and (_meta(check, "expected"), _meta(check, "found")) == (2, 1)
    assert _evals(_run([raw], scratch_db, selection=[key]))[("raw/jyj/jszg", "rows_reconcile")].passed


def test_raw_counts_see_a_dropped_or_stray_row_and_a_file_changed_after_loading(
    pipeline, world, tmp_path, source_url
):
    url, _ = pipeline
    csv_feed, db_feed = CATALOG.feed("jyj_jszg"), CATALOG.feed("jyj_xjxx")
    # a copy of the feed's landing days: truncating it does not touch the session's world
    shutil.copytree(world / "landing" / DEPT / csv_feed.id, tmp_path / "landing" / DEPT / csv_feed.id)

    def tally(conn, feed, where=tmp_path):
        return reconcile.raw(conn, feed, DAYS, world=where, source_url=source_url, first_partition=DAYS[0])

    with connect(url) as conn:
        for feed in (csv_feed, db_feed):
            assert tally(conn, feed).passed
            with conn.transaction(force_rollback=True):
                conn.execute(_drop_one("raw", feed))
                t = tally(conn, feed)
                assert not t.passed and t.expected - t.found == 1
            with conn.transaction(force_rollback=True):
                conn.execute(f'insert into raw."{feed.id}" select * from raw."{feed.id}" limit 1')
                t = tally(conn, feed)
                assert not t.passed and t.found - t.expected == 1
        path = next((tmp_path / "landing" / DEPT / csv_feed.id / DAY).iterdir())
        path.write_bytes(
            path.read_bytes().splitlines(keepends=True)[0]
        )  # cut after the header, after the load
        t = tally(conn, csv_feed)
        assert not t.passed and t.found > t.expected


# --- staged ----------------------------------------------------------------------------------------------------


def test_staged_counts_see_a_dropped_or_stray_row(pipeline):
    url, _ = pipeline
    feed = CATALOG.feed("jyj_xszz")
    with connect(url) as conn:
        assert reconcile.staged(conn, feed, DAYS).passed
        for change, diff in (
            (_drop_one("staged", feed), -1),
            (f'insert into staged."{feed.id}" select * from staged."{feed.id}" limit 1', 1),
            (_drop_one("raw", feed), 1),
        ):
            with conn.transaction(force_rollback=True):
                conn.execute(change)
                t = reconcile.staged(conn, feed, DAYS)
                assert not t.passed and t.found - t.expected == diff, change


def test_staged_check_fails_when_a_row_reject_is_lost(scratch_db, source_url):
    feed = CATALOG.feed("jyj_jszg")
    raw, staged = _layers(DEPT)
    keys = {layer: ingest_assets.feed_key(feed, layer) for layer in ("raw", "staged")}
    assert _run([raw], scratch_db, source_url, selection=[keys["raw"]]).success
    key_col, table = feed.column_for("record_key").lower(), ingest.day_name(feed, DAY)
    with connect(scratch_db) as conn:  # one row without its key: staging rejects it (scope row)
        conn.execute(
            f'update raw."{table}" set "{key_col}" = \'\' where ctid = (select min(ctid) from raw."{table}")'
        )
        conn.commit()
    body = "if new.stage = 'staged' and new.scope = 'row' then return null; end if; return new;"
    with _trigger(scratch_db, "quality.rejects", body):
        result = _run([raw, staged], scratch_db, source_url, selection=[keys["staged"]])
    check = _evals(result)[("staged/jyj/jszg", "rows_reconcile")]
    assert not check.passed and _meta(check, "expected") - _meta(check, "found") == 1
    assert _evals(_run([raw, staged], scratch_db, source_url, selection=[keys["staged"]]))[
        ("staged/jyj/jszg", "rows_reconcile")
    ].passed


def test_expectations_check_fails_on_corrupted_values(scratch_db, source_url):
    feed = CATALOG.feed("jyj_jszg")
    raw, staged = _layers(DEPT)
    keys = {layer: ingest_assets.feed_key(feed, layer) for layer in ("raw", "staged")}
    assert _run([raw], scratch_db, source_url, selection=[keys["raw"]]).success
    name_col = feed.column_for("person_name").lower()
    with connect(scratch_db) as conn:  # every name blanked: the suite's completeness expectation must fail
        conn.execute(f'update raw."{feed.id}" set "{name_col}" = \'\'')
        conn.commit()
    result = _run([raw, staged], scratch_db, source_url, selection=[keys["staged"]])
    evals = _evals(result)
    assert not evals[("staged/jyj/jszg", "expectations")].passed
    assert evals[("staged/jyj/jszg", "rows_reconcile")].passed  # no row lost: only the values are bad


# --- core: links, identities, door plates --------------------------------------------------------------------


def test_link_counts_see_a_missing_stray_or_repointed_link(pipeline):
    url, _ = pipeline
    one = "(select feed_id, record_key from core.entity_link order by feed_id, record_key limit 1)"
    changes = {
        "delete": (f"delete from core.entity_link where (feed_id, record_key) in {one}", (1, 0)),
        "stray": (
            "insert into core.entity_link (feed_id, record_key, method, score) values ('jyj_jszg', 'no-such', 'unmatched', 0)",
            (0, 1),
        ),
        # the counts still agree (rows = distinct rows = records): only the comparison by key sees it
        "repoint": (
            f"update core.entity_link set record_key = record_key || '#' where (feed_id, record_key) in {one}",
            (1, 1),
        ),
        "record_gone": (
            'delete from staged."jyj_xszz" where record_key ='
            " (select min(record_key) from core.entity_link where feed_id = 'jyj_xszz')",
            (0, 1),
        ),
    }
    with connect(url) as conn:
        assert reconcile.links(conn, CATALOG).passed
        for name, (change, (missing, stray)) in changes.items():
            with conn.transaction(force_rollback=True):
                conn.execute(change)
                t = reconcile.links(conn, CATALOG)
                assert not t.passed, name
                assert (t.problems["records_without_link"], t.problems["links_without_record"]) == (
                    missing,
                    stray,
                ), name


def test_link_check_fails_in_a_run_when_a_link_is_written_astray(pipeline):
    url, _ = pipeline
    link = _linking()
    body = "if new.feed_id = 'jyj_xszz' then new.record_key := new.record_key || '#'; end if; return new;"
    try:
        with _trigger(url, "core.entity_link", body):
            _forget(url, "delete from core.entity_link where feed_id = 'jyj_xszz'")
            result = _run([link["entity_link"], link["core_identity"]], url, partition=None)
        check = _evals(result)[("core/entity_link", "one_row_per_record")]
        assert not check.passed and _meta(check, "expected") == _meta(
            check, "found"
        )  # same count, wrong rows
        assert _meta(check, "links_without_record") == _meta(check, "records_without_link") > 0
        assert "core/person" not in _materialized(result)  # blocking: identities wait for sound links
    finally:
        assert _run([link["entity_link"], link["core_identity"]], url, partition=None).success


def test_membership_counts_see_missing_stray_and_dangling_members(pipeline):
    url, _ = pipeline
    one = "(select feed_id, record_key from core.identity_member where kind = 'person' order by 1, 2 limit 1)"
    changes = {
        "records_without_membership": f"delete from core.identity_member where kind = 'person' and (feed_id, record_key) in {one}",
        "memberships_without_record": "insert into core.identity_member select feed_id, 'no-such', kind, master_key,"
        " method from core.identity_member where kind = 'person' limit 1",
        "memberships_without_master": f"update core.identity_member set master_key = 'Pnone' where kind = 'person'"
        f" and (feed_id, record_key) in {one}",
        "masters_miscounted": "update core.person set records = records + 1"
        " where person_key = (select min(person_key) from core.person)",
    }
    with connect(url) as conn:
        assert reconcile.memberships(conn, CATALOG, "person").passed
        for problem, change in changes.items():
            with conn.transaction(force_rollback=True):
                conn.execute(change)
                t = reconcile.memberships(conn, CATALOG, "person")
                assert not t.passed and t.problems[problem] >= 1, problem


def test_membership_check_fails_in_a_run_when_a_membership_is_lost(pipeline):
    url, _ = pipeline
    link = _linking()
    body = "if new.kind = 'legal_person' and new.feed_id = 'jyj_xxjbxx' then return null; end if; return new;"
    try:
        with _trigger(url, "core.identity_member", body):
            _forget(
                url, "delete from core.identity_member where kind = 'legal_person' and feed_id = 'jyj_xxjbxx'"
            )
            result = _run([link["core_identity"]], url, partition=None)
        evals = _evals(result)
        check = evals[("core/legal_person", "one_membership_per_record")]
        assert not check.passed and _meta(check, "records_without_membership") > 0
        assert evals[("core/person", "one_membership_per_record")].passed
    finally:
        assert _run([link["core_identity"]], url, partition=None).success


def _copy_a_door_plates_address(url) -> None:
    """One door plate's address replaced by another's."""
    with connect(url) as conn:
        conn.execute(
            "update core.geo_entity set address = (select max(address) from core.geo_entity"
            " where entity_type = 'address_point') where entity_id = (select min(entity_id)"
            " from core.geo_entity where entity_type = 'address_point')"
        )
        conn.commit()


def test_door_plate_checks_fail_on_a_lost_point_or_an_address_that_no_longer_parses(pipeline):
    url, _ = pipeline
    point = entities.core_address_point
    try:
        with _trigger(
            url,
            "core.address_point",
            "if new.entity_id = (select min(entity_id) from core.geo_entity"
            " where entity_type = 'address_point') then return null; end if; return new;",
        ):
            result = _run([point], url, partition=None)
        evals = _evals(result)
        lost = evals[("core/address_point", "one_point_per_door_plate")]
        assert not lost.passed and _meta(lost, "door_plates_without_point") == 1
        assert evals[("core/address_point", "parses_to_itself")].passed
        _copy_a_door_plates_address(url)
        evals = _evals(_run([point], url, partition=None))
        assert not evals[("core/address_point", "parses_to_itself")].passed
        assert evals[("core/address_point", "one_point_per_door_plate")].passed
    finally:
        assert _run([entities.core_geo_entity, point], url, partition=None).success


def test_door_plates_are_parsed_again_only_when_they_the_parser_or_the_table_changed(pipeline):
    """On one instance (its storage on PostgreSQL): a second materialization with nothing changed parses nothing
    and rewrites no row, reporting the first one's figures; a point removed from the table, or a door plate's
    address changed, is parsed again (the table repaired, the failing parse reported)."""
    url, _ = pipeline
    point = entities.core_address_point
    rows = "select entity_id, xmin::text from core.address_point"

    def run(instance):
        result = dg.materialize([point], resources=_resources(url), instance=instance, raise_on_error=False)
        mat = result.get_asset_materialization_events()[0].materialization
        return {k: v.value for k, v in mat.metadata.items()}, _evals(result)

    try:
        with dg.DagsterInstance.get() as instance:
            first, _ = run(instance)
            with connect(url) as conn:
                written = set(conn.execute(rows).fetchall())
            again, evals = run(instance)
            assert first["points"] > 100 and again["parsed"] is False and again["points"] == first["points"]
            assert evals[("core/address_point", "parses_to_itself")].passed
            with connect(url) as conn:
                assert set(conn.execute(rows).fetchall()) == written  # not one row written
                conn.execute(
                    "delete from core.address_point where entity_id = (select min(entity_id) from core.address_point)"
                )
                conn.commit()
            repaired, evals = run(instance)
            assert (
                repaired["parsed"] is True
                and evals[("core/address_point", "one_point_per_door_plate")].passed
            )
            assert repaired["table_key"] == first["table_key"]
            _copy_a_door_plates_address(url)
            moved, evals = run(instance)
            assert moved["parsed"] is True and moved["not_parsed_to_itself"] >= 1
            assert not evals[("core/address_point", "parses_to_itself")].passed
    finally:
        assert _run([entities.core_geo_entity, point], url, partition=None).success


def test_an_unchanged_handover_rewrites_no_entity_and_puts_back_one_edited_by_hand(pipeline):
    url, _ = pipeline
    rows = "select entity_id, xmin::text, name from core.geo_entity"
    with connect(url) as conn:
        edited = conn.execute("select min(entity_id) from core.geo_entity where name is not null").fetchone()[
            0
        ]
        conn.execute("update core.geo_entity set name = name || '改' where entity_id = %s", (edited,))
        conn.commit()
        before = {r[0]: r[1:] for r in conn.execute(rows).fetchall()}
    assert _run([entities.core_geo_entity], url, partition=None).success
    with connect(url) as conn:
        after = {r[0]: r[1:] for r in conn.execute(rows).fetchall()}
    assert after.keys() == before.keys()
    assert {k for k in after if after[k][0] != before[k][0]} == {edited}  # only that row written
    assert after[edited][1] + "改" == before[edited][1]


def test_an_unchanged_handover_is_not_read_again_until_the_file_or_the_table_changes(
    pipeline, world, tmp_path
):
    """core.geo_entity skips reading and merging the hand-over when the file (its bytes), the loading code and
    the table (its kept tally's mark: any row written) are as the last load left them; a row edited by hand, or
    another file, makes it load again."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    url, _ = pipeline
    instance = dg.DagsterInstance.ephemeral()  # one instance: each run sees the last one's metadata

    def load() -> tuple[dict, str]:
        result = dg.materialize(
            [entities.core_geo_entity], instance=instance, resources=_resources(url), raise_on_error=False
        )
        assert result.success and _evals(result)[("core/geo_entity", "rows_match_handover")].passed
        (mat,) = result.asset_materializations_for_node("core__geo_entity")
        return {k: v.value for k, v in mat.metadata.items()}, result.run_id

    first, run = load()
    assert first["loaded"] is True
    again, _ = load()
    assert again["loaded"] is False and again["loaded_in_run"] == run
    assert again["dagster/row_count"] == first["dagster/row_count"] > 0
    with connect(url) as conn:
        edited = conn.execute("select min(entity_id) from core.geo_entity where name is not null").fetchone()[
            0
        ]
        name = conn.execute("select name from core.geo_entity where entity_id = %s", (edited,)).fetchone()[0]
        conn.execute("update core.geo_entity set name = name || '改' where entity_id = %s", (edited,))
        conn.commit()
    fixed, run = load()
    assert fixed["loaded"] is True
    with connect(url) as conn:
        assert (
            conn.execute("select name from core.geo_entity where entity_id = %s", (edited,)).fetchone()[0]
            == name
        )
    skipped, _ = load()
    assert skipped["loaded"] is False and skipped["loaded_in_run"] == run
    handover = world / "entities" / "geo_entities.parquet"
    table = pq.read_table(handover)
    names = table.column("name").to_pylist()
    names[0] = (names[0] or "") + "新"
    other = tmp_path / "geo_entities.parquet"
    pq.write_table(table.set_column(table.schema.get_field_index("name"), "name", pa.array(names)), other)
    assert entities._handover_key(other) != entities._handover_key(handover) == skipped["handover_key"]


def test_the_merge_removes_a_gone_entity_with_its_links_and_rewrites_only_a_changed_one(pipeline):
    """sql/entities/geo_entity_merge.sql on a hand-over without one linked door plate and with one name changed:
    the door plate leaves core.geo_entity, core.address_point and core.entity_link (its links noted for the marts);
    the renamed entity is written; no other entity row gets a new version."""
    url, _ = pipeline
    rows = "select entity_id, xmin::text, name from core.geo_entity"
    with connect(url) as conn, conn.transaction(force_rollback=True):
        gone, links = conn.execute(
            "select entity_id, count(*) from core.entity_link l join core.address_point using (entity_id)"
            " group by 1 order by 2 desc, 1 limit 1"
        ).fetchone()
        renamed = conn.execute(
            "select max(entity_id) from core.geo_entity where name is not null"
        ).fetchone()[0]
        assert links > 0 and renamed != gone
        before = {r[0]: r[1:] for r in conn.execute(rows).fetchall()}
        its_links = set(
            conn.execute("select feed_id, record_key from core.entity_link where entity_id = %s", (gone,))
        )
        noted = conn.execute("select coalesce(max(id), 0) from staged._mart_change").fetchone()[0]
        conn.execute(
            "create temp table geo_entity_next on commit drop as select * from core.geo_entity where entity_id <> %s",
            (gone,),
        )
        conn.execute("update geo_entity_next set name = name || '新' where entity_id = %s", (renamed,))
        run_sql(conn, "entities/geo_entity_merge.sql")
        after = {r[0]: r[1:] for r in conn.execute(rows).fetchall()}
        assert after.keys() == before.keys() - {gone}
        assert {k for k in after if after[k][0] != before[k][0]} == {renamed}
        assert after[renamed][1] == before[renamed][1] + "新"
        left = conn.execute(
            "select (select count(*) from core.entity_link where entity_id = %s),"
            " (select count(*) from core.address_point where entity_id = %s)",
            (gone, gone),
        ).fetchone()
        assert left == (0, 0)
        # the links removed are noted for the next mart refresh (lib/marts.py), and nothing else
        assert (
            set(conn.execute("select feed_id, record_key from staged._mart_change where id > %s", (noted,)))
            == its_links
        )


def test_geo_entity_check_fails_on_a_lost_or_stray_entity(pipeline, world, scratch_db):
    handover = world / "entities" / "geo_entities.parquet"
    with connect(pipeline[0]) as conn:
        assert reconcile.geo_entities(conn, handover).passed
        with conn.transaction(force_rollback=True):
            conn.execute(
                "insert into core.geo_entity (entity_id, entity_type, name, geom, batch_id)"
                " values ('stray', 'hill', 'stray', 'SRID=4490;POINT(120.7 30.7)', 't')"
            )
            t = reconcile.geo_entities(conn, handover)
            assert not t.passed and t.found - t.expected == 1
    _migrated(scratch_db)  # a fresh warehouse: one entity of the hand-over skipped on its way in
    body = "if new.entity_id = (select min(entity_id) from geo_entity_next) then return null; end if; return new;"
    with _trigger(scratch_db, "core.geo_entity", body):
        result = _run([entities.core_geo_entity, entities.core_address_point], scratch_db, partition=None)
    check = _evals(result)[("core/geo_entity", "rows_match_handover")]
    assert not check.passed and _meta(check, "expected") - _meta(check, "found") == 1
    assert "core/address_point" not in _materialized(result)


def test_admin_checks_fail_in_a_run_when_a_village_is_lost(scratch_db):
    body = "if new.level = 'village' and new.code = (select min(code) from raw.admin_division where level = 'village')"
    body += " then return null; end if; return new;"
    _migrated(scratch_db)
    chain = [
        admin.raw_admin_division,
        admin.raw_admin_boundary,
        admin.core_admin_unit,
        entities.core_geo_entity,
    ]
    with _trigger(scratch_db, "core.admin_unit", body):
        result = dg.materialize(
            [*chain, entities.core_address_point], resources=_resources(scratch_db), raise_on_error=False
        )
    evals = _evals(result)
    assert not evals[("core/admin_unit", "level_counts")].passed
    assert not evals[("core/admin_unit", "boundaries")].passed  # its town now has a gap
    assert "core/address_point" not in _materialized(result)
