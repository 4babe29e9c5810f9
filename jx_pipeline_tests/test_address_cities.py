"""`--city` for every Zhejiang city: the parser configured for a city resolves that city's own county / town /
village names to their codes, and marks an address of another Zhejiang city as outside with that city's codes.
Addresses are built from the vendored NBS 2022 rows, a village per city chosen by rank, not picked by hand."""

import csv
import re

import pytest

from jx_pipeline.lib import settings
from jx_pipeline.lib.address import AddressParser, village_short_name

DIVISIONS = settings.DATA_DIR / "china_divisions"


def _rows(name: str) -> list[dict]:
    with (DIVISIONS / name).open(encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


CITIES = {r["code"]: r["name"] for r in _rows("cities.csv") if r["provinceCode"] == "33"}
COUNTIES = {r["code"]: r["name"] for r in _rows("areas.csv")}
TOWNS = {r["code"]: r["name"] for r in _rows("zhejiang_streets.csv")}
VILLAGES = sorted(_rows("zhejiang_villages.csv"), key=lambda r: r["code"])


def _sample(city: str, k: int) -> list[dict]:
    """Every k-th village of the city whose town is a 镇 or 街道 (zones have no stable written form)."""
    mine = [
        v for v in VILLAGES if v["cityCode"] == city and TOWNS[v["streetCode"]].endswith(("镇", "街道", "乡"))
    ]
    return mine[:: max(1, len(mine) // k)][:k]


def _address(v: dict, number: int) -> str:
    return (
        f"浙江省{CITIES[v['cityCode']]}{COUNTIES[v['areaCode']]}{TOWNS[v['streetCode']]}"
        f"{village_short_name(v['name'])}{number}号"
    )


def test_every_zhejiang_city_is_a_city_of_the_data():
    assert len(CITIES) == 11 and "3304" in CITIES


@pytest.mark.parametrize("city", sorted(CITIES))
def test_a_city_resolves_its_own_villages(city):
    parser = AddressParser(city=city)
    sample = _sample(city, 25)
    assert len(sample) >= 20
    right = 0
    for i, v in enumerate(sample):
        p = parser.parse(_address(v, i + 1))
        assert not p.outside, (city, _address(v, i + 1))
        assert p.county_code == v["areaCode"] and p.city_code == city
        right += p.town_code == v["streetCode"] and p.village_code == v["code"]
    assert right >= len(sample) - 1, (city, right, len(sample))


@pytest.mark.parametrize("city", sorted(CITIES))
def test_another_zhejiang_city_is_outside_with_its_codes(city):
    other = next(c for c in sorted(CITIES) if c != city)
    parser = AddressParser(city=city)
    for i, v in enumerate(_sample(other, 5)):
        p = parser.parse(_address(v, i + 1))
        assert p.outside and p.city_code == other and p.county_code == v["areaCode"], _address(v, i + 1)


def _misspelt(city_name: str, how: str) -> str:
    """The city's name as a hurried writer types it: one character replaced, one added, or two replaced."""
    if how == "replaced":
        return "卅" + city_name[1:]
    if how == "added":
        return "大" + city_name
    return "卅卅" + city_name[2:]


@pytest.mark.parametrize("city", sorted(CITIES))
@pytest.mark.parametrize("how", ["replaced", "added"])
def test_a_city_name_one_edit_away_is_read_when_its_county_follows(city, how):
    parser = AddressParser(city=city)
    for i, v in enumerate(_sample(city, 5)):
        text = _address(v, i + 1).replace(CITIES[city], _misspelt(CITIES[city], how), 1)
        p = parser.parse(text)
        assert p.city_code == city and p.county_code == v["areaCode"] and not p.outside, text
        assert p.confidence["city"] < 1.0, text  # not the name as written


@pytest.mark.parametrize("city", sorted(CITIES))
def test_a_misspelt_city_name_is_not_read_without_its_county_or_two_edits_away(city):
    parser = AddressParser(city=city)
    v = _sample(city, 1)[0]
    no_county = f"浙江省{_misspelt(CITIES[city], 'replaced')}中山路1号"
    assert parser.parse(no_county).city_code is None, no_county
    two_edits = _address(v, 1).replace(CITIES[city], _misspelt(CITIES[city], "twice"), 1)
    assert parser.parse(two_edits).city_code is None, two_edits


def _stems_before_a_road() -> list[tuple[str, str]]:
    """(address, county code) for every Zhejiang town whose stem, with 大道 after it, reads like a road or quarter
    after a county stem (塘…, 桥…): the county's stem, the town's stem, a road named after the town."""
    from jx_pipeline.lib import address, address_index

    out = []
    for code, name in sorted(TOWNS.items()):
        county = address_index.stem(COUNTIES[code[:6]], address_index.COUNTY_SUFFIX)
        town = re.sub(r"(?:街道|镇|乡)$", "", name)
        if (
            name != town
            and len(town) >= 2
            and len(county) >= 2
            and address._NOT_AFTER_STEM.match(town + "大道")
        ):
            out.append((f"{county}{town}大道8号", code[:6]))
    return out


def test_a_county_stem_before_a_stem_of_its_own_town_is_that_county():
    cases = _stems_before_a_road()
    assert len(cases) >= 20
    parsers = {}
    right = 0
    for text, county in cases:
        parser = parsers.setdefault(county[:4], AddressParser(city=county[:4]))
        right += parser.parse(text).county_code == county
    assert right >= 0.9 * len(cases), (right, len(cases))


@pytest.mark.parametrize("city", sorted(CITIES))
def test_a_stray_number_between_the_city_and_its_county_and_town(city):
    parser = AddressParser(city=city)
    for i, v in enumerate(_sample(city, 5)):
        text = _address(v, i + 1).replace(CITIES[city], f"{CITIES[city]}{114 + i}", 1)
        p = parser.parse(text)
        assert p.county_code == v["areaCode"] and p.town_code == v["streetCode"], text
    v = _sample(city, 1)[0]
    bare = f"{CITIES[city]}114{COUNTIES[v['areaCode']]}中山路1号"  # no town of the county after it
    assert parser.parse(bare).county_code is None, bare
