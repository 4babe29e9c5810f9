"""Staging's fast path (lib/staging_fast.py) against the Python standardizers it stands in for.

Each Arrow rule may accept a value only when the Python standardizer gives that same value with no reason (the
text it copies in reads in PostgreSQL as that value); and it must accept the clean forms it was written for (else
the path would be slow, not wrong: checked so that the test cannot pass by the rule accepting nothing). Values are generated apart from the world generator: IDs and
credit codes with python-stdnum's check characters, every area code stdnum knows (retired ones at their last
year), every whitespace character Python knows, dates around month ends, leap days and the range bounds. Then
whole partitions are staged with the fast path and without it, and must be equal row for row and reject for
reject.
"""

import random
from datetime import date, datetime, timedelta
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
        ["202413", "1948-12", "2024-3", "2024/03", "20240"],
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
        ],
    ),
    "person_name": _texts(),
    "address": _texts(),
}


def _fast_values(field: str, declared: str, values: list[str]) -> list:
    """What the fast path makes of each value (None: not fast), as the split calls it."""
    got = staging_fast.value(
        field, pa.array(values, pa.string()), declared, LATEST, canonical.EARLIEST.get(field)
    )
    return got.to_pylist()


def _same(fast: str, py_value) -> bool:
    """The fast path's COPY text reads in PostgreSQL as the Python standardizer's value."""
    if isinstance(py_value, Decimal):
        return str(Decimal(fast)) == str(py_value)
    if isinstance(py_value, datetime):
        return datetime.fromisoformat(fast) == py_value
    if isinstance(py_value, date):
        return fast == py_value.isoformat()
    if isinstance(py_value, bool):
        return fast == ("t" if py_value else "f")
    return isinstance(py_value, str) and fast == py_value


@pytest.mark.parametrize("field", sorted(CASES))
def test_the_fast_path_accepts_a_value_only_as_the_python_standardizer_reads_it(field):
    clean, other = CASES[field]
    declared_formats = sorted(staging_fast.DATE_FORMATS) if field in canonical.EARLIEST else ["%Y-%m-%d"]
    for declared in declared_formats:
        std = canonical.standardizers([field], declared, DAY)[field]
        values = clean + other
        got = _fast_values(field, declared, values)
        accepted = 0
        for value, fast in zip(values, got, strict=True):
            py_value, reason = std(value)
            if value == "":  # the row condition takes an empty value as fast and NULL
                assert (py_value, reason) == (None, None)
                continue
            if fast is not None:
                accepted += 1
                assert reason is None and _same(fast, py_value), (
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
    key_ends = [
        a and b
        for a, b in zip(
            *(
                rejected(staging_fast.key, [f(c) for c in chars])
                for f in (lambda c: f"a{c}", lambda c: f"{c}a")
            ),
            strict=True,
        )
    ]
    key_inside = rejected(staging_fast.key, [f"a{c}b" for c in chars])
    assert len(chars) == 0x110000 - 1 - 2048
    for c, *got in zip(chars, inside, start, end, key_ends, key_inside, strict=True):
        ws = c.isspace()
        assert tuple(got) == (ws and c != " ", ws, ws, ws, False), hex(ord(c))


def test_every_feed_stages_the_same_with_and_without_the_fast_path(world, make_scratch_db, monkeypatch):
    """Every file feed's first day of the session's world (its noise: bad IDs, dates in other formats, stray
    whitespace, repeated keys, coordinates in three systems), staged both ways: the same rows, the same rejects."""
    monkeypatch.setattr(staging, "FAST_MIN_ROWS", 0)  # the test world's partitions are small
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


def _stage_both_ways(tmp_path, make_scratch_db, monkeypatch, feed_id, columns, lines, select, **extra):
    """A feed of ``columns`` (a CSV day of ``lines``) landed, loaded and staged without the fast path, then with
    it (at any partition size). Per way: (rows read, staged, rejected, the rows ``select`` reads, the rejects),
    and the rows that went fast."""
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
    monkeypatch.setattr(staging, "FAST_MIN_ROWS", 0)
    staged, fast_rows = {}, 0
    with connect(make_scratch_db()) as conn:
        migrate(conn)
        ingest.load_partition(conn, feed, day, "b1", world=tmp_path / "world")
        for fast in (False, True):
            monkeypatch.setattr(staging, "FAST", fast)
            result = staging.stage_partition(conn, feed, day, "b1")
            rows = conn.execute(sql.SQL(select).format(sql.Identifier(feed.id))).fetchall()
            rejects = conn.execute(
                "select row_number, column_name, reason, value from quality.rejects where feed_id = %s"
                " order by 1, 2, 3",
                (feed.id,),
            ).fetchall()
            staged[fast] = (result.rows_read, result.rows_staged, result.rows_rejected, rows, rejects)
            fast_rows = result.rows_fast
    return staged, fast_rows


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
    staged, fast_rows = _stage_both_ways(
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
    staged, the others are duplicate_key rejects, with the fast path and without; PostgreSQL's plain btrim strips
    only spaces, and once staged all three."""
    assert "".join(WHITESPACE) == staging.WHITESPACE
    keys = ["K1", "K1\t", "\u3000K1", "K2", "K1\u00a0"]
    staged, _ = _stage_both_ways(
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
