"""Staging's fast path (lib/staging_fast.py) against the Python standardizers it stands in for.

Each Arrow rule may accept a value only when the Python standardizer gives that same value with no reason (the
text it copies in reads in PostgreSQL as that value); and it must accept the clean forms it was written for (else
the path would be slow, not wrong: checked so that the test cannot pass by the rule accepting nothing). Values are generated apart from the world generator: IDs and
credit codes with python-stdnum's check characters, every area code stdnum knows (retired ones at their last
year), every whitespace character Python knows, dates around month ends, leap days and the range bounds. Then
whole partitions are staged with the fast path and without it, and must be equal row for row and reject for
reject.
"""

import io
import random
from datetime import date, timedelta
from decimal import Decimal

import pyarrow as pa
import pytest
from psycopg import sql
from stdnum.cn import ric

from jx_pipeline.catalog import load_catalog
from jx_pipeline.lib import canonical, ingest, staging, staging_fast
from jx_pipeline.lib.migrations import migrate
from jx_pipeline.lib.pg import connect
from jx_pipeline.lib.standardize import USCC_ALPHABET, area_code_years, credit_code_check
from jx_pipeline_tests.conftest import catalog_with
from jx_pipeline_tests.test_standardize_vectors import STDNUM_RIC_VECTORS, USCC_PUBLISHED

DAY = date(2026, 11, 1)
LATEST = canonical.latest_date(DAY)
WHITESPACE = [chr(i) for i in range(0x110000) if chr(i).isspace()]
rng = random.Random(20261130)


def _ids(n: int) -> tuple[list[str], list[str]]:
    """(clean IDs a clerk types, other forms of IDs); birth dates from 1880 to the day after the landing day."""
    areas = staging_fast.area_last_years()
    clean, other = [], []
    for _ in range(n):
        area, last = rng.choice(areas)
        born = date(1880, 1, 1) + timedelta(days=rng.randrange((LATEST - date(1880, 1, 1)).days + 1))
        body = area + born.strftime("%Y%m%d") + f"{rng.randrange(1000):03d}"
        v = body + ric.calc_check_digit(body + "0")
        (clean if born.year <= last and born <= LATEST else other).append(v)
        wrong = str((int(v[17]) + 1) % 10) if v[17] != "X" else "0"
        other += [v[:17] + wrong, v.lower(), " " + v, v[:6] + v[8:17], v[:10] + "0230" + v[14:]]
    other += ["110105194912310021", "11010519491231002x", "999999194912310021", "1101051879123100", ""]
    retired = [(a, last) for a, last in areas if 1880 <= last < LATEST.year]
    for area, last in rng.sample(retired, min(200, len(retired))):  # born in the code's last year, and after
        for year, into in ((last, clean), (last + 1, other)):
            body = f"{area}{year}0615{rng.randrange(1000):03d}"
            into.append(body + ric.calc_check_digit(body + "0"))
    return clean, other


def _credit_codes(n: int) -> tuple[list[str], list[str]]:
    clean, other = [], []
    for _ in range(n):
        head = rng.choice(["91", "92", "93", "11", "12", "51", "52", "N1", "N2", "Y1", "31", "Q1"])
        body = head + f"{rng.randrange(330000, 340000):06d}" + "".join(rng.choices(USCC_ALPHABET, k=9))
        v = body + credit_code_check(body)
        clean.append(v)
        other += [
            v[:17] + USCC_ALPHABET[(USCC_ALPHABET.index(v[17]) + 1) % 31],
            v.lower(),
            v[:8] + "I" + v[9:],
        ]
    return clean, other


def _dates(n: int, field: str) -> tuple[list[str], list[str]]:
    """Dates in every y-m-d shape the feeds use: clean ones within the field's range, and others."""
    earliest = canonical.EARLIEST[field]
    clean, other = [], []
    shapes = ["%Y%m%d", "%Y-%m-%d", "%Y/%m/%d", "%Y.%m.%d", "%Y年%m月%d日", "%Y-%m-%d %H:%M:%S"]
    for _ in range(n):
        day = date(1890, 1, 1) + timedelta(days=rng.randrange(50000))
        (clean if earliest <= day <= LATEST else other).extend(day.strftime(s) for s in shapes)
        y, m, d = day.year, day.month, day.day
        other += [
            f"{y}-{m}-{d}",
            f"{y:04d}{m:02d}{d + 30:02d}",
            f"{y:04d}-{m + 12:02d}-{d:02d}",
            f"{y}-02-30",
        ]
        other += [
            f"{y:04d}-{m:02d}-{d:02d} 24:00:00",
            f"{y:04d}-{m:02d}-{d:02d}T08:00:00",
            f"{d:02d}/{m:02d}/{y}",
        ]
    for y in (1900, 1948, 1949, 1996, 2000, 2023, 2024, 2100):  # leap days, bounds of the ranges
        other += [
            f"{y}-02-29",
            f"{y}0229",
            f"{y}-02-28",
            f"{y}-12-31",
            f"{y}-01-01",
            f"{y}-09-30",
            f"{y}-04-31",
        ]
    other += [f"{LATEST:%Y-%m-%d}", f"{LATEST + timedelta(days=1):%Y-%m-%d}", "1949-10-01", "1949-09-30"]
    other += ["1900-01-01", "1899-12-31", "0000-01-01", "2024-1a-01", "2024-03-07 1::00:00", "32875", ""]
    return clean, other


def _texts() -> tuple[list[str], list[str]]:
    words = ["张三", "嘉兴市南湖区中山路1号", "A B", "x", "王 五 六", "a\\b", "\\N", "路(东)", "Ｏ"]
    other = []
    for w in WHITESPACE:
        other += [w, w + "张三", "张三" + w, "张" + w + "三", "张" + w + w + "三", "张 " + w + "三"]
    return words, [*other, "", " ", "张  三", " 张三", "张三 "]


CASES = {
    # field: (clean values the fast path must accept, other values it may accept only as Python does)
    "id_number": _ids(400),
    "credit_code": _credit_codes(300),
    "birth_date": _dates(150, "birth_date"),
    "reg_date": _dates(50, "reg_date"),
    "event_date": _dates(50, "event_date"),
    "phone": (
        [f"1{rng.choice('3456789')}{rng.randrange(10**9):09d}" for _ in range(200)],
        [
            "12345678901",
            "1381234567",
            "138123456789",
            "0573-82345678",
            "+8613812345678",
            "１３８１２３４５６７８",
        ],
    ),
    "gender": (
        ["男", "女", "1", "2", "M", "F", "男性", "女性", "male"],
        ["0", "9", "未知", "X", " 男", "m ", "ı"],
    ),
    "deleted": (["0", "1", "Y", "N", "true", "FALSE", "是", "否"], ["2", "yes", " 1", "ı", "ｙ"]),
    "change_type": (["I", "U", "D", "i", "d"], ["X", " I", "ı", "II"]),
    "period": (
        ["202403", "2024-03", "1949-01", "2100-12"],
        ["202413", "1948-12", "2024-3", "2024/03", "20240", "2024年3月", "2024/3", "2024-3 ", "2024-03 "],
    ),
    "amount": (
        ["0", "1", "007.50", "1234567.89", "99999999999999999999.5", "0.0000001"],
        ["-1", "1e5", "1,000", ".5", "1.", "1.2.3", "NaN", "Infinity", "3.5万元", " 1", "１"],
    ),
    "updated_at": (
        ["2026-10-31 08:00:00", "2024-02-29 23:59:59", "1999-12-31 00:00:00"],
        [
            "2026-10-31 24:00:00",
            "2026-10-31 23:60:00",
            "2026-10-31 23:59:60",
            "2023-02-29 00:00:00",
            "0000-01-01 00:00:00",
            "2024-03-07",
            "2024-03-07 08:00",
            "2024/03/07",
            "2024-03-07T08:00:00",
            "2024-03-07 8:00:00",
        ],
    ),
    "person_name": _texts(),
    "address": _texts(),
}
for _clean, _other in CASES.values():  # an empty cell and a stray word in every field
    _other += ["", " ", "无", "\ufeff1", "a,b", 'a"b', "\\."]


def _fast_values(field: str, declared: str, values: list[str]) -> list:
    """What the fast path makes of each value (None: not fast), as the split calls it."""
    got = staging_fast.value(
        field, pa.array(values, pa.string()), declared, LATEST, canonical.EARLIEST.get(field)
    )
    return got.to_pylist()


def _read_in_postgresql(conn, field: str, texts: list[str | None]) -> list:
    """The texts as PostgreSQL reads them into the field's staged column (what COPY does with them)."""
    kind = sql.SQL(canonical.sql_type(field).replace(" not null", ""))
    rows = conn.execute(
        sql.SQL("select v::{} from unnest(%s::text[]) with ordinality u(v, i) order by i").format(kind),
        (texts,),
    ).fetchall()
    return [r[0] for r in rows]


def _same(read, py_value) -> bool:
    if isinstance(read, date) and isinstance(py_value, str):  # a date standardizer gives ISO text
        return read.isoformat() == py_value
    if isinstance(read, Decimal):
        return isinstance(py_value, Decimal) and str(read) == str(py_value)
    return type(read) is type(py_value) and read == py_value


@pytest.mark.parametrize("field", sorted(CASES))
def test_the_fast_path_accepts_a_value_only_as_the_python_standardizer_reads_it(warehouse_url, field):
    """Every value the rule accepts, its text read by PostgreSQL into the staged column, equals the Python
    standardizer's value (with no reason); every clean value is accepted; no value makes the rule fail."""
    clean, other = CASES[field]
    declared_formats = sorted(staging_fast.DATE_FORMATS) if field in canonical.EARLIEST else ["%Y-%m-%d"]
    with connect(warehouse_url) as conn:
        for declared in declared_formats:
            std = canonical.standardizers([field], declared, DAY)[field]
            values = clean + other
            got = _fast_values(field, declared, values)
            read = _read_in_postgresql(conn, field, got)
            accepted = 0
            for value, fast, value_read in zip(values, got, read, strict=True):
                py_value, reason = std(value)
                if value == "":  # the row condition takes an empty value as fast and NULL
                    assert (py_value, reason, fast) == (None, None, None)
                    continue
                if fast is not None:
                    accepted += 1
                    assert reason is None and _same(value_read, py_value), (
                        field,
                        declared,
                        value,
                        fast,
                        py_value,
                        reason,
                    )
            missed = [v for v, fast in zip(clean, got, strict=False) if fast is None]
            assert not missed, f"{field} ({declared}): clean values left to Python: {missed[:5]}"
            assert accepted >= len(clean)


def test_the_area_table_is_stdnums_rule_code_by_code():
    """The table the ID check joins (one walk of stdnum's tree) against ``area_code_years`` (stdnum's lookup):
    every code in it, every code of Zhejiang, and codes drawn from every province."""
    table = dict(staging_fast.area_last_years())
    for code, last in table.items():
        assert max(y for _f, y in area_code_years(code)) == last, code
    provinces = sorted({c[:2] for c in table})
    codes = [f"33{n:04d}" for n in range(10000)] + [
        f"{rng.choice(provinces)}{rng.randrange(10000):04d}" for _ in range(5000)
    ]
    for code in codes:
        years = area_code_years(code)
        assert (code in table) == bool(years) and (not years or table[code] == max(y for _f, y in years)), (
            code
        )


def test_the_fast_paths_whitespace_is_pythons_for_every_character():
    """Texts and keys are fast only without Python's whitespace (str.isspace, what re's \\s and str.strip use),
    listed one by one for Arrow's regular expressions: every Unicode character, inside a value and at its ends."""
    chars = [chr(i) for i in range(1, 0x110000) if not 0xD800 <= i <= 0xDFFF]

    def rejected(fn, values: list[str]) -> list[bool]:
        return fn(pa.array(values)).is_null().to_pylist()

    inside = rejected(staging_fast._text, [f"a{c}b" for c in chars])
    start = rejected(staging_fast._text, [f"{c}a" for c in chars])
    end = rejected(staging_fast._text, [f"a{c}" for c in chars])
    key_end = rejected(staging_fast.key, [f"a{c}" for c in chars])
    key_start = rejected(staging_fast.key, [f"{c}a" for c in chars])
    key_inside = rejected(staging_fast.key, [f"a{c}b" for c in chars])
    assert len(chars) == 0x110000 - 1 - 2048
    for c, *got in zip(chars, inside, start, end, key_start, key_end, key_inside, strict=True):
        ws = c.isspace()
        assert tuple(got) == (ws and c != " ", ws, ws, ws, ws, False), hex(ord(c))


def test_every_feed_stages_the_same_with_and_without_the_fast_path(world, make_scratch_db, monkeypatch):
    """Every file feed's first day of the session's world (its noise: bad IDs, dates in other formats, stray
    whitespace, repeated keys, coordinates in three systems), staged both ways: the same rows, the same rejects."""
    feeds = [f for f in load_catalog().feeds if f.source.kind == "file"]
    day = sorted(p.name for p in (world / "landing" / feeds[0].department / feeds[0].id).iterdir())[0]
    fast_rows = read = 0
    with connect(make_scratch_db()) as conn:
        migrate(conn)
        for feed in feeds:
            ingest.load_partition(conn, feed, day, "b1", world=world)
            staged = {}
            for fast in (False, True):
                monkeypatch.setattr(staging, "FAST", fast)
                result = staging.stage_partition(conn, feed, day, "b1")
                rows = conn.execute(
                    sql.SQL("select * from staged.{} where _partition = %s order by _row_id").format(
                        sql.Identifier(feed.id)
                    ),
                    (day,),
                ).fetchall()
                rejects = conn.execute(
                    "select source_file, row_number, column_name, reason, value, scope from quality.rejects"
                    " where feed_id = %s and partition_key = %s and stage = 'staged' order by 1, 2, 3, 4",
                    (feed.id, day),
                ).fetchall()
                staged[fast] = (result.rows_read, result.rows_staged, result.rows_rejected, rows, rejects)
                fast_rows += result.rows_fast
            assert staged[True] == staged[False], feed.id
            assert staged[True][3], feed.id  # rows were staged: the comparison compared something
            read += staged[True][0]
    # most rows of a real feed are clean: they go the fast way; the noise goes the Python way
    assert 0.5 * read < fast_rows < read


def _stage_both_ways(
    tmp_path,
    make_scratch_db,
    monkeypatch,
    feed_id,
    columns,
    lines,
    select,
    raw_select=None,
    raw_before=None,
    **extra,
):
    """A feed of ``columns`` (a CSV day of ``lines``) landed, loaded and staged without the fast path, then with
    it (at any partition size). Per way: (rows read, staged, rejected, the rows ``select`` reads, the rejects),
    the rows that went fast, and the raw rows as a plain cursor reads them (``raw_select``, when given);
    ``raw_before``: a statement run on the raw table first. Either way, the staged partition is left with no
    default for its lineage (the fast path's copy gives the shared values by defaults, then drops them), and the
    session's parallel scans as they were (the raw read turns them off for itself)."""
    doc = {
        "id": feed_id,
        "department": "gaj",
        "name": "快速路径测试",
        "name_en": "Fast path test",
        "domain": "other",
        "archetype": "place_event",
        "source": {"kind": "file", "format": "csv", "encoding": "utf-8"},
        "records": len(lines) - 1,
        "key": ["BH"],
        "columns": columns,
        **extra,
    }
    feed = load_catalog(catalog_with(tmp_path, lambda d: d["feeds"].append(doc))).feed(feed_id)
    day = DAY.isoformat()
    folder = tmp_path / "world" / "landing" / "gaj" / feed.id / day
    folder.mkdir(parents=True)
    (folder / f"{feed.id}_{DAY:%Y%m%d}.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    staged, fast_rows, raw = {}, 0, None
    with connect(make_scratch_db()) as conn:
        migrate(conn)
        ingest.load_partition(conn, feed, day, "b1", world=tmp_path / "world")
        if raw_before:
            conn.execute(sql.SQL(raw_before).format(sql.Identifier(feed.id)))
        if raw_select:
            raw = conn.execute(sql.SQL(raw_select).format(sql.Identifier(feed.id))).fetchall()
        conn.execute("set max_parallel_workers_per_gather = 1")
        for fast in (False, True):
            monkeypatch.setattr(staging, "FAST", fast)
            result = staging.stage_partition(conn, feed, day, "b1")
            assert conn.execute("show max_parallel_workers_per_gather").fetchone() == ("1",)
            defaults = conn.execute(
                "select a.attname from pg_attrdef d join pg_attribute a on (a.attrelid, a.attnum) ="
                " (d.adrelid, d.adnum) where d.adrelid = %s::regclass and a.attname = any(%s)",
                (staging.staged_table(feed, day).as_string(conn), list(staging_fast.SHARED)),
            ).fetchall()
            assert defaults == [], (fast, defaults)
            rows = conn.execute(sql.SQL(select).format(sql.Identifier(feed.id))).fetchall()
            rejects = conn.execute(
                "select row_number, column_name, reason, value from quality.rejects where feed_id = %s"
                " order by 1, 2, 3",
                (feed.id,),
            ).fetchall()
            staged[fast] = (result.rows_read, result.rows_staged, result.rows_rejected, rows, rejects)
            fast_rows = result.rows_fast
    return staged, fast_rows, raw


COORDS = [  # (x, y) as a clerk may write them: clean, empty, half empty, signed, padded, exponent, outside, bad
    ("120.75", "30.75"),
    ("", ""),
    ("120.75", ""),
    ("", "30.75"),
    ("+120.75", "30.75"),
    (" 120.75", "30.75"),
    ("1.2075e2", "30.75"),
    ("100.0", "30.75"),
    ("abc", "30.75"),
    ("121.6", "31.2"),
    ("120.0", "30.2"),
    ("121.60001", "30.75"),
]


def test_coordinates_half_empty_or_odd_stage_the_same_both_ways(tmp_path, make_scratch_db, monkeypatch):
    """A CGCS2000 feed's points, every form above: each row staged (or rejected) as the Python way does, none
    lost between the two ways (a point with one side missing once put its row on neither side)."""
    lines = ["BH,DZ,X,Y"] + [f'K{i},嘉兴市南湖区中山路{i}号,"{x}","{y}"' for i, (x, y) in enumerate(COORDS)]
    staged, fast_rows, _ = _stage_both_ways(
        tmp_path,
        make_scratch_db,
        monkeypatch,
        "gaj_fast_coords_test",
        {"BH": "record_key", "DZ": "address", "X": "lon", "Y": "lat"},
        lines,
        "select record_key, lon, lat, address from staged.{} order by _row_id",
        coordinates={"x": "X", "y": "Y", "crs": "cgcs2000"},
    )
    assert staged[True] == staged[False]
    assert staged[True][0] == staged[True][1] == len(COORDS)
    assert fast_rows == 4  # clean, empty and the two corners of the box; the rest the Python way
    by_key = {r[0]: r for r in staged[True][3]}
    assert by_key["K4"] == ("K4", 120.75, 30.75, "嘉兴市南湖区中山路4号")  # a sign: a point, as in Python
    assert by_key["K1"][1:3] == (None, None) and by_key["K2"][1:3] == (None, None)  # empty; half empty


def test_keys_repeated_but_for_whitespace_are_one_key_both_ways(tmp_path, make_scratch_db, monkeypatch):
    """'K1', 'K1<tab>' and '<ideographic space>K1' are the key K1 (Python strips them so): the last delivered is
    staged, the others are duplicate_key rejects, with the fast path and without (PostgreSQL's plain btrim strips
    only spaces: it once staged all three)."""
    assert "".join(WHITESPACE) == staging.WHITESPACE
    keys = ["K1", "K1\t", "\u3000K1", "K2", "K1\u00a0"]
    staged, _, _ = _stage_both_ways(
        tmp_path,
        make_scratch_db,
        monkeypatch,
        "gaj_fast_keys_test",
        {"BH": "record_key", "DZ": "address"},
        ["BH,DZ"] + [f'"{k}",地址{i}' for i, k in enumerate(keys)],
        "select record_key, address from staged.{} order by record_key",
    )
    assert staged[True] == staged[False]
    assert staged[True][3] == [("K1", "地址4"), ("K2", "地址3")]  # the last delivered K1
    assert staged[True][:3] == (5, 2, 3)
    assert [r[2] for r in staged[True][4]] == ["duplicate_key"] * 3


def test_raw_rows_stored_out_of_delivery_order_stage_the_same(tmp_path, make_scratch_db, monkeypatch):
    """Staging reads a raw partition in the order the table holds it, without sorting (the rows are written in
    delivery order). Rows moved to the table's end (an update writes a row's new version there) are staged
    the same both ways: the last delivered K1 is kept, not the last one stored."""
    staged, fast_rows, raw = _stage_both_ways(
        tmp_path,
        make_scratch_db,
        monkeypatch,
        "gaj_fast_order_test",
        {"BH": "record_key", "DZ": "address"},
        ["BH,DZ", "K1,地址0", "K2,地址1", "K3,地址2", "K1,地址3", "K4,地址4"],
        "select record_key, address, _row_id from staged.{} order by _row_id",
        raw_select="select _row_id from raw.{}",  # as a sequential scan finds them
        raw_before="update raw.{} set _row_number = _row_number where _row_id in (1, 3)",
    )
    assert [r[0] for r in raw] == [2, 4, 5, 1, 3]  # the order staging reads them in: the first K1 last
    assert staged[True] == staged[False]
    assert fast_rows == 3  # both K1 go the Python way
    assert staged[True][3] == [("K2", "地址1", 2), ("K3", "地址2", 3), ("K1", "地址3", 4), ("K4", "地址4", 5)]
    assert [r[2] for r in staged[True][4]] == ["duplicate_key"]


def _spool(text: str, columns: list[str]) -> staging_fast.Spool:
    """A spool of the given CSV text, as COPY TO writes it (an unquoted empty field is NULL)."""
    file = io.BytesIO(text.encode())
    return staging_fast.Spool(file, columns)


def test_repeated_keys_are_found_as_python_strips_them_and_null_keys_are_none():
    """The last delivered row of each key found more than once (compared as str.strip leaves it), none for a
    NULL or empty key; a partition whose every key is NULL has none (it once failed on an empty dictionary)."""
    columns = ["_row_id", "BH", "_source_file", "_row_number"]
    rows = [
        "1,K1,f.csv,2",
        '2,"K1\t",f.csv,3',
        "3,,f.csv,4",
        '4,"",f.csv,5',
        "5,K2,f.csv,6",
        '6,"\u3000K1",g.csv,2',
    ]
    got = staging_fast.duplicates(_spool("\n".join(rows) + "\n", columns), "BH")
    assert got == {"K1": (6, "g.csv", 2)}
    assert staging_fast.duplicates(_spool("1,,f.csv,2\n2,,f.csv,3\n", columns), "BH") == {}
    assert staging_fast.duplicates(_spool("", columns), "BH") == {}


def test_raw_values_reach_staged_as_a_cursor_reads_them(tmp_path, make_scratch_db, monkeypatch):
    """Values COPY's CSV must quote or that Arrow's reader might take for something else (a byte-order mark
    opening the first row, quotes, commas, line breaks, COPY's end marker, an empty string): staged as the
    Python standardizer makes of the raw value read by a plain cursor, not through the spool."""
    odd = ["\ufeffK0", 'a "quoted" word', "a,b", "line\nbreak", "\\.", "\\N", "   ", "路(东)", "𠀀𠀁"]
    lines = ["BH,DZ"] + [
        f'"{v.replace(chr(34), chr(34) * 2)}","{v.replace(chr(34), chr(34) * 2)}"' for v in odd
    ]
    staged, fast_rows, raw = _stage_both_ways(
        tmp_path,
        make_scratch_db,
        monkeypatch,
        "gaj_fast_odd_test",
        {"BH": "record_key", "DZ": "address"},
        lines,
        "select record_key, address from staged.{} order by _row_id",
        raw_select="select bh, dz from raw.{} order by _row_id",
    )
    assert staged[True] == staged[False]
    assert fast_rows > 0
    std = canonical.standardizers(["address"], "%Y-%m-%d", DAY)["address"]
    want = [(k.strip(), std(a)[0]) for k, a in raw if k and k.strip()]
    assert raw[0][0] == "\ufeffK0"  # the raw table holds the mark
    assert staged[True][3] == want


def test_the_fast_path_on_published_examples():
    """The standards' worked examples and python-stdnum's published vectors: a value the fast path accepts is the
    vector's standard value with no reason; the clean, valid ones are all accepted (GB 11643's example, genuine
    IDs stdnum's birthplace rule rejects, credit codes published as valid)."""
    ids = [*STDNUM_RIC_VECTORS, ("11010519491231002X", ("11010519491231002X", None))]
    ids.append(("110111198012010078", ("110111198012010078", None)))  # a code introduced after the birth
    got = _fast_values("id_number", "%Y-%m-%d", [raw for raw, _ in ids])
    for (raw, (value, reason)), fast in zip(ids, got, strict=True):
        if fast is not None:
            assert (fast, reason) == (value, None), raw
        if raw == value and reason is None:
            assert fast == raw, raw
    codes = [*USCC_PUBLISHED, "91350100M000100Y43"]  # GB 32100's example
    assert _fast_values("credit_code", "%Y-%m-%d", codes) == codes
    assert _fast_values("credit_code", "%Y-%m-%d", ["91350100M000100Y4Z", "91350100M000100Y44"]) == [
        None,
        None,
    ]
