"""Column-wise staging (lib/staging.py: each distinct raw value standardized once, rows written as COPY text we
format ourselves) against an oracle that goes row by row: the feed's standardizers on every value and psycopg's
own ``write_row`` into a table of the same columns. Hostile values (backslashes, a literal ``\\N``, tabs and
newlines inside quoted fields, empty and repeated keys, bad values) and small chunks and memos, so that values
recur across chunks and the memo is cleared mid-partition."""

from datetime import date

import pytest
from psycopg import sql

from jx_pipeline.catalog import load_catalog
from jx_pipeline.lib import canonical, ingest, staging
from jx_pipeline.lib.migrations import migrate
from jx_pipeline.lib.pg import connect
from jx_pipeline_tests.conftest import catalog_with

DAY = "2026-11-01"
FEED_ID = "gaj_columnwise_test"
COLUMNS = {
    "BH": "record_key",
    "XM": "person_name",
    "SFZH": "id_number",
    "DH": "phone",
    "XB": "gender",
    "CSRQ": "birth_date",
    "JE": "amount",
    "GXSJ": "updated_at",
    "SCBZ": "deleted",
    "DZ": "address",
}
# fmt: off
ROWS = [
    ["K1", "张三", "11010519491231002X", "0573-82345678", "男", "1949年12月31日", "1,000", "2026-10-31 08:00:00",
     "0", "a\\b"],
    ["K2", "\\N", "110105194912310021", "+86 138 0013 8000", "2", "2024-02-30", "-5", "2026-10-31T23:59:59", "是",
     "\\N"],
    ["K3", "李\t四", "", "电联", "9", "20240229", "abc", "2026-13-01 00:00:00", "x", '"tab\there"'],
    ["", "无键", "", "", "", "", "", "", "", ""],
    ["K4", "王五\\", "11010519491231002X", "13800138000", "女", "1949年12月31日", "1,000", "2026-10-31 08:00:00", "1",
     "line\nbreak"],
    ["K1", "张三(重发)", "11010519491231002X", "0573-82345678", "男", "1949年12月31日", "2,000", "2026-10-31 09:00:00",
     "0", "a\\b"],
    ["K5", " ", "１１０１０５１９４９１２３１００２Ｘ", "82345678", "F", "1900.01.01", "3.5万元", "2026-10-31", "N",
     "\\\\N"],
    ["K6", "\r", "110105194912310021", "0573-82345678", "X", "1949年12月31日", "1,000", "2026-10-31 08:00:00", "0",
     "a\\b"],
]
# fmt: on


def _csv_field(value: str) -> str:
    return '"' + value.replace('"', '""') + '"' if any(c in value for c in ',"\n\r\t') else value


@pytest.fixture
def setup(tmp_path, make_scratch_db, monkeypatch):
    doc = {
        "id": FEED_ID,
        "department": "gaj",
        "name": "逐列测试",
        "name_en": "Column-wise staging test",
        "domain": "other",
        "archetype": "person_service",
        "source": {"kind": "file", "format": "csv", "encoding": "utf-8"},
        "records": len(ROWS),
        "key": ["BH"],
        "date_format": "%Y年%m月%d日",
        "columns": COLUMNS,
    }
    feed = load_catalog(catalog_with(tmp_path, lambda d: d["feeds"].append(doc))).feed(FEED_ID)
    folder = tmp_path / "world" / "landing" / "gaj" / FEED_ID / DAY
    folder.mkdir(parents=True)
    lines = [",".join(COLUMNS)] + [",".join(map(_csv_field, r)) for r in ROWS * 3]  # values recur
    (folder / f"{FEED_ID}_20261101.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    monkeypatch.setattr(staging, "CHUNK", 5)  # several chunks; a value's memo spans them
    monkeypatch.setattr(staging, "MEMO_LIMIT", 4)  # and is cleared mid-partition
    with connect(make_scratch_db()) as conn:
        migrate(conn)
        ingest.load_partition(conn, feed, DAY, "b1", world=tmp_path / "world")
        yield conn, feed


def _oracle(conn, feed) -> tuple[list, list]:
    """Row by row: the standardizers, then psycopg's write_row into a table of the staged columns."""
    names = staging.fields(feed)
    std = canonical.standardizers(names, feed.date_format, date.fromisoformat(DAY))
    source_of = {c: s for s, c in feed.columns.items()}
    src = [source_of[n].lower() for n in names]
    raw = conn.execute(
        sql.SQL("select {}, _source_file, _row_number, _row_id from raw.{} where _partition = %s").format(
            sql.SQL(", ").join(map(sql.Identifier, src)), sql.Identifier(feed.id)
        ),
        (DAY,),
    ).fetchall()
    last = {}  # key -> (row id, file, row) of its last delivery (the highest row id, whatever the read's order)
    for *values, path, number, row_id in raw:
        key = (values[0] or "").strip()
        if key and (key not in last or row_id > last[key][0]):
            last[key] = (row_id, path, number)
    cols = sql.SQL(", ").join(
        sql.SQL("{} {}").format(sql.Identifier(n), sql.SQL(canonical.sql_type(n))) for n in names
    )
    conn.execute(
        sql.SQL(
            "create temp table expected ({}, _source_file text, _row_number bigint, _row_id bigint)"
        ).format(cols)
    )
    rejects = []
    with conn.cursor().copy("copy expected from stdin") as copy:
        for *values, path, number, row_id in raw:
            key = (values[0] or "").strip()
            if not key:
                rejects.append((path, number, source_of["record_key"], "key_empty", None, "row"))
                continue
            if last[key][0] != row_id:
                kept = f"{key} (kept: {last[key][1]} row {last[key][2]})"
                rejects.append((path, number, source_of["record_key"], "duplicate_key", kept, "row"))
                continue
            out = [key]
            for name, value in zip(names[1:], values[1:], strict=True):
                typed, reason = std[name](value)
                out.append(typed)
                if reason:
                    rejects.append(
                        (path, number, source_of[name], reason, canonical.mask(name, value), "value")
                    )
            copy.write_row([*out, path, number, row_id])
    rows = conn.execute("select * from expected order by _row_id").fetchall()
    return rows, sorted(rejects)


def test_column_wise_staging_equals_row_by_row_with_psycopgs_copy(setup):
    conn, feed = setup
    result = staging.stage_partition(conn, feed, DAY, "b1")
    expected_rows, expected_rejects = _oracle(conn, feed)
    names = staging.fields(feed)
    staged = conn.execute(
        sql.SQL("select {}, _source_file, _row_number, _row_id from staged.{} order by _row_id").format(
            sql.SQL(", ").join(map(sql.Identifier, names)), sql.Identifier(feed.id)
        )
    ).fetchall()
    assert staged == expected_rows
    rejects = conn.execute(
        "select source_file, row_number, column_name, reason, value, scope from quality.rejects"
        " where feed_id = %s and stage = 'staged'",
        (feed.id,),
    ).fetchall()
    assert sorted(rejects) == expected_rejects
    # the hostile texts arrive intact: a literal \N is text, not null; backslashes, tabs and newlines kept
    by_key = {r[0]: r for r in staged}
    assert by_key["K2"][names.index("person_name")] == "\\N" and by_key["K2"][names.index("address")] == "\\N"
    assert by_key["K4"][names.index("person_name")] == "王五\\"
    assert by_key["K5"][names.index("address")] == "\\\\N"
    assert by_key["K3"][names.index("person_name")] == "李 四"  # text() folds whitespace
    assert result.rows_read == 3 * len(ROWS) == result.rows_staged + result.rows_rejected
    assert {r[3] for r in rejects} >= {"key_empty", "duplicate_key", "amount_invalid", "gender_invalid"}
    assert any(r[3] == "id_checksum" and r[4] == "110*************21" for r in rejects)  # masked
