"""Row identity across the files of one landing day (issue 10 item 1): a split extract (two files) and a corrected
re-send (a third file repeating keys) load with one `_row_id` per row, and every step that orders or identifies
rows (duplicates, current records, coordinate rejects, the scorecard) tells the files apart.

Each test builds its own landing folder and warehouse (a scratch database on the real server, migrated)."""

import pytest

from jx_pipeline.catalog import load_catalog
from jx_pipeline.lib import ingest, staging
from jx_pipeline.lib.errors import JxError
from jx_pipeline.lib.migrations import migrate
from jx_pipeline.lib.pg import connect
from jx_pipeline.lib.warehouse import run_sql
from jx_pipeline_tests.conftest import catalog_with

DAY = "2026-11-01"
FEED_ID = "gaj_rowid_test"
HEADER = "BH,MC,JE,X,Y\n"
IN_CITY = "120.75,30.75"  # inside the test city polygon below
OUT_OF_CITY = "121.40,30.80"  # inside Jiaxing's box, ~60 km east of the polygon: rejected by the city test
CITY = "MULTIPOLYGON(((120.5 30.5, 121.0 30.5, 121.0 31.0, 120.5 31.0, 120.5 30.5)))"

# The day's deliveries, base file first; row 1 of each file is its header.
BASE = f"{FEED_ID}_20261101.csv"
PART2 = f"{FEED_ID}_20261101_part2.csv"
RESEND = f"{FEED_ID}_20261101_resend1.csv"
FILES = {
    BASE: [  # rows 2..5
        f"K1,甲,10,{IN_CITY}",
        f"K2,乙,20,{IN_CITY}",  # row 3: a good point (row 3 of PART2 is outside the city)
        f"K3,丙,abc,{IN_CITY}",  # row 4: a bad amount
        f"K4,丁,40,{IN_CITY}",
    ],
    PART2: [  # rows 2..6; row 6 has a NUL byte, so this file takes the careful (row by row) path
        f"K5,戊,50,{IN_CITY}",
        f"K6,己,60,{OUT_OF_CITY}",  # row 3: outside the city
        f"K8,辛,xyz,{IN_CITY}",  # row 4: a bad amount (same row number as BASE's)
        f"K7,庚,70,{IN_CITY}",  # row 5: corrected by the re-send
        f"K9,壬\x00,90,{IN_CITY}",  # row 6: rejected in raw
    ],
    RESEND: [  # rows 2..3: corrected values of K1 (BASE row 2) and K7 (PART2 row 5)
        f"K1,甲,11,{IN_CITY}",
        f"K7,庚,77,{IN_CITY}",
    ],
}
# (file, row in file) -> the row id: files in name order, rows in file order, the raw reject skipped
EXPECTED_IDS = {
    (BASE, 2): 1,
    (BASE, 3): 2,
    (BASE, 4): 3,
    (BASE, 5): 4,
    (PART2, 2): 5,
    (PART2, 3): 6,
    (PART2, 4): 7,
    (PART2, 5): 8,
    (RESEND, 2): 9,
    (RESEND, 3): 10,
}


def _feed_doc() -> dict:
    return {
        "id": FEED_ID,
        "department": "gaj",
        "name": "行标识测试",
        "name_en": "Row identity test",
        "domain": "other",
        "archetype": "place_event",
        "source": {"kind": "file", "format": "csv", "encoding": "utf-8"},
        "records": 10,
        "key": ["BH"],
        "columns": {"BH": "record_key", "MC": "entity_name", "JE": "amount", "X": "lon", "Y": "lat"},
        "coordinates": {"x": "X", "y": "Y", "crs": "cgcs2000"},
    }


@pytest.fixture
def feed(tmp_path):
    return load_catalog(catalog_with(tmp_path, lambda d: d["feeds"].append(_feed_doc()))).feed(FEED_ID)


@pytest.fixture
def world(tmp_path):
    folder = tmp_path / "world" / "landing" / "gaj" / FEED_ID / DAY
    folder.mkdir(parents=True)
    for name in reversed(FILES):  # written last-first: the order comes from the names, not the disk
        (folder / name).write_bytes((HEADER + "\n".join(FILES[name]) + "\n").encode("utf-8"))
    return tmp_path / "world"


@pytest.fixture
def conn(make_scratch_db):
    """A fresh, migrated warehouse with a city boundary (so coordinate rejects by the city test happen)."""
    with connect(make_scratch_db()) as c:
        migrate(c)
        c.execute(
            "insert into core.admin_unit (code, name, level, short_name, geom)"
            " values ('330400', '嘉兴市', 'city', '嘉兴市', st_geomfromtext(%s, 4490))",
            (CITY,),
        )
        c.commit()
        yield c


def _load(conn, feed, world):
    raw = ingest.load_partition(conn, feed, DAY, "b1", world=world)
    staged = staging.stage_partition(conn, feed, DAY, "b1")
    conn.commit()
    return raw, staged


def _raw_ids(conn) -> dict[tuple[str, int], int]:
    rows = conn.execute(f'select _source_file, _row_number, _row_id from raw."{FEED_ID}"').fetchall()
    return {(f, n): i for f, n, i in rows}


def test_raw_rows_get_one_id_per_row_in_delivery_order_stable_on_rerun(conn, feed, world):
    raw, _ = _load(conn, feed, world)
    assert (raw.rows_read, raw.rows_loaded, raw.rows_rejected) == (11, 10, 1)
    ids = _raw_ids(conn)
    assert ids == EXPECTED_IDS
    _load(conn, feed, world)
    assert _raw_ids(conn) == EXPECTED_IDS  # a re-run numbers the same rows the same way


def test_the_resent_values_are_staged_and_earlier_copies_rejected_naming_the_kept_row(conn, feed, world):
    _load(conn, feed, world)
    staged = dict(
        conn.execute(f'select record_key, amount from staged."{FEED_ID}" where _partition = %s', (DAY,))
    )
    assert staged["K1"] == 11 and staged["K7"] == 77
    assert conn.execute(
        f'select count(*), count(distinct record_key) from staged."{FEED_ID}"'
    ).fetchone() == (
        8,
        8,
    )
    dups = conn.execute(
        "select source_file, row_number, value from quality.rejects where feed_id = %s and reason = 'duplicate_key'"
        " order by source_file, row_number",
        (FEED_ID,),
    ).fetchall()
    assert dups == [
        (BASE, 2, f"K1 (kept: {RESEND} row 2)"),
        (PART2, 5, f"K7 (kept: {RESEND} row 3)"),
    ]
    latest = staging.current(conn, feed)
    current = dict(conn.execute(f"select record_key, amount from {latest.as_string(conn)}").fetchall())
    assert current["K1"] == 11 and current["K7"] == 77


def test_a_coordinate_reject_in_the_second_file_nulls_that_row_only(conn, feed, world):
    _load(conn, feed, world)
    points = {
        (f, n): (lon, lat)
        for f, n, lon, lat in conn.execute(
            f'select _source_file, _row_number, lon, lat from staged."{FEED_ID}"'
        ).fetchall()
    }
    assert points[(PART2, 3)] == (None, None)
    assert points[(BASE, 3)] == (120.75, 30.75)  # the same row number in the base file keeps its point
    assert sum(1 for p in points.values() if p == (None, None)) == 1
    rejects = conn.execute(
        "select source_file, row_number, column_name, value from quality.rejects"
        " where feed_id = %s and reason = 'coord_outside_jiaxing'",
        (FEED_ID,),
    ).fetchall()
    assert rejects == [(PART2, 3, "X,Y", "121.4,30.8")]


def test_scorecard_counts_flagged_rows_per_file_and_counts_reconcile(conn, feed, world):
    raw, staged = _load(conn, feed, world)
    with conn.transaction():
        run_sql(
            conn, "quality/scorecard.sql", {"partitions": [DAY], "feeds": [FEED_ID], "departments": ["gaj"]}
        )
    flagged, read, staged_n, rejected = conn.execute(
        "select rows_flagged, rows_read, rows_staged, rows_rejected from quality.scorecard where feed_id = %s",
        (FEED_ID,),
    ).fetchone()
    # three staged rows lost a value: BASE row 4 and PART2 row 4 (amount), PART2 row 3 (coordinates)
    assert flagged == 3
    assert (read, staged_n, rejected) == (10, 8, 2)
    # rows read from the files = rows staged + rows rejected in raw + rows rejected in staged
    assert raw.rows_read == staged.rows_staged + raw.rows_rejected + staged.rows_rejected == 11
    assert (staged.rows_read, staged.rows_staged, staged.rows_rejected) == (10, 8, 2)


def test_a_raw_table_from_an_older_version_is_numbered_by_migration_0010(make_scratch_db, feed, world):
    with connect(make_scratch_db()) as c:
        migrate(c, target=9)
        c.execute(  # raw and staged as the previous version created them: no _row_id
            'create table raw."gaj_rowid_test" (bh text, mc text, je text, x text, y text, _extra jsonb,'
            " _batch_id text not null, _partition text not null, _source_file text not null,"
            " _row_number bigint not null) partition by list (_partition);"
            'create table raw."gaj_rowid_test__20261101" partition of raw."gaj_rowid_test" for values in (\'2026-11-01\');'
            'create table staged."gaj_rowid_test" (record_key text not null, _batch_id text not null,'
            " _partition text not null, _source_file text not null, _row_number bigint not null)"
            " partition by list (_partition);"
            'create table staged."gaj_rowid_test__20261101" partition of staged."gaj_rowid_test"'
            " for values in ('2026-11-01')"
        )
        rows = [("K7", PART2, 5), ("K1", RESEND, 2), ("K1", BASE, 2), ("K2", BASE, 3)]
        for key, path, number in rows:
            c.execute(
                'insert into raw."gaj_rowid_test" (bh, _batch_id, _partition, _source_file, _row_number)'
                " values (%s, 'old', %s, %s, %s)",
                (key, DAY, path, number),
            )
        c.execute(
            "insert into staged.\"gaj_rowid_test\" values ('K1', 'old', %s, %s, 2), ('K2', 'old', %s, %s, 3)",
            (DAY, RESEND, DAY, BASE),
        )
        c.commit()
        with pytest.raises(JxError, match=r"raw\.gaj_rowid_test was created by an older .*db migrate"):
            ingest.load_partition(c, feed, DAY, "b1", world=world)
        c.rollback()
        assert migrate(c, target=10) == [10]
        assert _raw_ids(c) == {(BASE, 2): 1, (BASE, 3): 2, (PART2, 5): 3, (RESEND, 2): 4}
        assert dict(c.execute('select record_key, _row_id from staged."gaj_rowid_test"').fetchall()) == {
            "K1": 4,
            "K2": 2,
        }
        ingest.load_partition(c, feed, DAY, "b2", world=world)  # and the upgraded table loads again
        assert _raw_ids(c) == EXPECTED_IDS
        c.rollback()


def test_a_column_mapped_later_is_added_to_the_raw_and_staged_tables(conn, feed, world):
    """Tables made before the catalog mapped JE (amount) get the column on the next load, and the rows fill it."""
    earlier = feed.model_copy(update={"columns": {k: v for k, v in feed.columns.items() if k != "JE"}})
    ingest.ensure_raw_table(conn, earlier)
    staging.ensure_staged_table(conn, earlier)
    assert "je" not in ingest.table_columns(conn, "raw", FEED_ID)[1]
    assert "amount" not in ingest.table_columns(conn, "staged", FEED_ID)[1]
    _load(conn, feed, world)
    assert "je" in ingest.table_columns(conn, "raw", FEED_ID)[1]
    filled = conn.execute(f'select count(amount) from staged."{FEED_ID}"').fetchone()[0]
    assert filled > 0
