"""Real places the feeds' addresses name besides the Jiaxing unit itself: a migrant's home county glued in front,
a development zone or well-known place written for its town, and addresses that really lie outside Jiaxing.

Real writers do all of these; a world without them teaches the pipeline our own habits only. Names are real: NBS
2022 divisions (jx_pipeline/data/china_divisions) and the Jiaxing zones of data/address/implied_places.csv (a
source each). Every choice is made from a record's own random number, so output stays deterministic.
"""

from __future__ import annotations

import csv
from functools import cache

from jx_pipeline.lib import address_implied
from jx_pipeline.world import vocab
from jx_pipeline.world.ids import CHINA_DIVISIONS

SUFFIXES = ("街道", "镇", "乡", "县", "市", "区")
# Real places outside Jiaxing named like a Jiaxing place: Shenzhen's 平湖街道 (not 平湖市); the rest from
# zhejiang_streets.csv (towns of other Zhejiang cities with a Jiaxing town's name, e.g. 江山市石门镇).
SAME_NAMED_FAR = (("440307", "平湖街道"),)
# where seats and registered residences outside Jiaxing lie: Shanghai, Jiangsu, the rest of Zhejiang, and the
# migrants' provinces
# road names common all over China (none a Jiaxing place name), for addresses outside Jiaxing
GENERIC_ROADS = (
    "人民",
    "解放",
    "建设",
    "中山",
    "新华",
    "文化",
    "胜利",
    "和平",
    "光明",
    "朝阳",
    "幸福",
    "工业",
    "东风",
    "青年",
)
OUTSIDE_PROVINCES = ("31", "32", "33", "34", "41", "51", "36", "42", "43", "52")


def short(name: str) -> str:
    """A name without its level suffix, as writers drop it: 海宁市 -> 海宁, 濮院镇 -> 濮院, 乌镇镇 -> 乌镇."""
    for s in SUFFIXES:
        if name.endswith(s) and len(name) - len(s) >= 2:
            return name[: -len(s)]
    return name


def _rows(name: str) -> list[dict[str, str]]:
    with (CHINA_DIVISIONS / name).open(encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


@cache
def _names() -> tuple[dict[str, str], dict[str, str], dict[str, dict[str, str]]]:
    """Province names by code, city names by code, county rows by code."""
    provinces = {r["code"]: r["name"] for r in _rows("provinces.csv")}
    cities = {r["code"]: r["name"] for r in _rows("cities.csv")}
    areas = {r["code"]: r for r in _rows("areas.csv")}
    return provinces, cities, areas


def county_path(code: str, pick: int) -> str:
    """Province, city and county of a county code as a writer puts them: 安徽省合肥市庐江县, 安徽省庐江县, 安徽庐江县."""
    provinces, cities, areas = _names()
    prov = provinces[code[:2]]
    city = cities.get(code[:4], "")
    county = areas[code]["name"]
    if city in ("市辖区", "县", "省直辖县级行政区划", "自治区直辖县级行政区划") or city == prov:
        city = ""
    form = pick % 3 if code[4] != "0" else 0  # a district is never written without its city
    if form == 0:
        return prov + city + county
    if form == 1:
        return prov + county
    return prov.removesuffix("省") + county


@cache
def zones_by_town() -> dict[str, tuple[str, ...]]:
    """Development zones and well-known places standing for a Jiaxing town: the ``zone`` rows of the address
    reference data (data/address/implied_places.csv, a source per row)."""
    out: dict[str, list[str]] = {}
    for entry in address_implied.load():
        if entry.kind == "zone" and entry.code.startswith("3304"):
            out.setdefault(entry.code, []).append(entry.name)
    return {k: tuple(v) for k, v in out.items()}


@cache
def _same_named() -> tuple[tuple[str, str], ...]:
    """(county code, town name) of real towns outside Jiaxing whose name a Jiaxing town also has."""
    streets = _rows("zhejiang_streets.csv")
    jx = {r["name"] for r in streets if r["code"].startswith("3304")}
    near = tuple(
        (r["areaCode"], r["name"]) for r in streets if r["name"] in jx and not r["code"].startswith("3304")
    )
    return SAME_NAMED_FAR + near


@cache
def _outside_counties() -> tuple[str, ...]:
    """Districts, counties and county-level cities (not NBS zone units) of OUTSIDE_PROVINCES, Jiaxing left out."""
    _, _, areas = _names()
    return tuple(
        c
        for c, r in sorted(areas.items())
        if r["provinceCode"] in OUTSIDE_PROVINCES and c[4] in "0128" and c[:4] != "3304"
    )


def _street(pick: int) -> str:
    road = (
        GENERIC_ROADS[pick % len(GENERIC_ROADS)] + vocab.ROAD_SUFFIXES[(pick >> 4) % len(vocab.ROAD_SUFFIXES)]
    )
    return f"{road}{(pick >> 8) % 900 + 1}号"


def outside_address(pick: int, home: str | None) -> str:
    """An address outside Jiaxing: a migrant's registered residence at home, a place named like a Jiaxing one
    (深圳市龙岗区平湖街道…), or a seat in another city."""
    form = pick % 4
    if home is not None and form < 2:
        return county_path(home, pick >> 3) + _street(pick >> 5)
    if form == 2:
        same = _same_named()
        county, town = same[(pick >> 3) % len(same)]
        path = county_path(county, 0)
        if (pick >> 2) % 2:  # the province left out: 深圳市龙岗区平湖街道…
            provinces, _, _ = _names()
            path = path.removeprefix(provinces[county[:2]])
        return path + town + _street(pick >> 5)
    counties = _outside_counties()
    return county_path(counties[(pick >> 3) % len(counties)], pick >> 2) + _street(pick >> 5)
