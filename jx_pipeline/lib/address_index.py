"""The division index of the address parser: every name by which a writer may call a province, city or county
of China, and a town or village of Zhejiang, mapped to its NBS 2022 code.

Built once per folder from the vendored NBS files (``data/china_divisions``), the county names of past years
(python-stdnum's ``cn/loc`` table: 富阳市, 江东区, 萧山县 …) and the implied places of ``data/address``. Each name
carries a rank (0 the official name, 1 another suffix or a former name, 2 the bare stem without suffix) so
that the parser prefers the most explicit reading and treats bare stems with caution.
"""

from __future__ import annotations

import csv
import gc
import hashlib
import re
import sys
from collections import defaultdict
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from jx_pipeline.lib import disk_cache, settings
from jx_pipeline.lib.errors import JxError

MUNICIPALITIES = ("11", "12", "31", "50")  # provinces that are cities: 北京 names both
PROVINCE_SUFFIX = re.compile(r"(?:省|市|壮族自治区|回族自治区|维吾尔自治区|自治区|特别行政区)$")
CITY_SUFFIX = re.compile(r"(?:(?:[\u4e00-\u9fff]{1,6}?族)+自治州|自治州|地区|盟|市)$")
COUNTY_SUFFIX = re.compile(r"(?:(?:[\u4e00-\u9fff]{1,6}?族)+自治[县旗]|林区|特区|区|县|市|旗)$")
COUNTY_SUFFIXES = ("区", "县", "市")
TOWN_SUFFIXES = ("街道", "镇", "乡")
ZONE_FORMS = ("经济技术开发区", "经济开发区", "开发区", "工业园区", "工业区")  # how writers shorten a zone
VILLAGE_COMMITTEE = re.compile(r"(?:村民委员会|村委会|居民委员会|居委会)$")


def village_short_name(name: str) -> str:
    """The name addresses use: without the committee (博山村委会 -> 博山村, 百福弄社区居委会 -> 百福弄社区); the same
    rule as core.admin_unit.short_name."""
    short = re.sub(r"(?:村民委员会|村委会)$", "村", re.sub(r"(?:居民委员会|居委会)$", "", name))
    return short[:-1] if short.endswith("村村") else short


def stem(name: str, pattern: re.Pattern) -> str:
    """The name without its suffix, if at least two characters remain (江北区 -> 江北, 城区 stays; 石柱土家族自治县
    -> 石柱: the peoples belong to the suffix)."""
    m = pattern.search(name)
    if m and m.start() < 2 and len(name) > 2:
        m = pattern.search(name, 2)
        while m and m.start() >= 2 and pattern.fullmatch(name, m.start()) is None:
            m = pattern.search(name, m.start() + 1)
    return name[: m.start()] if m and m.start() >= 2 else name


@dataclass(frozen=True)
class Place:
    level: str  # province | city | county
    code: str
    rank: int  # 0 official name, 1 other suffix / former name, 2 bare stem


@dataclass
class Index:
    province_name: dict[str, str] = field(default_factory=dict)
    city_name: dict[str, str] = field(default_factory=dict)
    county_name: dict[str, str] = field(default_factory=dict)
    town_name: dict[str, str] = field(default_factory=dict)
    village_name: dict[str, str] = field(default_factory=dict)
    village_short: dict[str, str] = field(default_factory=dict)
    county_city: dict[str, str] = field(default_factory=dict)  # 6-digit county -> 4-digit city
    places: dict[str, list[Place]] = field(default_factory=lambda: defaultdict(list))
    # town name -> [(code, rank)], village name -> [(code, rank)] (Zhejiang)
    towns: dict[str, list[tuple[str, int]]] = field(default_factory=lambda: defaultdict(list))
    villages: dict[str, list[tuple[str, int]]] = field(default_factory=lambda: defaultdict(list))
    # first two characters -> lengths of the names starting with them, longest first: a prefix search
    # then tries only lengths that exist
    place_heads: dict[str, tuple[int, ...]] = field(default_factory=dict)
    town_heads: dict[str, tuple[int, ...]] = field(default_factory=dict)
    village_heads: dict[str, tuple[int, ...]] = field(default_factory=dict)

    def add_place(self, alias: str, level: str, code: str, rank: int) -> None:
        got = self.places[alias]
        if not any(p.level == level and p.code == code and p.rank <= rank for p in got):
            got[:] = [p for p in got if not (p.level == level and p.code == code)]
            got.append(Place(level, code, rank))

    def add(self, table: dict, alias: str, code: str, rank: int) -> None:
        got = table[alias]
        for i, (c, r) in enumerate(got):
            if c == code:
                if rank < r:
                    got[i] = (code, rank)
                return
        got.append((code, rank))


def default_folder() -> Path:
    return settings.DATA_DIR / "china_divisions"


def _rows(path: Path) -> list[dict[str, str]]:
    if not path.is_file():
        raise JxError(f"address divisions: file {path} is missing", fix="restore the vendored division files")
    with path.open(encoding="utf-8-sig", newline="") as fh:
        rows = list(csv.DictReader(fh))
    for n, row in enumerate(rows, start=2):
        if not row.get("code") or not row.get("name"):
            raise JxError(f"address divisions: {path.name} row {n}: empty column code or name")
    return rows


def _former_counties() -> list[tuple[str, str]]:
    """(name, 6-digit code) of every county name python-stdnum's ``cn/loc`` table knows, past and present."""
    from stdnum import numdb

    path = Path(numdb.__file__).parent / "cn" / "loc.dat"
    out, province = [], ""
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        code, _, props = line.strip().partition(" ")
        if not line.startswith(" "):
            province = code
            continue
        m = re.search(r'county="([^"]*)"', props)
        for entry in m.group(1).split(",") if m else ():
            name = entry.split("]", 1)[-1]
            if name and name not in ("市辖区", "县"):
                out.append((name, province + code))
    return out


@lru_cache(maxsize=4)
def load(folder: Path | None = None) -> Index:
    """The index of ``folder`` (the vendored divisions by default), built once per process and kept on disk
    under ``.jx/cache`` between processes (a fifth of the build's time to load)."""
    enabled = gc.isenabled()
    gc.disable()  # millions of small objects that all live on: collections during the build are wasted work
    try:
        return _stored(folder or default_folder())
    finally:
        if enabled:
            gc.enable()


@lru_cache(maxsize=4)
def stored_key(folder: Path) -> str:
    """A hash of everything the index is built from: the division and implied-place files, stdnum's county table,
    the code that builds it and the Python version."""
    from stdnum import numdb

    from jx_pipeline.lib import address_implied

    h = hashlib.sha256(sys.version.encode())
    for path in (
        *sorted(folder.glob("*.csv")),
        address_implied.PATH,
        Path(numdb.__file__).parent / "cn" / "loc.dat",
        Path(__file__),
        Path(address_implied.__file__),
    ):
        h.update(path.name.encode() + b"\0" + path.read_bytes())
    return h.hexdigest()[:20]


def _stored(folder: Path) -> Index:
    """The index from the disk cache when its key matches, else built and stored (best effort: a read-only or
    missing state directory only means building each time)."""
    key = stored_key(folder)
    ix = disk_cache.load("address_index", key)
    if isinstance(ix, Index):
        return ix
    ix = _build(folder)
    disk_cache.store("address_index", key, ix)
    return ix


def _build(folder: Path) -> Index:
    ix = Index()
    for row in _rows(folder / "provinces.csv"):
        code, name = row["code"], row["name"]
        ix.province_name[code] = name
        ix.add_place(name, "province", code, 0)
        short = stem(name, PROVINCE_SUFFIX)
        ix.add_place(short, "province", code, 2)
        if short != name:
            for suf in ("省", "市"):  # 广西省 for 广西壮族自治区, 山西市 for 山西省: another suffix
                ix.add_place(short + suf, "province", code, 1)
    for row in _rows(folder / "cities.csv"):
        code, name = row["code"], row["name"]
        if name in ("市辖区", "县", "省直辖县级行政区划", "自治区直辖县级行政区划"):
            continue
        ix.city_name[code] = name
        ix.add_place(name, "city", code, 0)
        short = stem(name, CITY_SUFFIX)
        ix.add_place(short, "city", code, 2)
        if name.endswith("自治州") and short != name:
            ix.add_place(short + "州", "city", code, 1)  # 红河州 for 红河哈尼族彝族自治州
        if name.endswith("市") and short != name:
            ix.add_place(short + "地区", "city", code, 1)  # 山南地区, a prefecture until 2016
    for row in _rows(folder / "areas.csv"):
        code, name = row["code"], row["name"]
        if name == "市辖区":
            continue
        ix.county_name[code] = name
        ix.county_city[code] = row["cityCode"]
        ix.add_place(name, "county", code, 0)
        s = stem(name, COUNTY_SUFFIX)
        if s != name:
            ix.add_place(s, "county", code, 2)
            for suf in COUNTY_SUFFIXES:  # 桐乡县 for 桐乡市: a county with the wrong suffix
                ix.add_place(s + suf, "county", code, 1)
    from jx_pipeline.lib import address_implied

    for entry in address_implied.load():
        if len(entry.code) == 9:
            _add_town(ix, entry.name, entry.code, 1)
        else:
            ix.add_place(entry.name, "county", entry.code, 1)
    by_stem: dict[tuple[str, str], str] = {}
    for code, name in ix.county_name.items():
        by_stem[(code[:4], stem(name, COUNTY_SUFFIX))] = code
    for name, old in _former_counties():
        if old in ix.county_name:
            ix.add_place(name, "county", old, 1)
        elif (old[:4], stem(name, COUNTY_SUFFIX)) in by_stem:  # 富阳市 -> 富阳区
            ix.add_place(name, "county", by_stem[(old[:4], stem(name, COUNTY_SUFFIX))], 1)
        elif old[:4] in ix.city_name and name not in ix.places:  # abolished: it still names its city
            ix.add_place(name, "city", old[:4], 1)
    for row in _rows(folder / "zhejiang_streets.csv"):
        ix.town_name[row["code"]] = row["name"]
        _add_town(ix, row["name"], row["code"], 0)
    for row in _rows(folder / "zhejiang_villages.csv"):
        code, name = row["code"], row["name"]
        ix.village_name[code] = name
        short = village_short_name(name)
        ix.village_short[code] = short
        ix.add(ix.villages, short, code, 0)
        if name != short:
            ix.add(ix.villages, name, code, 0)
        s = re.sub(r"(?:社区|村)$", "", short)
        if s != short and len(s) >= 2:
            ix.add(ix.villages, s, code, 2)
            for suf in ("村", "社区"):
                if s + suf != short:
                    ix.add(ix.villages, s + suf, code, 1)
    ix.place_heads = _heads(ix.places)
    ix.town_heads = _heads(ix.towns)
    ix.village_heads = _heads(ix.villages)
    ix.places = dict(ix.places)
    ix.towns = dict(ix.towns)
    ix.villages = dict(ix.villages)
    return ix


TOWN_SUFFIX = re.compile("(?:街道|镇|乡)$")


def _add_town(ix: Index, name: str, code: str, base: int) -> None:
    ix.add(ix.towns, name, code, base)
    s = stem(name, TOWN_SUFFIX)
    if s != name:
        ix.add(ix.towns, s, code, 2)
        for suf in TOWN_SUFFIXES:  # 镇 for 街道 (a town made a sub-district keeps its old name)
            ix.add(ix.towns, s + suf, code, max(base, 1))
    for form in ZONE_FORMS:  # 萧山经济技术开发区 is written 萧山开发区, 萧山经济开发区
        if name.endswith(form) and len(name) > len(form):
            for other in ZONE_FORMS[:3]:
                if other != form:
                    ix.add(ix.towns, name[: -len(form)] + other, code, max(base, 1))


def _heads(table: dict[str, object]) -> dict[str, tuple[int, ...]]:
    lengths: dict[str, set[int]] = defaultdict(set)
    for name in table:
        lengths[name[:2]].add(len(name))
    return {h: tuple(sorted(ls, reverse=True)) for h, ls in lengths.items()}
