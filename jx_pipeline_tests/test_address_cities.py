"""`--city` for every Zhejiang city: the parser configured for a city resolves that city's own county / town /
village names to their codes, and marks an address of another Zhejiang city as outside with that city's codes.
Addresses are built from the vendored NBS 2022 rows, a village per city chosen by rank, not picked by hand."""

import csv

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
