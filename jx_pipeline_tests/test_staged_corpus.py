"""Bad values at the staged layer: each case ends in a nulled value or a rejected row, with its reason, file,
row and column in ``quality.rejects`` — and rows read = rows staged + rows rejected."""

import csv
import io

import pytest
from stdnum.cn import ric, uscc

from jx_pipeline.catalog.schema import Feed
from jx_pipeline.lib import coords, ingest, staging
from jx_pipeline.lib.standardize import credit_code_check

DAY = "2026-11-01"
FEED = Feed.model_validate(
    {
        "id": "gaj_corpus_staged",
        "department": "gaj",
        "name": "测试",
        "name_en": "Staged corpus",
        "domain": "population",
        "archetype": "person_service",
        "source": {"kind": "file", "format": "csv", "encoding": "utf-8"},
        "records": 10,
        "key": ["XH"],
        "columns": {
            "XH": "record_key",
            "XM": "person_name",
            "SFZH": "id_number",
            "XB": "gender",
            "CSRQ": "birth_date",
            "DH": "phone",
            "TYDM": "credit_code",
            "RQ": "event_date",
            "JE": "amount",
            "JD": "lon",
            "WD": "lat",
            "BGLX": "change_type",
        },
        "coordinates": {"x": "JD", "y": "WD", "crs": "gcj02"},
        "change_column": "BGLX",
    }
)
COLS = list(FEED.columns)
GOOD_ID = "33042119900101001" + ric.calc_check_digit("330421199001010010")
CREDIT = "91330402MA2BXXXX0" + uscc.calc_check_digit("91330402MA2BXXXX0")
LETTER_CREDIT = "N2330402MA2BXXXX1" + credit_code_check("N2330402MA2BXXXX1")  # a rural collective's code
GCJ = [round(float(v), 6) for v in coords.cgcs2000_to("gcj02", 120.75, 30.75)]
GOOD = {
    "XM": "张三",
    "SFZH": GOOD_ID,
    "XB": "男",
    "CSRQ": "1990-01-01",
    "DH": "13912345678",
    "TYDM": CREDIT,
    "RQ": "2026-10-01",
    "JE": "12.50",
    "JD": str(GCJ[0]),
    "WD": str(GCJ[1]),
    "BGLX": "I",
}


def _csv(rows: list[dict]) -> bytes:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(COLS)
    w.writerows([[r.get(c, "") for c in COLS] for r in rows])
    return buf.getvalue().encode()


def _stage(tmp_path, wh, rows: list[dict]):
    folder = tmp_path / "landing" / "gaj" / FEED.id / DAY
    folder.mkdir(parents=True)
    (folder / "f.csv").write_bytes(_csv(rows))
    raw = ingest.load_partition(wh, FEED, DAY, "corpus", world=tmp_path)
    res = staging.stage_partition(wh, FEED, DAY, "corpus")
    staged = wh.execute(f'select count(*) from staged."{FEED.id}" where _partition = %s', (DAY,)).fetchone()[
        0
    ]
    audit = wh.execute(
        "select rows_read, rows_loaded, rows_rejected from quality.load_audit"
        " where feed_id = %s and partition_key = %s and stage = 'staged'",
        (FEED.id, DAY),
    ).fetchone()
    assert res.rows_read == raw.rows_loaded == len(rows)
    assert audit == (res.rows_read, staged, res.rows_rejected) and audit[0] == audit[1] + audit[2]
    rejects = wh.execute(
        "select row_number, column_name, reason, scope, value, source_file from quality.rejects"
        " where feed_id = %s and partition_key = %s and stage = 'staged' order by row_number, reason",
        (FEED.id, DAY),
    ).fetchall()
    assert all(r[5].endswith("f.csv") for r in rejects)
    return res, [r[:5] for r in rejects]


def _value(wh, key: str, column: str):
    return wh.execute(f'select {column} from staged."{FEED.id}" where record_key = %s', (key,)).fetchone()[0]


def _mistyped(v: str) -> str:
    return v[:10] + str((int(v[10]) + 1) % 10) + v[11:]


# case -> (the bad row's fields, expected reject (column, reason, scope), staged column that is null or None)
VALUE_CASES = {
    "id_bad_checksum": ({"SFZH": _mistyped(GOOD_ID)}, ("SFZH", "id_checksum", "value"), "id_number"),
    "id_dropped_digit": ({"SFZH": GOOD_ID[:-2] + GOOD_ID[-1]}, ("SFZH", "id_length", "value"), "id_number"),
    "id_letters": ({"SFZH": "33042119900101ABCD"}, ("SFZH", "id_format", "value"), "id_number"),
    "credit_code_bad_checksum": (
        {"TYDM": CREDIT[:-1] + ("Y" if CREDIT[-1] != "Y" else "X")},
        ("TYDM", "credit_code_checksum", "value"),
        "credit_code",
    ),
    "credit_code_short": ({"TYDM": "91330402MA2B"}, ("TYDM", "credit_code_length", "value"), "credit_code"),
    "impossible_date": ({"RQ": "2023-02-30"}, ("RQ", "date_impossible", "value"), "event_date"),
    "date_after_landing_day": ({"RQ": "2027-01-01"}, ("RQ", "date_out_of_range", "value"), "event_date"),
    "date_unparseable": ({"CSRQ": "八十年代"}, ("CSRQ", "date_unparseable", "value"), "birth_date"),
    "coords_outside_jiaxing": (
        {"JD": "116.397", "WD": "39.909"},
        ("JD,WD", "coord_outside_jiaxing", "value"),
        "lon",
    ),
    "coords_not_numbers": ({"JD": "东经120度", "WD": "30.7"}, ("JD,WD", "coord_invalid", "value"), "lat"),
    "phone_lost_digit": ({"DH": "1391234567"}, ("DH", "phone_invalid", "value"), "phone"),
    "amount_text": ({"JE": "约十二元"}, ("JE", "amount_invalid", "value"), "amount"),
    "amount_negative": ({"JE": "-3"}, ("JE", "amount_negative", "value"), "amount"),
    "gender_not_a_code": ({"XB": "3"}, ("XB", "gender_invalid", "value"), "gender"),
    "change_type_unknown": ({"BGLX": "X"}, ("BGLX", "change_type_invalid", "value"), "change_type"),
}


@pytest.mark.parametrize("case", sorted(VALUE_CASES))
def test_a_bad_value_is_nulled_with_its_reason(case, tmp_path, wh):
    fields, expected, column = VALUE_CASES[case]
    res, rejects = _stage(tmp_path, wh, [{"XH": "K1", **GOOD}, {"XH": "K2", **GOOD, **fields}])
    assert res.rows_staged == 2 and res.rows_rejected == 0
    assert [r[:4] for r in rejects] == [(3, *expected)]  # line 3 of the file: the second data row
    assert _value(wh, "K2", column) is None and _value(wh, "K1", column) is not None
    wh.rollback()


def test_personal_values_in_rejects_are_masked(tmp_path, wh):
    bad = _mistyped(GOOD_ID)
    _, rejects = _stage(tmp_path, wh, [{"XH": "K1", **GOOD, "SFZH": bad, "DH": "1391234567"}])
    values = {r[1]: r[4] for r in rejects}
    assert values["SFZH"] == bad[:3] + "*" * 13 + bad[-2:] and values["DH"] == "139*****67"
    wh.rollback()


def test_empty_key_and_duplicate_keys_reject_rows(tmp_path, wh):
    rows = [{"XH": "K1", **GOOD}, {"XH": " ", **GOOD}, {"XH": "K1", **GOOD, "DH": "13900000000"}]
    res, rejects = _stage(tmp_path, wh, rows)
    assert (res.rows_read, res.rows_staged, res.rows_rejected) == (3, 1, 2)
    assert [r[:4] for r in rejects] == [(2, "XH", "duplicate_key", "row"), (3, "XH", "key_empty", "row")]
    assert _value(wh, "K1", "phone") == "13900000000"  # the later delivery is kept
    wh.rollback()


def test_good_values_are_typed_and_converted(tmp_path, wh):
    legacy = GOOD_ID[:6] + GOOD_ID[8:17]  # the same person's first-generation 15-digit ID
    rows = [
        {"XH": "K1", **GOOD, "SFZH": legacy, "RQ": "2026年10月1日", "JE": "1,234.5元", "XB": "2"},
        {"XH": "K2", **GOOD, "TYDM": LETTER_CREDIT},
    ]
    _res, rejects = _stage(tmp_path, wh, rows)
    assert rejects == []
    row = wh.execute(
        f'select id_number, event_date::text, amount, gender, lon, lat, st_srid(geom) from staged."{FEED.id}"'
        " where record_key = 'K1'"
    ).fetchone()
    assert row[:4] == (GOOD_ID, "2026-10-01", 1234.5, "F")
    assert abs(row[4] - 120.75) < 1e-6 and abs(row[5] - 30.75) < 1e-6 and row[6] == 4490  # GCJ-02 undone
    assert not uscc.is_valid(LETTER_CREDIT) and _value(wh, "K2", "credit_code") == LETTER_CREDIT
    wh.rollback()


def test_restaging_replaces_the_partition(tmp_path, wh):
    _stage(tmp_path / "a", wh, [{"XH": "K1", **GOOD}, {"XH": "K2", **GOOD, "SFZH": "1"}])
    wh.commit()
    _, rejects = _stage(tmp_path / "b", wh, [{"XH": "K1", **GOOD}, {"XH": "K2", **GOOD, "SFZH": "1"}])
    assert len(rejects) == 1
    assert wh.execute(f'select count(*) from staged."{FEED.id}"').fetchone()[0] == 2
    wh.rollback()


@pytest.fixture(scope="module")
def city_boundary(warehouse_url):
    """The admin chain, so that the city's boundary is in core.admin_unit."""
    import dagster as dg

    from jx_pipeline.defs.admin import assets as admin
    from jx_pipeline.lib.warehouse import WarehouseResource

    assets = [admin.raw_admin_division, admin.raw_admin_boundary, admin.core_admin_unit]
    assert dg.materialize(assets, resources={"warehouse": WarehouseResource(url=warehouse_url)}).success


def test_a_point_in_the_box_but_outside_the_city_is_nulled(city_boundary, tmp_path, wh):
    west = [str(round(float(v), 6)) for v in coords.cgcs2000_to("gcj02", 120.1, 30.6)]  # in Hangzhou
    _, rejects = _stage(
        tmp_path, wh, [{"XH": "K1", **GOOD}, {"XH": "K2", **GOOD, "JD": west[0], "WD": west[1]}]
    )
    assert [r[:4] for r in rejects] == [(3, "JD,WD", "coord_outside_jiaxing", "value")]
    assert _value(wh, "K2", "geom") is None and _value(wh, "K1", "geom") is not None
    wh.rollback()


def test_the_city_test_keeps_its_margin(city_boundary, tmp_path, wh):
    """A point 100 m west of the city's westmost vertex is within the 200 m margin and kept; one 400 m west is
    not (the nearest point of the city is that vertex, so the distance is exact)."""
    x, y = wh.execute(
        "select st_x(p), st_y(p) from (select (st_dumppoints(st_transform(geom, 4549))).geom p"
        " from core.admin_unit where level = 'city') v order by st_x(p) limit 1"
    ).fetchone()
    points = {}
    for key, metres in (("NEAR", 100), ("FAR", 400)):
        lon, lat = wh.execute(
            "select st_x(g), st_y(g) from st_transform(st_setsrid(st_makepoint(%s, %s), 4549), 4490) g",
            (x - metres, y),
        ).fetchone()
        points[key] = [str(round(float(v), 7)) for v in coords.cgcs2000_to("gcj02", lon, lat)]
    _, rejects = _stage(tmp_path, wh, [{"XH": k, **GOOD, "JD": p[0], "WD": p[1]} for k, p in points.items()])
    assert [r[:4] for r in rejects] == [(3, "JD,WD", "coord_outside_jiaxing", "value")]
    assert _value(wh, "NEAR", "geom") is not None and _value(wh, "FAR", "geom") is None
    wh.rollback()


def test_the_city_test_judges_a_coarse_boundary_as_projected(city_boundary, tmp_path, wh):
    """The rule measures in EPSG:4549. With a city of one long straight edge, a point just inside that edge as
    drawn in longitude/latitude lies over 200 m outside the same edge drawn straight in EPSG:4549: it is nulled,
    not waved through as inside the city."""
    wh.execute(
        "update core.admin_unit set geom = st_multi(st_geomfromtext("
        "'POLYGON((120.2 30.3, 121.5 31.1, 120.2 31.1, 120.2 30.3))', 4490)) where level = 'city'"
    )
    lon, lat, metres = wh.execute(
        "select st_x(p), st_y(p), st_distance(st_transform(p, 4549), st_transform(c.geom, 4549))"
        " from core.admin_unit c, generate_series(1, 40) k,"
        " st_setsrid(st_makepoint(120.85 - k * 0.0001, 30.7 + k * 0.0001625), 4490) p"
        " where c.level = 'city' and st_intersects(p, c.geom) order by 3 desc limit 1"
    ).fetchone()
    assert metres > staging.CITY_MARGIN_M + 20  # the edges part by more than the margin here
    point = [str(round(float(v), 7)) for v in coords.cgcs2000_to("gcj02", lon, lat)]
    _, rejects = _stage(tmp_path, wh, [{"XH": "EDGE", **GOOD, "JD": point[0], "WD": point[1]}])
    assert [r[:4] for r in rejects] == [(2, "JD,WD", "coord_outside_jiaxing", "value")]
    assert _value(wh, "EDGE", "geom") is None
    wh.rollback()
