"""Bad input end to end through the real loaders (ingest.load_partition, staging.stage_partition) on the test
warehouse: hostile names, a 1 GB file, encodings that change part-way, Parquet of other types, a watermark that
goes backwards, partitions whose every row is rejected, and odd files and folders.

Each case ends in a clear error naming feed, file, line/row and column where known, with the previous good load
of the partition kept; or in a load whose accounting reconciles (rows read = loaded + rejected, each reject
with its reason). The feeds here are test feeds of their own (``badin_*``), dropped after each test.
"""

import ast
import csv
import datetime as dt
import decimal
import gzip
import io
import json
import re
import subprocess
import sys
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from psycopg import sql

from jx_pipeline.catalog import load_catalog
from jx_pipeline.catalog.schema import Feed
from jx_pipeline.lib import ingest, staging
from jx_pipeline.lib.errors import JxError
from jx_pipeline_tests.conftest import catalog_with

DAY = "2026-11-02"
BASE = load_catalog().feed("gaj_ldrk")  # CSV, GBK, key XH
COLS = list(BASE.columns)  # XH BRXM ZJHM XB CSRQ SJHM XZZ SJRQ BGLX
FEED_IDS = ("badin_csv", "badin_names", "badin_db")


def _feed(fmt="csv", encoding="gbk", drift="fail", feed_id="badin_csv") -> Feed:
    source = BASE.source.model_copy(update={"format": fmt, "encoding": encoding})
    return BASE.model_copy(update={"id": feed_id, "source": source, "schema_drift": drift})


def _row(key="K1", **over) -> list[str]:
    values = {
        "XH": key,
        "BRXM": "张三",
        "ZJHM": "330421199001010018",  # a valid resident ID
        "XB": "男",
        "CSRQ": "1990-01-01",
        "SJHM": "13912345678",
        "XZZ": "浙江省嘉兴市南湖区建设街道新兴路100号",
        "SJRQ": "2026-11-01 10:00:00",
        "BGLX": "I",
    }
    values.update(over)
    return [values[c] for c in COLS]


def _csv(rows, header=COLS, encoding="gbk", eol="\n", header_line=True) -> bytes:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator=eol)
    if header_line:
        w.writerow(header)
    w.writerows(rows)
    return buf.getvalue().encode(encoding)


def _rows(n, start=0, **over):
    return [_row(f"K{i}", **over) for i in range(start, start + n)]


def _folder(world: Path, feed: Feed, day=DAY) -> Path:
    folder = world / "landing" / feed.department / feed.id / day
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _land(world: Path, feed: Feed, files: dict[str, bytes], day=DAY) -> Path:
    folder = _folder(world, feed, day)
    for old in folder.iterdir():
        old.unlink() if not old.is_dir() or old.is_symlink() else old.rmdir()
    for name, content in files.items():
        (folder / name).write_bytes(content)
    return folder


def _load(wh, world, feed, day=DAY):
    return ingest.load_partition(wh, feed, day, "badin", world=world)


def _audit(wh, feed, day=DAY, stage="raw"):
    return wh.execute(
        "select rows_read, rows_loaded, rows_rejected from quality.load_audit"
        " where feed_id = %s and partition_key = %s and stage = %s",
        (feed.id, day, stage),
    ).fetchone()


def _raw(wh, feed, day=DAY, cols=("xh",)) -> list[tuple]:
    return wh.execute(
        sql.SQL("select {} from {} where _partition = %s order by _row_number").format(
            sql.SQL(", ").join(sql.Identifier(c) for c in cols), ingest.raw_table(feed)
        ),
        (day,),
    ).fetchall()


def _rejects(wh, feed, day=DAY, stage="raw") -> list[tuple]:
    return wh.execute(
        "select row_number, column_name, reason from quality.rejects"
        " where feed_id = %s and partition_key = %s and stage = %s order by row_number, column_name",
        (feed.id, day, stage),
    ).fetchall()


def _reconciles(wh, feed, res, day=DAY) -> int:
    """The audit matches the result, rows read = loaded + rejected, and raw holds exactly the loaded rows."""
    audit = _audit(wh, feed, day)
    assert audit == (res.rows_read, res.rows_loaded, res.rows_rejected)
    assert audit[0] == audit[1] + audit[2]
    assert len(_raw(wh, feed, day)) == res.rows_loaded
    assert len(_rejects(wh, feed, day)) == res.rows_rejected
    return res.rows_loaded


@pytest.fixture
def clean(wh):
    """Drops the test feeds' tables and audit rows afterwards (the warehouse is shared by the session)."""
    yield wh
    wh.rollback()
    for fid in FEED_IDS:
        for schema in ("raw", "staged"):
            wh.execute(sql.SQL("drop table if exists {} cascade").format(sql.Identifier(schema, fid)))
        for table in ("load_audit", "rejects", "late_row_digest"):
            wh.execute(
                sql.SQL("delete from {} where feed_id = %s").format(sql.Identifier("quality", table)), (fid,)
            )
    wh.commit()


def _good_then_bad(wh, world, feed, bad_files: dict[str, bytes], pattern: str) -> JxError:
    """A good delivery of the day is loaded and committed; a bad re-delivery fails with ``pattern``; the good
    rows and their audit are still there."""
    good_feed = feed if feed.source.format == "csv" else _feed(encoding=feed.source.encoding)
    _land(world, good_feed, {"good.csv": _csv([_row("OLD")], encoding=feed.source.encoding)})
    _load(wh, world, good_feed)
    wh.commit()
    _land(world, feed, bad_files)
    with pytest.raises(JxError, match=pattern) as err:
        _load(wh, world, feed)
    wh.rollback()
    assert err.value.fix, err.value
    assert _raw(wh, feed) == [("OLD",)] and _audit(wh, feed) == (1, 1, 0)
    return err.value


# --- 1. hostile names ------------------------------------------------------------------------------------

HOSTILE = {
    "编号": "record_key",
    'A"; drop table raw.badin_canary; --': "person_name",
    "名 称 (全称)": "org_name",
    "SELECT": "remark",
    "Order": "status",
    "it's;semi": "industry",
    "经" * 25: "entity_name",  # 75 bytes in UTF-8: PostgreSQL keeps the first 63 (21 characters)
}


def _hostile_feed() -> Feed:
    return Feed.model_validate(
        {
            "id": "badin_names",
            "department": "gaj",
            "name": "敌意列名",
            "name_en": "Hostile column names",
            "domain": "other",
            "archetype": "nature_record",
            "source": {"kind": "file", "format": "csv", "encoding": "utf-8"},
            "records": 10,
            "key": ["编号"],
            "columns": HOSTILE,
        }
    )


def test_hostile_column_names_are_quoted_end_to_end(tmp_path, clean):
    wh = clean
    wh.execute("create table raw.badin_canary (x int)")
    feed = _hostile_feed()
    rows = [[f"K{i}", "张三", "嘉兴某公司", "-- 注释", "正常", "制造业", "某实体"] for i in range(3)]
    _land(tmp_path, feed, {"f.csv": _csv(rows, header=list(HOSTILE), encoding="utf-8")})
    raw = _load(wh, tmp_path, feed)
    stage = staging.stage_partition(wh, feed, DAY, "badin")
    assert (raw.rows_loaded, stage.rows_staged, stage.rows_rejected) == (3, 3, 0)
    cols = [
        r[0]
        for r in wh.execute(
            "select column_name from information_schema.columns where table_schema = 'raw'"
            " and table_name = 'badin_names' order by ordinal_position"
        ).fetchall()
    ]
    assert cols[: len(HOSTILE)] == [*[c.lower() for c in HOSTILE][:-1], "经" * 21]
    assert _raw(wh, feed, cols=[c.lower() for c in HOSTILE])[0] == tuple(rows[0])
    assert wh.execute("select to_regclass('raw.badin_canary')").fetchone()[0] is not None
    staged = wh.execute(
        sql.SQL("select record_key, person_name, remark, entity_name from {} order by 1").format(
            staging.staged_table(feed)
        )
    ).fetchall()
    assert staged[0] == ("K0", "张三", "-- 注释", "某实体") and len(staged) == 3
    wh.execute("drop table raw.badin_canary")
    wh.commit()


@pytest.mark.parametrize(
    "bad_id", ['x"; drop table raw.gaj_ldrk; --', "Gaj_Upper", "嘉兴人口", "has space", "a" + "b" * 41]
)
def test_catalog_refuses_a_feed_id_that_is_not_a_safe_name(bad_id, tmp_path):
    def mutate(doc):
        doc["feeds"][0]["id"] = bad_id

    with pytest.raises(
        JxError, match=r"feed .* field id: .*must be 2-41 lower-case ASCII.*names tables"
    ) as err:
        load_catalog(catalog_with(tmp_path, mutate))
    assert err.value.fix


COLUMN_CLASHES = {
    "same_after_63_bytes": (["经" * 21 + "甲", "经" * 21 + "乙"], r"would be one column in PostgreSQL"),
    "same_in_lower_case": (["XZZ", "xzz"], r"\['XZZ', 'xzz'\] would be one column"),
    "lineage_name": (["_row_id"], r"names starting with _ are reserved for lineage"),
    "empty_name": ([" "], r"is empty or holds control characters"),
    "nul_in_name": (["A\x00B"], r"is empty or holds control characters"),
}


@pytest.mark.parametrize("case", sorted(COLUMN_CLASHES))
def test_catalog_refuses_column_names_postgres_cannot_keep_apart(case, tmp_path):
    names, pattern = COLUMN_CLASHES[case]
    spare = ["remark", "status"]

    def mutate(doc):
        feed = next(f for f in doc["feeds"] if f["id"] == "gaj_ldrk")
        for name, field in zip(names, spare, strict=False):
            feed["columns"][name] = field

    with pytest.raises(JxError, match=r"feed gaj_ldrk field columns: .*" + pattern):
        load_catalog(catalog_with(tmp_path, mutate))


_SQL_WORDS = re.compile(r"\b(select|insert|update|delete|create|drop|alter|copy|truncate)\b", re.I)
_RUNS_SQL = {"execute", "executemany", "copy", "SQL"}


def _fixed(node: ast.AST) -> bool:
    """A value chosen among constants in the code (``a if x else b`` of literals, a tuple of literals)."""
    if isinstance(node, ast.Constant):
        return True
    if isinstance(node, (ast.Tuple, ast.List)):
        return all(_fixed(e) for e in node.elts)
    if isinstance(node, ast.IfExp):
        return _fixed(node.body) and _fixed(node.orelse)
    return False


def _quoted(node: ast.AST) -> bool:
    return any(
        isinstance(n, ast.Call) and getattr(n.func, "attr", getattr(n.func, "id", "")) == "quote_ident"
        for n in ast.walk(node)
    )


def _unsafe_parts(expr: ast.AST, bound: dict[str, list[ast.AST]]) -> list[str]:
    """The interpolated parts of a string-built statement that are neither constants, nor quoted, nor names
    bound only to such values."""
    if isinstance(expr, ast.JoinedStr):
        parts = [v.value for v in expr.values if isinstance(v, ast.FormattedValue)]
    elif isinstance(expr, ast.BinOp):
        parts = [expr.right] + ([expr.left] if not isinstance(expr.left, ast.Constant) else [])
    else:  # "...".format(...)
        parts = [*expr.args, *(k.value for k in expr.keywords)]
    bad = []
    for part in parts:
        if _fixed(part) or _quoted(part) or (isinstance(part, ast.Name) and part.id.isupper()):
            continue
        values = bound.get(part.id, []) if isinstance(part, ast.Name) else []
        if values and all(_fixed(v) or _quoted(v) for v in values):
            continue
        bad.append(ast.unparse(part))
    return bad


def test_no_sql_statement_is_built_by_string_formatting():
    """Every statement handed to execute/copy/sql.SQL is a constant or composed with sql.Identifier/Literal
    (or pg.quote_ident): an f-string, % or .format() that puts a variable into SQL text is how a feed id or a
    department's column name would reach the server unquoted."""
    root = Path(ingest.__file__).parents[1]
    found = []
    for path in sorted(root.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for func in ast.walk(tree):
            if not isinstance(func, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Module)):
                continue
            bound: dict[str, list[ast.AST]] = {}
            for n in ast.walk(func):
                if isinstance(n, ast.Assign):
                    for target in n.targets:
                        names = target.elts if isinstance(target, ast.Tuple) else [target]
                        values = (
                            n.value.elts
                            if isinstance(n.value, ast.Tuple) and len(n.value.elts) == len(names)
                            else [n.value] * len(names)
                        )
                        for t, v in zip(names, values, strict=True):
                            if isinstance(t, ast.Name):
                                bound.setdefault(t.id, []).append(v)
            for node in ast.walk(func):
                if not (isinstance(node, ast.Call) and node.args):
                    continue
                if getattr(node.func, "attr", getattr(node.func, "id", "")) not in _RUNS_SQL:
                    continue
                arg = node.args[0]
                built = (
                    isinstance(arg, ast.JoinedStr)
                    or (isinstance(arg, ast.BinOp) and isinstance(arg.op, (ast.Mod, ast.Add)))
                    or (
                        isinstance(arg, ast.Call)
                        and getattr(arg.func, "attr", "") == "format"
                        and isinstance(arg.func.value, ast.Constant)
                    )
                )
                if built and _SQL_WORDS.search(ast.unparse(arg)) and (parts := _unsafe_parts(arg, bound)):
                    found.append(f"{path.relative_to(root.parent)}:{node.lineno}: {parts}")
    assert sorted(set(found)) == [], "SQL text built from variables:\n" + "\n".join(sorted(set(found)))


# --- 2. a file of more than 1 GB ---------------------------------------------------------------------------

LOADER = """
import json, re, sys, time
from pathlib import Path
from jx_pipeline.catalog import load_catalog
from jx_pipeline.lib import ingest
from jx_pipeline.lib.pg import connect
def peak_mb():  # this process's own high-water mark (ru_maxrss would include the parent's, kept over fork)
    return int(re.search(r"VmHWM:\\s+(\\d+) kB", Path("/proc/self/status").read_text())[1]) / 1024
feed = load_catalog().feed("gaj_ldrk")
feed = feed.model_copy(update={"id": "badin_csv", "source": feed.source.model_copy(update={"encoding": "utf-8"})})
direct = ingest._copy_csv_direct
paths = []
def _direct(*args):  # which path the load took: COPY of the bytes, or the batch reader after a failure
    paths.append("direct")
    return direct(*args)
ingest._copy_csv_direct = _direct
before = peak_mb()
started = time.monotonic()
with connect(sys.argv[1]) as conn:
    res = ingest.load_partition(conn, feed, sys.argv[2], "big", world=Path(sys.argv[3]))
    raw = conn.execute("select count(*) from raw.badin_csv where _partition = %s", (sys.argv[2],)).fetchone()[0]
    conn.rollback()  # a 1 GB table is not kept
print(json.dumps({"read": res.rows_read, "loaded": res.rows_loaded, "rejected": res.rows_rejected, "raw": raw,
                  "seconds": time.monotonic() - started, "before_mb": before, "peak_mb": peak_mb(), "paths": paths}))
"""


def test_a_file_over_1_gb_streams_with_flat_memory(tmp_path, clean, warehouse_url):
    feed = _feed(encoding="utf-8")
    block = _csv(_rows(10_000), encoding="utf-8", header_line=False)
    blocks = (1 << 30) // len(block) + 1
    started = time.monotonic()
    path = _folder(tmp_path, feed) / "big.csv"
    with path.open("wb") as fh:
        fh.write(",".join(COLS).encode() + b"\n")
        for _ in range(blocks):
            fh.write(block)
    assert path.stat().st_size > 1 << 30
    done = subprocess.run(
        [sys.executable, "-c", LOADER, warehouse_url, DAY, str(tmp_path)], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    peak_mb = out.pop("peak_mb")
    path.unlink()
    print(
        f"\n1 GB file: {blocks * 10_000:,} rows, load {out['seconds']:.0f} s, total {time.monotonic() - started:.0f} s,"
        f" peak RSS of the loader {peak_mb:.0f} MB"
    )
    assert out == {
        **out,
        "read": blocks * 10_000,
        "loaded": blocks * 10_000,
        "rejected": 0,
        "raw": blocks * 10_000,
    }
    print(f"paths taken: {out.pop('paths')}; RSS before the load {out.pop('before_mb'):.0f} MB")
    assert peak_mb < 300


# --- 3. encodings that change part-way --------------------------------------------------------------------


def test_utf8_file_with_a_gbk_tail_names_the_line(tmp_path, clean):
    feed = _feed(encoding="utf-8")
    bad = _csv(_rows(50), encoding="utf-8") + _csv(_rows(5, start=50), encoding="gbk", header_line=False)
    err = _good_then_bad(
        clean, tmp_path, feed, {"mixed.csv": bad}, r"file .*mixed\.csv line 52: not valid utf-8"
    )
    assert "it reads as gb18030: 'K50,张三,330421199001010018,男" in err.message
    assert "one encoding" in err.fix


def test_gbk_file_with_a_utf8_tail_is_refused_not_loaded_as_mojibake(tmp_path, clean):
    feed = _feed(encoding="gbk")
    bad = _csv(_rows(50), encoding="gbk") + _csv(_rows(3, start=50), encoding="utf-8", header_line=False)
    err = _good_then_bad(
        clean, tmp_path, feed, {"mixed.csv": bad}, r"file .*mixed\.csv line 54: utf-8 text, not gbk"
    )
    assert "it reads as utf-8: 'K52,张三" in err.message


def test_gbk_file_whose_utf8_tail_also_decodes_as_gbk_is_refused(tmp_path, clean):
    """'张三李四' in UTF-8 is 12 bytes that GBK decodes without an error, as 寮犱笁鏉庡洓: such a tail loaded as
    mojibake, silently, before the guard."""
    feed = _feed(encoding="gbk")
    tail = _rows(3, start=50, BRXM="张三李四", XB="M", XZZ="嘉兴南湖")
    assert _csv(tail, encoding="utf-8", header_line=False).decode("gbk")  # no error: the trap
    bad = _csv(_rows(50), encoding="gbk") + _csv(tail, encoding="utf-8", header_line=False)
    err = _good_then_bad(
        clean, tmp_path, feed, {"mixed.csv": bad}, r"file .*mixed\.csv line 54: utf-8 text, not gbk"
    )
    assert "it reads as utf-8: 'K52,张三李四" in err.message


def test_gbk_file_with_utf8_rows_inside_is_refused(tmp_path, clean):
    feed = _feed(encoding="gbk")
    bad = (
        _csv(_rows(3000), encoding="gbk")
        + _csv(_rows(2000, start=3000), encoding="utf-8", header_line=False)
        + _csv(_rows(3000, start=5000), encoding="gbk", header_line=False)
    )
    err = _good_then_bad(
        clean, tmp_path, feed, {"mixed.csv": bad}, r"file .*mixed\.csv line \d+: utf-8 text, not gbk"
    )
    line = int(re.search(r"line (\d+)", err.message)[1])
    assert 3002 <= line <= 5001  # a line of the UTF-8 stretch


# --- 4. Parquet of other types -----------------------------------------------------------------------------


def _parquet(columns: dict[str, pa.Array]) -> bytes:
    buf = io.BytesIO()
    pq.write_table(pa.table(columns), buf)
    return buf.getvalue()


def test_parquet_columns_of_other_types_load_as_their_text(tmp_path, clean):
    wh, feed = clean, _feed("parquet", "utf-8")
    table = {
        "XH": pa.array([1, 2**62]),  # int64 keys
        "BRXM": pa.array([b"\xe5\xbc\xa0\xe4\xb8\x89", None], pa.binary()),  # UTF-8 bytes
        "ZJHM": pa.array([3.30421199001e17, 0.1]),  # an Excel-mangled ID as a float
        "XB": pa.array([True, False]),
        "CSRQ": pa.array([dt.date(1990, 1, 1), None]),
        "SJHM": pa.array([decimal.Decimal("13912345678"), decimal.Decimal("1.50")]),
        "XZZ": pa.array([{"省": "浙江", "市": "嘉兴"}, None]),  # nested: a struct
        "SJRQ": pa.array([dt.datetime(2026, 11, 1, 8, 30)] * 2, pa.timestamp("us", tz="Asia/Shanghai")),
        "BGLX": pa.array([["I", "U"], []]),  # nested: a list
    }
    _land(tmp_path, feed, {"f.parquet": _parquet(table)})
    res = _load(wh, tmp_path, feed)
    assert _reconciles(wh, feed, res) == 2
    assert _raw(wh, feed, cols=[c.lower() for c in COLS]) == [
        (
            "1",
            "张三",
            "3.30421199001e+17",
            "true",
            "1990-01-01",
            "13912345678.00",
            '{"省": "浙江", "市": "嘉兴"}',
            "2026-11-01 16:30:00.000000+0800",
            '["I", "U"]',
        ),
        (
            "4611686018427387904",
            None,
            "0.1",
            "false",
            None,
            "1.50",
            None,
            "2026-11-01 16:30:00.000000+0800",
            "[]",
        ),
    ]
    wh.rollback()


def test_parquet_binary_that_is_not_text_names_row_and_column(tmp_path, clean):
    feed = _feed("parquet", "utf-8")
    cols = {c: pa.array(["a", "b"]) for c in COLS}
    cols["BRXM"] = pa.array([b"ok", b"\xff\xfe\x00"], pa.binary())
    _good_then_bad(
        clean,
        tmp_path,
        feed,
        {"f.parquet": _parquet(cols)},
        r"feed badin_csv file .*f\.parquet row 3 column BRXM: binary value b'\\xff\\xfe\\x00' is not text",
    )


def test_parquet_with_no_rows_loads_nothing_and_reconciles(tmp_path, clean):
    wh, feed = clean, _feed("parquet", "utf-8")
    _land(tmp_path, feed, {"f.parquet": _parquet({c: pa.array([], pa.string()) for c in COLS})})
    res = _load(wh, tmp_path, feed)
    assert _reconciles(wh, feed, res) == 0 and res.files
    wh.rollback()


# --- 5. a database feed whose watermark goes backwards -------------------------------------------------------


def _db_feed() -> Feed:
    return Feed.model_validate(
        {
            "id": "badin_db",
            "department": "gaj",
            "name": "库表",
            "name_en": "Database feed",
            "domain": "other",
            "archetype": "nature_record",
            "source": {"kind": "database", "table": "late_src", "watermark": "GXSJ"},
            "records": 10,
            "key": ["ID"],
            "columns": {"ID": "record_key", "MC": "entity_name", "GXSJ": "updated_at"},
        }
    )


def test_rows_written_into_a_day_already_loaded_stop_the_next_load(tmp_path, clean, make_scratch_db):
    from jx_pipeline.lib.pg import connect

    wh, feed, url = clean, _db_feed(), make_scratch_db()
    first = "2026-11-01"

    def insert(*rows):
        with connect(url, autocommit=True) as src:
            for row in rows:
                src.execute("insert into gaj.late_src values (%s, %s, %s)", row)

    def load(day):
        return ingest.load_partition(
            wh, feed, day, "badin", world=tmp_path, source_url=url, first_partition=first
        )

    with connect(url, autocommit=True) as src:
        src.execute('create schema gaj; create table gaj.late_src ("ID" text, "MC" text, "GXSJ" timestamp)')
    insert(("A", "甲", "2026-10-20 09:00"), ("B", "乙", "2026-11-01 09:00"))
    assert load(first).rows_loaded == 2
    insert(("C", "丙", "2026-11-02 09:00"))
    assert load("2026-11-02").rows_loaded == 1
    wh.commit()
    # a row backdated into the first day, and one updated with a watermark in the second: both already loaded
    insert(("D", "丁", "2026-11-01 12:00"), ("E", "戊", "2026-11-03 09:00"))
    with connect(url, autocommit=True) as src:
        src.execute("""update gaj.late_src set "MC" = '丙改', "GXSJ" = '2026-11-02 18:00' where "ID" = 'C'""")
    with pytest.raises(
        JxError,
        match=r"feed badin_db table gaj\.late_src: 2 row\(s\) with a GXSJ in day\(s\) already loaded"
        r" \(2026-11-01: 1, 2026-11-02: 1\) are not in raw",
    ) as err:
        load("2026-11-03")
    wh.rollback()
    assert "--partition-range 2026-11-01...2026-11-02" in err.value.fix
    assert _audit(wh, feed, "2026-11-03") is None and _audit(wh, feed, "2026-11-02") == (1, 1, 0)
    # the fix the error gives: re-run those days, then the day that failed
    assert load(first).rows_loaded == 3 and load("2026-11-02").rows_loaded == 1
    assert load("2026-11-03").rows_loaded == 1
    keys = wh.execute('select "id", "mc", _partition from raw.badin_db order by 1').fetchall()
    assert keys == [
        ("A", "甲", first),
        ("B", "乙", first),
        ("C", "丙改", "2026-11-02"),
        ("D", "丁", first),
        ("E", "戊", "2026-11-03"),
    ]
    # what passed is remembered per day (quality.late_row_digest): a day whose source rows did not change since is
    # not read again, and a late row in a day checked before is still caught
    wh.commit()
    digests = dict(
        wh.execute(
            "select day, checked_at from quality.late_row_digest where feed_id = %s", (feed.id,)
        ).fetchall()
    )
    assert sorted(digests) == [first, "2026-11-02"]
    insert(("F", "己", "2026-11-02 20:00"))
    with pytest.raises(JxError, match=r"1 row\(s\) with a GXSJ in day\(s\) already loaded \(2026-11-02: 1\)"):
        load("2026-11-04")
    wh.rollback()
    with connect(url, autocommit=True) as src:
        src.execute("""delete from gaj.late_src where "ID" = 'F'""")
    wh.execute("select pg_sleep(0.01)")
    assert load("2026-11-04").rows_loaded == 0
    again = dict(
        wh.execute(
            "select day, checked_at from quality.late_row_digest where feed_id = %s", (feed.id,)
        ).fetchall()
    )
    # unchanged since: not read again
    assert again[first] == digests[first] and again["2026-11-02"] == digests["2026-11-02"]
    assert "2026-11-03" in again  # checked for the first time
    wh.rollback()


# --- 6. a partition whose every row is rejected ------------------------------------------------------------------


def test_every_row_rejected_in_raw_reconciles_and_keeps_other_days(tmp_path, clean):
    wh, feed = clean, _feed()
    _land(tmp_path, feed, {"good.csv": _csv(_rows(2))}, day="2026-11-01")
    _load(wh, tmp_path, feed, "2026-11-01")
    wh.commit()
    _land(tmp_path, feed, {"bad.csv": _csv(_rows(4, BRXM="张\x00三"))})
    res = _load(wh, tmp_path, feed)
    assert (res.rows_read, res.rows_loaded, res.rows_rejected) == (4, 0, 4)
    assert _reconciles(wh, feed, res) == 0
    assert _rejects(wh, feed) == [(n, "BRXM", "nul_byte: NUL character in value") for n in range(2, 6)]
    stage = staging.stage_partition(wh, feed, DAY, "badin")
    assert (stage.rows_read, stage.rows_staged, stage.rows_rejected) == (0, 0, 0)
    assert _audit(wh, feed, stage="staged") == (0, 0, 0)
    assert _raw(wh, feed, "2026-11-01") == [("K0",), ("K1",)]  # the other day is untouched
    wh.rollback()


def test_every_row_rejected_in_staged_reconciles(tmp_path, clean):
    wh, feed = clean, _feed()
    _land(tmp_path, feed, {"f.csv": _csv([*_rows(3, XH=" "), _row("")])})
    res = _load(wh, tmp_path, feed)
    assert _reconciles(wh, feed, res) == 4
    stage = staging.stage_partition(wh, feed, DAY, "badin")
    assert (stage.rows_read, stage.rows_staged, stage.rows_rejected) == (4, 0, 4)
    assert _audit(wh, feed, stage="staged") == (4, 0, 4)
    assert _rejects(wh, feed, stage="staged") == [(n, "XH", "key_empty") for n in range(2, 6)]
    wh.rollback()


# --- odd files and folders -----------------------------------------------------------------------------------


def _xlsx(rows: list[list]) -> bytes:
    from openpyxl import Workbook

    wb = Workbook()
    for row in rows:
        wb.active.append(row)
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


ERRORS = {
    "more_fields_than_header": (
        _feed(),
        _csv([_row("K1"), [*_row("K2"), "多余"], _row("K3")]),
        r"file .*bad\.csv row 3: 10 fields, header has 9",
    ),
    "fewer_fields_than_header": (
        _feed(),
        _csv([_row("K1"), _row("K2")[:5]]),
        r"file .*bad\.csv row 3: 5 fields, header has 9",
    ),
    "trailing_delimiter": (
        _feed(),
        _csv([[*_row(), ""]], header=[*COLS, ""]),
        r"row 1: unexpected column\(s\) \[''\] \(an empty name: a blank header cell, or a delimiter ending the header line\?\)",
    ),
    "header_with_spaces": (
        _feed(),
        _csv([_row()], header=[COLS[0], f" {COLS[1]} ", *COLS[2:]]),
        rf"column\(s\) \['{COLS[1]}'\] missing \(renamed to \[' {COLS[1]} '\]\?\)",
    ),
    "other_delimiter": (
        _feed(),
        ";".join(COLS).encode() + b"\n" + ";".join(_row()).encode("gbk") + b"\n",
        r"row 1: column\(s\) .* missing; found \['XH;BRXM;",
    ),
    "gzip_named_csv": (
        _feed(encoding="utf-8"),
        gzip.compress(_csv([_row()], encoding="utf-8")),
        r"file .*bad\.csv line 1: not valid utf-8",
    ),
    "bom_only": (_feed(encoding="utf-8"), b"\xef\xbb\xbf", r"file .*bad\.csv row 1: column\(s\) .* missing"),
    "zero_byte_xlsx": (_feed("xlsx", "utf-8"), b"", r"file .*bad\.csv: cannot read it as xlsx"),
    "truncated_xlsx": (_feed("xlsx", "utf-8"), _xlsx([COLS, _row()])[:300], r"cannot read it as xlsx"),
    "parquet_missing_column": (
        _feed("parquet", "utf-8"),
        _parquet({c: pa.array(["x"]) for c in COLS[:-1]}),
        rf"file .*bad\.csv row 1: column\(s\) \['{COLS[-1]}'\] missing",
    ),
}


@pytest.mark.parametrize("case", sorted(ERRORS))
def test_bad_file_gives_a_clear_error_and_keeps_the_good_load(case, tmp_path, clean):
    feed, content, pattern = ERRORS[case]
    _good_then_bad(clean, tmp_path, feed, {"bad.csv": content}, rf"feed badin_csv .*{pattern}")


def _directory(folder: Path) -> None:
    (folder / "part2").mkdir()


def _loop(folder: Path) -> None:
    (folder / "a.csv").symlink_to(folder / "b.csv")
    (folder / "b.csv").symlink_to(folder / "a.csv")


def _dangling(folder: Path) -> None:
    (folder / "gone.csv").symlink_to(folder / "nowhere.csv")


ENTRIES = {
    "directory": (_directory, "part2 is a folder"),
    "symlink_loop": (_loop, "a.csv is a broken or looping link"),
    "dangling_symlink": (_dangling, "gone.csv is a broken or looping link"),
}


@pytest.mark.parametrize("case", sorted(ENTRIES))
def test_an_entry_that_is_not_a_file_stops_the_load(case, tmp_path, clean):
    """Before: the entry was skipped silently, and the rows in it were lost without a word."""
    make, message = ENTRIES[case]
    wh, feed = clean, _feed()
    _land(tmp_path, feed, {"good.csv": _csv([_row("OLD")])})
    _load(wh, tmp_path, feed)
    wh.commit()
    make(_folder(tmp_path, feed))
    with pytest.raises(JxError, match=rf"feed badin_csv landing folder .*{DAY}: {re.escape(message)}"):
        _load(wh, tmp_path, feed)
    wh.rollback()
    assert _raw(wh, feed) == [("OLD",)]


def test_a_file_deleted_after_listing_is_a_clear_error(tmp_path, clean, monkeypatch):
    wh, feed = clean, _feed()
    folder = _land(tmp_path, feed, {"a.csv": _csv([_row("A")]), "b.csv": _csv([_row("B")])})
    listed = ingest.landing_files(tmp_path, feed, DAY)

    def listing_then_delete(world, f, day):  # the department's cleanup job removes b.csv after the listing
        (folder / "b.csv").unlink()
        return listed

    monkeypatch.setattr(ingest, "landing_files", listing_then_delete)
    with pytest.raises(JxError, match=r"feed badin_csv file .*b\.csv disappeared before it was read"):
        _load(wh, tmp_path, feed)
    wh.rollback()
    assert _audit(wh, feed) is None


LOADS = {
    "cr_line_endings": (_feed(), _csv(_rows(3), eol="\r"), 3, 0),
    "mixed_line_endings": (
        _feed(),
        _csv(_rows(2), eol="\r\n") + _csv(_rows(2, start=2), header_line=False),
        4,
        0,
    ),
    "bom_inside_a_value": (
        _feed(encoding="utf-8"),
        _csv([_row("K1", BRXM="张\ufeff三")], encoding="utf-8"),
        1,
        0,
    ),
}


@pytest.mark.parametrize("case", sorted(LOADS))
def test_odd_but_loadable_files_reconcile(case, tmp_path, clean):
    wh = clean
    feed, content, loaded, rejected = LOADS[case]
    _land(tmp_path, feed, {"f.csv": content})
    res = _load(wh, tmp_path, feed)
    assert (res.rows_loaded, res.rows_rejected) == (loaded, rejected)
    assert _reconciles(wh, feed, res) == loaded
    if case == "bom_inside_a_value":
        assert _raw(wh, feed, cols=["brxm"]) == [("张\ufeff三",)]
    wh.rollback()


def test_excel_numbers_and_dates_arrive_as_the_text_a_person_sees(tmp_path, clean):
    """Excel stores every number as a float: a phone typed as a number is 13912345678.0, an ID is rounded to 15
    digits (3.30421199001E+17), a date typed without a date format is a serial (32874). Raw holds the text a
    person sees in the cell; staged reads the serial as its date and nulls the rounded ID with its reason.
    Before: pandas read the phone as '13912345678.0' and the date cell as '1990-01-01 00:00:00'."""
    wh, feed = clean, _feed("xlsx", "utf-8")
    rows = [
        COLS,
        [
            "K1",
            "张三",
            "330421199001010018",
            "男",
            dt.datetime(1990, 1, 1),
            13912345678.0,
            "嘉兴",
            dt.datetime(2026, 11, 1, 8, 30),
            "I",
        ],
        ["K2", "李四", 330421199001010018, "女", 32874, None, "嘉兴", "2026-11-01 09:00:00", "U"],  # a float
    ]
    _land(tmp_path, feed, {"f.xlsx": _xlsx(rows)})
    res = _load(wh, tmp_path, feed)
    assert _reconciles(wh, feed, res) == 2
    assert _raw(wh, feed, cols=["zjhm", "csrq", "sjhm", "sjrq"]) == [
        ("330421199001010018", "1990-01-01", "13912345678", "2026-11-01 08:30:00"),
        ("330421199001010000", "32874", "", "2026-11-01 09:00:00"),
    ]
    stage = staging.stage_partition(wh, feed, DAY, "badin")
    assert (stage.rows_read, stage.rows_staged, stage.rows_rejected) == (2, 2, 0)
    assert _rejects(wh, feed, stage="staged") == [(3, "ZJHM", "id_checksum")]
    born = wh.execute(
        sql.SQL("select record_key, birth_date::text from {} order by 1").format(staging.staged_table(feed))
    ).fetchall()
    assert born == [("K1", "1990-01-01"), ("K2", "1990-01-01")]
    wh.rollback()


def test_ids_in_scientific_notation_are_nulled_with_a_reason(tmp_path, clean):
    wh, feed = clean, _feed()
    _land(tmp_path, feed, {"f.csv": _csv([_row("K1"), _row("K2", ZJHM="3.30421E+17")])})
    _load(wh, tmp_path, feed)
    stage = staging.stage_partition(wh, feed, DAY, "badin")
    assert (stage.rows_read, stage.rows_staged, stage.rows_rejected, stage.values_nulled) == (2, 2, 0, 1)
    assert _rejects(wh, feed, stage="staged") == [(3, "ZJHM", "id_length")]
    wh.rollback()
