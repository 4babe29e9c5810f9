"""Bad input at the raw layer: each case ends in a clear error naming feed and file (row and column where they
can be known), or in a load whose accounting reconciles (quarantined rows with their reason)."""

import csv
import io
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from jx_pipeline.catalog import load_catalog
from jx_pipeline.lib import ingest
from jx_pipeline.lib.errors import JxError

DAY = "2026-11-01"
BASE = load_catalog().feed("gaj_ldrk")  # CSV, GBK, schema_drift: fail
COLS = list(BASE.columns)


def _feed(fmt="csv", encoding="gbk", drift="fail"):
    source = BASE.source.model_copy(update={"format": fmt, "encoding": encoding})
    return BASE.model_copy(update={"source": source, "schema_drift": drift})


def _csv(rows, header=COLS, encoding="gbk", eol="\n") -> bytes:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator=eol)
    w.writerow(header)
    w.writerows(rows)
    return buf.getvalue().encode(encoding)


def _row(key="K1", **over):
    values = {c: f"{c.lower()}值" for c in COLS}
    values[COLS[0]] = key
    values.update(over)
    return [values[c] for c in COLS]


def _load(tmp_path, wh, feed, content: bytes, name="f.csv"):
    world = tmp_path / "world"
    folder = world / "landing" / feed.department / feed.id / DAY
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_bytes(content)
    return ingest.load_partition(wh, feed, DAY, "corpus", world=world)


def _reconciles(wh, res):
    audit = wh.execute(
        "select rows_read, rows_loaded, rows_rejected from quality.load_audit where feed_id = %s"
        " and partition_key = %s and stage = 'raw'",
        (res.feed_id, DAY),
    ).fetchone()
    n = wh.execute(f'select count(*) from raw."{res.feed_id}" where _partition = %s', (DAY,)).fetchone()[0]
    assert audit == (res.rows_read, res.rows_loaded, res.rows_rejected) and audit[0] == audit[1] + audit[2]
    assert n == res.rows_loaded
    return n


ERRORS = {
    "wrong_encoding": (
        _feed(),
        b"K1," + "嘉兴".encode() * 3 + "𠀀".encode() + b"\n",
        r"feed gaj_ldrk file .*f\.csv",
    ),
    "truncated_in_quotes": (
        _feed(),
        _csv([_row()]) + b'K2,"unterminated',
        r"feed gaj_ldrk file .*f\.csv row",
    ),
    "empty_file": (_feed(), b"", r"feed gaj_ldrk file .*f\.csv row 1: column\(s\) .* missing"),
    "missing_column": (
        _feed(),
        _csv([_row()[:-1]], header=COLS[:-1]),
        rf"row 1: column\(s\) \['{COLS[-1]}'\] missing",
    ),
    "renamed_column": (_feed(), _csv([_row()], header=[*COLS[:-1], "XXX"]), r"renamed to \['XXX'\]\?"),
    "extra_column_policy_fail": (
        _feed(),
        _csv([[*_row(), "x"]], header=[*COLS, "NEW"]),
        r"unexpected column\(s\) \['NEW'\] \(schema_drift: fail\)",
    ),
    "duplicated_column": (
        _feed(),
        _csv([[*_row(), "x"]], header=[*COLS, COLS[1]]),
        rf"column\(s\) \['{COLS[1]}'\] appear more than once",
    ),
    "sql_in_header": (
        _feed(),
        _csv([[*_row(), "x"]], header=[*COLS, 'A"; drop table raw.gaj_ldrk; --']),
        r"unexpected column\(s\) \['A\"; drop table raw\.gaj_ldrk; --'\]",
    ),
    "jsonl_broken_line": (
        _feed("jsonl", "utf-8"),
        (json.dumps(dict(zip(COLS, _row(), strict=True)), ensure_ascii=False) + "\n{not json\n").encode(),
        r"feed gaj_ldrk file .*f\.csv",
    ),
    "parquet_truncated": (_feed("parquet", "utf-8"), b"PAR1\x00\x00garbage", r"cannot read it as parquet"),
    "xlsx_that_is_csv": (_feed("xlsx", "utf-8"), _csv([_row()], encoding="utf-8"), r"cannot read it as xlsx"),
}


@pytest.mark.parametrize("case", sorted(ERRORS))
def test_bad_file_gives_a_clear_error_and_keeps_the_previous_state(case, tmp_path, wh):
    feed, content, pattern = ERRORS[case]
    good = _load(tmp_path / "good", wh, feed if feed.source.format == "csv" else _feed(), _csv([_row("OLD")]))
    wh.commit()
    with pytest.raises(JxError, match=pattern) as err:
        _load(tmp_path, wh, feed, content)
    assert err.value.fix
    wh.rollback()
    # the earlier good load of the same partition is still there, untouched
    keys = wh.execute('select xh from raw."gaj_ldrk" where _partition = %s', (DAY,)).fetchall()
    assert keys == [("OLD",)] and good.rows_loaded == 1


LOADS = {
    "header_only": (_feed(), _csv([]), 0, 0),
    "quotes_and_newlines": (_feed(), _csv([_row("K1", XZZ='嘉兴市"南湖区",\n建设街道 1号')]), 1, 0),
    "crlf_and_bom_utf8": (
        _feed(encoding="utf-8"),
        b"\xef\xbb\xbf" + _csv([_row()], encoding="utf-8", eol="\r\n"),
        1,
        0,
    ),
    "nul_bytes": (_feed(), _csv([_row("K1"), _row("K2", BRXM="张\x00三"), _row("K3")]), 2, 1),
    "huge_field": (_feed(), _csv([_row("K1", XZZ="长" * 3_000_000)]), 1, 0),
    "sql_in_values": (_feed(), _csv([_row("K1", BRXM="'); drop table raw.gaj_ldrk; --")]), 1, 0),
    "duplicate_keys": (_feed(), _csv([_row("K1"), _row("K1")]), 2, 0),  # kept in raw; staged resolves them
    "extra_column_accepted": (
        _feed(drift="accept_extra"),
        _csv([[*_row(), "多"]], header=[*COLS, "NEW"]),
        1,
        0,
    ),
}


@pytest.mark.parametrize("case", sorted(LOADS))
def test_odd_but_loadable_files_reconcile(case, tmp_path, wh):
    feed, content, loaded, rejected = LOADS[case]
    res = _load(tmp_path, wh, feed, content)
    assert (res.rows_loaded, res.rows_rejected) == (loaded, rejected)
    assert _reconciles(wh, res) == loaded
    if case == "quotes_and_newlines":
        assert wh.execute('select xzz from raw."gaj_ldrk"').fetchone()[0] == '嘉兴市"南湖区",\n建设街道 1号'
    if case == "nul_bytes":
        assert wh.execute(
            "select row_number, column_name, reason from quality.rejects where feed_id = 'gaj_ldrk'"
            " and partition_key = %s and stage = 'raw'",
            (DAY,),
        ).fetchall() == [(3, "BRXM", "nul_byte: NUL character in value")]
    if case == "sql_in_values":
        assert (
            wh.execute('select brxm from raw."gaj_ldrk"').fetchone()[0] == "'); drop table raw.gaj_ldrk; --"
        )
    if case == "extra_column_accepted":
        assert res.extra_columns == ["NEW"]
    wh.rollback()


def test_file_changing_while_read_is_refused(tmp_path, wh, monkeypatch):
    original = ingest._copy_csv_direct

    def growing(conn, feed, path, *rest):
        n = original(conn, feed, path, *rest)
        with path.open("ab") as fh:  # the department's upload is still running
            fh.write(_csv([_row("LATE")])[-40:])
        return n

    monkeypatch.setattr(ingest, "_copy_csv_direct", growing)
    with pytest.raises(JxError, match=r"feed gaj_ldrk file .*f\.csv changed while it was read"):
        _load(tmp_path, wh, _feed(), _csv([_row()]))
    wh.rollback()


def test_parquet_and_jsonl_with_the_catalog_columns_load(tmp_path, wh):
    rows = [dict(zip(COLS, _row(f"K{i}"), strict=True)) for i in range(3)]
    buf = io.BytesIO()
    pq.write_table(pa.Table.from_pylist(rows), buf)
    res = _load(tmp_path, wh, _feed("parquet", "utf-8"), buf.getvalue(), name="f.parquet")
    assert _reconciles(wh, res) == 3
    wh.rollback()
    lines = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows).encode()
    res = _load(tmp_path / "j", wh, _feed("jsonl", "utf-8"), lines, name="f.jsonl")
    assert _reconciles(wh, res) == 3
    wh.rollback()
