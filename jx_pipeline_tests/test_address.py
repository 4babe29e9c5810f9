"""The Jiaxing address parser: hand-written cases of the habits it must survive, the CLI contract, the gazetteer
assets, and accuracy on the world's noisy addresses measured against the ground truth (evaluation only)."""

import json

import dagster as dg
import pandas as pd
import pytest

from jx_pipeline.catalog import load_catalog
from jx_pipeline.defs.admin import assets as admin
from jx_pipeline.defs.entities import assets as entities
from jx_pipeline.lib import address
from jx_pipeline.lib.warehouse import WarehouseResource
from jx_pipeline_tests.conftest import run_cli


@pytest.fixture(scope="module")
def points(world) -> list[tuple[str, str, str]]:
    g = pd.read_parquet(
        world / "entities" / "geo_entities.parquet",
        columns=["entity_id", "entity_type", "village_code", "address"],
    )
    g = g[g.entity_type == "address_point"]
    return list(zip(g.entity_id, g.village_code, g.address, strict=True))


@pytest.fixture(scope="module")
def parser(points) -> address.AddressParser:
    return address.AddressParser(points=points)


CASES = {  # text -> expected (county_code, town_code, village_code) and components
    "浙江省嘉兴市南湖区建设街道百福弄社区": ("330402", "330402007", "330402007024", {}),
    "嘉兴秀城区建设街道": ("330402", "330402007", None, {"county": "秀城区"}),  # the old name (1993-2004)
    "嘉兴市郊区新塍镇": ("330411", "330411104", None, {"county": "郊区"}),  # 秀洲区 before 1999
    "桐乡县梧桐街道": ("330483", "330483001", None, {}),  # a county written with the wrong suffix
    "嘉善魏塘街道": ("330421", "330421001", None, {}),  # no suffix at all
    "海宁市海洲镇": ("330481", "330481002", None, {}),  # 镇 for 街道
}


@pytest.mark.parametrize("text", sorted(CASES))
def test_divisions_are_found_through_real_world_habits(text):
    county, town, village, parts = CASES[text]
    p = address.AddressParser().parse(text)
    assert (p.county_code, p.town_code, p.village_code) == (county, town, village)
    for k, v in parts.items():
        assert getattr(p, k) == v


def test_numbers_units_and_remarks_are_normalized():
    p = address.AddressParser().parse("嘉兴市南湖区建设街道中山东路１２号某某花园三栋十二单元1201户（东门）")
    assert (p.road, p.number, p.complex, p.building, p.unit, p.room) == (
        "中山东路",
        "12",
        "某某花园",
        "3",
        "12",
        "1201",
    )
    assert p.remark == "(东门)"
    rural = address.AddressParser().parse("海盐县沈荡镇庄星村五组12号附近")
    assert (rural.group, rural.number, rural.remark) == ("5", "12", "附近")


def test_door_plates_resolve_urban_addresses_to_their_village(parser, points):
    entity_id, village, text = next(p for p in points if "路" in p[2] and "组" not in p[2])
    p = parser.parse(text.replace("浙江省", "").replace("嘉兴市", "嘉兴"))
    assert (p.entity_id, p.village_code) == (entity_id, village)


def test_a_migrants_home_before_a_town_and_one_of_its_roads_is_local(parser, points):
    # 湖南省安乡县 has no towns known to the index: a Jiaxing town and a road of the gazetteer in it make the
    # address Jiaxing's; a road the gazetteer does not have in that town leaves it outside
    roads = 0
    for entity_id, village, text in points[::31]:
        p = parser.parse(text)
        if not (p.road and p.number and p.town_code):
            continue
        town = parser.town_name[p.town_code]
        got = parser.parse(f"湖南省安乡县{town}{p.road}{p.number}号{p.complex or ''}")
        assert not got.outside and got.town_code == p.town_code
        assert (got.entity_id, got.village_code) == (entity_id, village)
        assert parser.parse(f"湖南省安乡县{town}不存在路{p.number}号").outside
        roads += 1
    assert roads > 10


def test_every_door_plate_parses_back_to_itself(parser, points):
    wrong = [
        (e, a) for e, v, a in points if (lambda p: (p.entity_id, p.village_code) != (e, v))(parser.parse(a))
    ]
    assert wrong == []


def test_roads_named_after_a_county_or_town_parse_back_to_their_plate():
    """Roads are often named after a place (南湖路 in 南湖区, 凤桥街 in 凤桥镇, 王江泾路 elsewhere): written after the
    town, the stem begins the road's name and must not be read as the county or town written again."""
    ix = address.AddressParser().ix
    counties = {c: n for c, n in ix.county_name.items() if c[:4] == "3304"}
    towns = {c: n for c, n in ix.town_name.items() if c[:4] == "3304" and n.endswith(("镇", "街道"))}
    stems = {
        ix_stem
        for n in [*counties.values(), *towns.values()]
        if len(ix_stem := n.removesuffix("街道").rstrip("区县市镇")) >= 2
    }
    points = []
    for town, town_name in sorted(towns.items()):
        village = min(c for c in ix.village_name if c[:9] == town)
        for i, stem in enumerate(sorted(stems)):
            road = stem + ("路", "街", "大道")[i % 3]
            points.append(
                (f"{town}-{stem}", village, f"浙江省嘉兴市{counties[town[:6]]}{town_name}{road}{i + 1}号")
            )
    parser = address.AddressParser(points=points)
    wrong = [(e, a) for e, _, a in points if parser.parse(a).entity_id != e]
    assert len(points) > 4000 and wrong == []


def _feed_addresses(world, day="2026-11-01") -> pd.DataFrame:
    rows = []
    for f in load_catalog().feeds:
        if f.source.kind != "file" or f.source.format != "csv" or "address" not in f.columns.values():
            continue
        for path in (world / "landing" / f.department / f.id / day).iterdir():
            df = pd.read_csv(path, encoding=f.source.encoding, dtype=str, keep_default_na=False)
            rows += [
                (f.id, k, a)
                for k, a in zip(df[f.column_for("record_key")], df[f.column_for("address")], strict=True)
            ]
    return pd.DataFrame(rows, columns=["feed_id", "record_key", "address"])


def test_accuracy_on_the_worlds_noisy_addresses(world, parser):
    """County and town far above the open parsers (cpca ~94 % county; jionlp ~96 % county, ~80 % town)."""
    truth = pd.read_parquet(world / "truth" / "records.parquet")
    d = _feed_addresses(world).merge(truth, on=["feed_id", "record_key"])
    d = d[d.entity_id.fillna("").str.startswith("A")]  # records whose truth is a door plate
    assert len(d) > 1000
    parsed = [parser.parse(a) for a in d.address]
    county = sum(p.county_code == v[:6] for p, v in zip(parsed, d.village_code, strict=True)) / len(d)
    town = sum(p.town_code == v[:9] for p, v in zip(parsed, d.village_code, strict=True)) / len(d)
    village = sum(p.village_code == v for p, v in zip(parsed, d.village_code, strict=True)) / len(d)
    linked = [(p.entity_id, e) for p, e in zip(parsed, d.entity_id, strict=True) if p.entity_id]
    precision = sum(a == b for a, b in linked) / len(linked)
    assert county >= 0.99 and town >= 0.99 and village >= 0.98, (county, town, village)
    assert precision >= 0.995 and len(linked) / len(d) >= 0.97, (precision, len(linked) / len(d))


def test_cli_writes_one_json_object_per_line_in_order(world):
    lines = ["嘉兴市秀城区建设街道", "", "not an address", "嘉善县魏塘街道"]
    gazetteer = str(world / "entities" / "geo_entities.parquet")
    done = run_cli("address", "parse", "--gazetteer", gazetteer, input="\n".join(lines) + "\n", timeout=120)
    assert done.returncode == 0, done.stderr
    out = [json.loads(x) for x in done.stdout.splitlines()]
    assert len(out) == 4
    assert [o["county_code"] for o in out] == ["330402", None, None, "330421"]
    assert out[0]["town_code"] == "330402007" and out[0]["village_code"] is None
    assert all(
        {"county_code", "town_code", "village_code", "road", "number", "room"} <= o.keys() for o in out
    )


def test_entity_assets_load_the_gazetteer(warehouse_url, wh):
    res = dg.materialize(
        [
            admin.raw_admin_division,
            admin.raw_admin_boundary,
            admin.core_admin_unit,
            entities.core_geo_entity,
            entities.core_address_point,
        ],
        resources={"warehouse": WarehouseResource(url=warehouse_url)},
    )
    assert res.success
    checks = {e.check_name: e.passed for e in res.get_asset_check_evaluations()}
    assert checks["parses_to_itself"]
    n, typed = wh.execute(
        "select count(*), count(*) filter (where st_srid(geom) = 4490) from core.geo_entity"
    ).fetchone()
    assert n == typed > 0
    assert (
        wh.execute("select indexdef from pg_indexes where indexname = 'geo_entity_geom'")
        .fetchone()[0]
        .find("gist")
        > 0
    )
    ap = wh.execute("select count(*), count(distinct std_address) from core.address_point").fetchone()
    assert ap[0] == ap[1] > 0  # every door plate has its own standard address


def test_parser_from_disk_cache_parses_as_the_built_one(world, points, parser, tmp_path, monkeypatch):
    """The gazetteer parser stored under .jx/cache and loaded back reads every address as the one built in
    memory (the door plates themselves, and the hand-written cases)."""
    from jx_pipeline.lib import address_cache, settings

    monkeypatch.setattr(settings, "STATE_DIR", tmp_path)
    gazetteer = world / "entities" / "geo_entities.parquet"
    built = address_cache.gazetteer_parser(gazetteer, lambda: points)
    assert list((tmp_path / "cache").glob("address_parser-*.pickle"))
    loaded = address_cache.gazetteer_parser(gazetteer, lambda: pytest.fail("built again, not loaded"))
    texts = [a for _, _, a in points[:500]] + list(CASES)
    for text in texts:
        assert loaded.parse(text).as_dict() == parser.parse(text).as_dict() == built.parse(text).as_dict()
