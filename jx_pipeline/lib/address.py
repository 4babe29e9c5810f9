"""The Jiaxing address parser: county, town, village/community, road, number, complex, group, building, unit, room.

Built from the official division names (vendored NBS files), the county names of past years (python-stdnum's
table: 秀城区, 郊区, 平湖县 …) and, when given, the gazetteer of door plates (门牌) — whose roads and numbers
resolve an urban address to its village/community. It is robust to what clerks write: missing levels, 嘉兴 for
嘉兴市, a county with the wrong suffix, 镇 for 街道, full-width digits, 一二三 for 123, 栋/号楼 for 幢, 户 for 室,
typos in road and village names (fuzzy match inside the block already known), trailing remarks.
"""

import csv
import re
import unicodedata
from collections import defaultdict
from dataclasses import asdict, dataclass
from pathlib import Path

from rapidfuzz import fuzz, process
from rapidfuzz.distance import Levenshtein

from jx_pipeline.lib import divisions

COUNTY_SUFFIX = ("区", "县", "市")
TOWN_SUFFIX = ("街道", "镇", "乡")
ROAD_SUFFIX = ("大道", "路", "街", "道", "巷", "弄")
FUZZY_MIN = 75
_PROVINCE = re.compile(r"^(?:浙江省|浙江)")
_CITY = re.compile(r"^(?:嘉兴市|嘉兴)")
_REMARK = re.compile(r"(?:[(（][^()（）]*[)）]|旁边|旁|附近|对面|[东南西北]侧|楼下|门口)+$")
_CN_NUM = re.compile(r"([〇零一二两三四五六七八九十]+)(?=组|幢|栋|号楼|单元|号|室|户)")
_RURAL = re.compile(r"^(?P<village>.*?)(?P<group>\d+)组(?:(?P<number>\d+)号)?")
_TAIL = re.compile(
    r"^(?P<complex>.*?)(?:(?P<building>\d+)(?:幢|栋|号楼))?(?:(?P<unit>\d+)单元)?(?:(?P<room>\d+)(?:室|户|号))?$"
)
_URBAN_GENERIC = re.compile(r"^(?P<road>.+?(?:大道|路|街|道|巷|弄))(?:(?P<number>\d+)号(?!楼))?")
_DIGITS = {c: i for i, c in enumerate("零一二三四五六七八九")} | {"〇": 0, "两": 2}


@dataclass
class Parsed:
    county_code: str | None = None
    town_code: str | None = None
    village_code: str | None = None
    county: str | None = None
    town: str | None = None
    village: str | None = None
    road: str | None = None
    number: str | None = None
    complex: str | None = None
    group: str | None = None
    building: str | None = None
    unit: str | None = None
    room: str | None = None
    remark: str | None = None
    entity_id: str | None = None
    fuzzy: bool = False  # a name was matched one character away (a typo)

    def as_dict(self) -> dict:
        return asdict(self)


def village_short_name(name: str) -> str:
    """The name addresses use: without the committee (博山村委会 -> 博山村, 百福弄社区居委会 -> 百福弄社区); the same
    rule as core.admin_unit.short_name."""
    short = re.sub(r"(?:村民委员会|村委会)$", "村", re.sub(r"(?:居民委员会|居委会)$", "", name))
    return short[:-1] if short.endswith("村村") else short


def _cn_to_int(text: str) -> str:
    if "十" not in text:
        return "".join(str(_DIGITS[c]) for c in text)
    tens, _, ones = text.partition("十")
    return str((_DIGITS[tens] if tens else 1) * 10 + (_DIGITS[ones] if ones else 0))


def normalize(text: str) -> tuple[str, str | None]:
    """NFKC (full-width digits and brackets), no spaces, Chinese numerals before 组/幢/单元/室 as digits; the
    trailing remark split off."""
    s = unicodedata.normalize("NFKC", text or "").replace(" ", "").replace("\u3000", "")
    m = _REMARK.search(s)
    remark = None
    if m and m.start() > 0:
        s, remark = s[: m.start()], m.group(0)
    return _CN_NUM.sub(lambda m: _cn_to_int(m.group(1)), s), remark


def _stem(name: str, suffixes: tuple[str, ...]) -> str:
    for suf in suffixes:
        if name.endswith(suf) and len(name) > len(suf) + 1:
            return name[: -len(suf)]
    return name


def _historical_county_names() -> dict[str, str]:
    """Names Jiaxing's counties had in earlier years (python-stdnum's birthplace table) -> a current name."""
    from stdnum import numdb

    db = numdb.get("cn/loc")
    out = {}
    for code in range(330400, 330500):
        info = {k: v for _, props in db.info(str(code)) for k, v in props.items()}
        for entry in info.get("county", "").split(","):
            if "]" in entry:
                out[entry.split("]", 1)[1]] = str(code)
    return out


class AddressParser:
    """Parses addresses against the divisions and, optionally, door-plate points ``(entity_id, village_code,
    address)`` of the gazetteer."""

    def __init__(self, folder: Path | None = None, points: list[tuple[str, str, str]] | None = None):
        folder = folder or divisions.source_dir()
        counties = _read(folder / "jiaxing_areas.csv", "code", "name")
        towns = _read(folder / "jiaxing_towns.csv", "code", "name")
        villages = _read(folder / "jiaxing_villages.csv", "code", "name")
        self.county_name = counties
        self.town_name = towns
        self.village_name = villages
        self.county_alias: dict[str, str] = {}
        self.bare_county: dict[str, str] = {}
        by_stem = {_stem(n, COUNTY_SUFFIX): c for c, n in counties.items()}
        for code, name in counties.items():
            stem = _stem(name, COUNTY_SUFFIX)
            for alias in (name, *(stem + s for s in COUNTY_SUFFIX)):
                self.county_alias[alias] = code
            self.bare_county[stem] = code
        for old, old_code in _historical_county_names().items():
            current = old_code if old_code in counties else by_stem.get(_stem(old, COUNTY_SUFFIX))
            if current:
                self.county_alias.setdefault(old, current)
        self.town_alias: dict[str, list[str]] = defaultdict(list)
        for code, name in towns.items():
            stem = _stem(name, TOWN_SUFFIX)
            for alias in {name, *(stem + s for s in TOWN_SUFFIX)}:
                self.town_alias[alias].append(code)
        # a village's own short name (长安桥村) outranks a variant made from another's stem (长安桥社区 -> 长安桥村)
        self.village_alias: dict[str, list[str]] = defaultdict(list)
        self.village_short: dict[str, str] = {}
        variants: dict[str, list[str]] = defaultdict(list)
        for code, name in villages.items():
            short = village_short_name(name)
            self.village_short[code] = short
            self.village_alias[short].append(code)
            stem = _stem(short, ("社区", "村"))
            for alias in {stem, stem + "村", stem + "社区"} - {short}:
                variants[alias].append(code)
        self.villages_of_town: dict[str, dict[str, str]] = defaultdict(dict)
        self.villages_of_county: dict[str, dict[str, str]] = defaultdict(dict)
        self.villages_of_city: dict[str, str] = {}
        for table in (variants, self.village_alias):  # own names last: they overwrite variants
            for alias, codes in table.items():
                for pool, width in ((self.villages_of_town, 9), (self.villages_of_county, 6)):
                    for block in {c[:width] for c in codes}:
                        mine = {c for c in codes if c[:width] == block}
                        if len(mine) == 1:
                            pool[block][alias] = mine.pop()
                        else:  # two villages of the block answer to this name: it decides nothing
                            pool[block].pop(alias, None)
                if len(set(codes)) == 1:
                    self.villages_of_city[alias] = codes[0]
                else:
                    self.villages_of_city.pop(alias, None)
        for alias, codes in variants.items():
            self.village_alias.setdefault(alias, codes)
        self.names_of_county: dict[str, set[str]] = defaultdict(set)
        for alias, codes in [*self.town_alias.items(), *self.village_alias.items()]:
            for c in codes:
                self.names_of_county[c[:6]].add(alias)
        # gazetteer: door plates by (town, road, number) and (village, group, number)
        self.urban: dict[tuple, list[tuple[str, str, str | None]]] = defaultdict(list)
        self.urban_city: dict[tuple, list[tuple[str, str, str | None]]] = defaultdict(list)
        self.rural: dict[tuple, tuple[str, str]] = {}
        self.roads_of_town: dict[str, set[str]] = defaultdict(set)
        self.roads_of_county: dict[str, set[str]] = defaultdict(set)
        self.roads: set[str] = set()
        self._learned = False  # door-plate roads known: fuzzy road matching on
        for _, village_code, address in points or ():
            p = self.parse(address)
            if p.road:
                self.roads_of_town[village_code[:9]].add(p.road)
                self.roads_of_county[village_code[:6]].add(p.road)
                self.roads.add(p.road)
        self._learned = True
        for entity_id, village_code, address in points or ():
            p = self.parse(address)
            if p.road and p.number:
                self.urban[(village_code[:9], p.road, p.number)].append((entity_id, village_code, p.complex))
                if p.complex:  # the number may be left out: the road and the complex then name the plate
                    self.urban[(village_code[:9], p.road, None)].append((entity_id, village_code, p.complex))
                    self.urban_city[(p.road, None)].append((entity_id, village_code, p.complex))
                self.urban_city[(p.road, p.number)].append((entity_id, village_code, p.complex))
            elif p.group and p.number:
                self.rural[(village_code, p.group, p.number)] = (entity_id, village_code)

    # -- parsing -------------------------------------------------------------------------------------------
    def parse(self, text: str) -> Parsed:
        s, remark = normalize(text)
        out = Parsed(remark=remark)
        s = _CITY.sub("", _PROVINCE.sub("", s))
        s = self._county(s, out)
        s = self._town(s, out)
        s = self._village_prefix(s, out)
        m = _RURAL.match(s)  # 组 (a village's production group) appears only in rural addresses
        if m:
            out.group, out.number = m.group("group"), m.group("number")
            self._village(m.group("village"), out)
            s = s[m.end() :]
        else:
            s = self._road(s, out)
        t = _TAIL.match(s)
        if t:
            out.complex = t.group("complex") or None
            out.building, out.unit, out.room = t.group("building"), t.group("unit"), t.group("room")
        self._resolve(out)
        return out

    def _county(self, s: str, out: Parsed) -> str:
        alias = _prefix(s, self.county_alias)
        if alias:
            out.county, out.county_code = alias, self.county_alias[alias]
            return s[len(alias) :]
        stem = _prefix(s, self.bare_county)  # 嘉善 / 海宁 with no suffix: only when a place of it follows
        if stem:
            rest, code = s[len(stem) :], self.bare_county[stem]
            if _prefix(rest, self.names_of_county[code]) or _prefix(rest, self.roads_of_county.get(code, {})):
                out.county, out.county_code = stem, code
                return rest
        return s

    def _town(self, s: str, out: Parsed) -> str:
        alias = _prefix(s, self.town_alias)
        if alias:
            codes = self.town_alias[alias]
            if out.county_code:
                codes = [c for c in codes if c[:6] == out.county_code] or codes
            out.town = alias
            if len(codes) == 1:
                out.town_code = codes[0]
            return s[len(alias) :]
        return s

    def _village_prefix(self, s: str, out: Parsed) -> str:
        """A village or community named before its group or road (…街道百福弄社区中山路…)."""
        if not out.town_code:
            return s
        pool = self.villages_of_town[out.town_code]
        alias = _prefix(s, pool)
        if alias:
            rest = s[len(alias) :]
            if not rest or rest[0].isdigit() or _prefix(rest, self.roads_of_town.get(out.town_code, {})):
                out.village, out.village_code = alias, pool[alias]
                return rest
        return s

    def _village(self, text: str, out: Parsed) -> None:
        if not text:
            return
        out.village = text
        if out.town_code:
            pool = self.villages_of_town[out.town_code]
        elif out.county_code:
            pool = self.villages_of_county[out.county_code]
        else:
            pool = self.villages_of_city
        code = None
        if out.group and not text.endswith(("村", "社区")):  # a 组 (production group) belongs to a 村
            code = pool.get(text + "村")
        code = code or pool.get(text)
        if code is None:  # a typo: the one name of the block one character away
            near = _near(text, pool)
            code = pool[near] if near else None
            out.fuzzy = out.fuzzy or bool(near)
        if code:
            out.village_code = code

    def _road(self, s: str, out: Parsed) -> str:
        known = self.roads_of_town.get(out.town_code) if out.town_code else None
        road = _prefix(s, known or self.roads) if self._learned else None
        if road:
            out.road, s = road, s[len(road) :]
        else:  # a typo in the road's name: the one known road of the block one character away
            pool = (
                (known or self.roads_of_county.get(out.county_code or "", self.roads))
                if self._learned
                else ()
            )
            near = [
                r for r in pool if len(r) >= 3 and Levenshtein.distance(r, s[: len(r)], score_cutoff=1) <= 1
            ]
            if len(near) == 1:
                out.road, s, out.fuzzy = near[0], s[len(near[0]) :], True
            else:
                m = _URBAN_GENERIC.match(s)
                if not m:
                    return s
                out.road, s = m.group("road"), s[m.end("road") :]
        m = re.match(r"^(\d+)号(?!楼)", s)
        if m:
            out.number = m.group(1)
            s = s[m.end() :]
        return s

    def _resolve(self, out: Parsed) -> None:
        if out.road and (out.number or out.complex):
            cands = self.urban.get((out.town_code, out.road, out.number)) if out.town_code else None
            if not cands:
                cands = self.urban_city.get((out.road, out.number), [])
                if out.county_code:
                    cands = [c for c in cands if c[1][:6] == out.county_code]
            hit = _by_complex(cands, out.complex)
            if hit and len(cands) > 1 and out.complex and hit[2] != out.complex:
                out.fuzzy = True
            if hit:
                out.entity_id, out.village_code = hit[0], hit[1]
        elif out.village_code and out.group and out.number:
            hit = self.rural.get((out.village_code, out.group, out.number))
            if hit:
                out.entity_id = hit[0]
        if out.village_code:
            out.town_code = out.village_code[:9]
        if out.town_code:
            out.county_code = out.town_code[:6]


def standard(parser: "AddressParser", p: Parsed) -> str:
    """The standard form of a parsed address: official county and town names, then the place."""
    parts = [parser.county_name.get(p.county_code or "", ""), parser.town_name.get(p.town_code or "", "")]
    if p.road:
        parts += [p.road, f"{p.number}号" if p.number else "", p.complex or ""]
    elif p.group:
        village = parser.village_short.get(p.village_code or "", p.village or "")
        parts += [village, f"{p.group}组", f"{p.number}号" if p.number else ""]
    if p.building:
        parts.append(
            f"{p.building}幢" + (f"{p.unit}单元" if p.unit else "") + (f"{p.room}室" if p.room else "")
        )
    return "".join(parts)


def from_warehouse(conn) -> AddressParser:
    """A parser with the gazetteer of ``core.geo_entity`` (divisions only if that table is empty or missing)."""
    exists = conn.execute("select to_regclass('core.geo_entity')").fetchone()[0]
    points = (
        conn.execute(
            "select entity_id, village_code, address from core.geo_entity"
            " where entity_type = 'address_point' order by entity_id"
        ).fetchall()
        if exists
        else []
    )
    return AddressParser(points=points)


def _by_complex(cands: list[tuple[str, str, str | None]], complex_: str | None):
    """The door plate among those of one road and number: the only one, or the one whose complex (小区) is
    named, exactly or with a typo."""
    if len(cands) <= 1:
        return cands[0] if cands else None
    if not complex_:  # no complex written: the plate of the road and number that has none
        bare = [c for c in cands if not c[2]]
        return bare[0] if len(bare) == 1 else None
    exact = [c for c in cands if c[2] == complex_]
    if len(exact) == 1:
        return exact[0]
    names = [c[2] or "" for c in cands]
    hit = process.extractOne(complex_, names, scorer=fuzz.ratio, score_cutoff=FUZZY_MIN)
    return cands[hit[2]] if hit else None


def _prefix(s: str, names) -> str | None:
    """The longest of ``names`` (a dict or set) that ``s`` starts with: a few hash lookups, not a scan."""
    for k in range(min(len(s), 12), 1, -1):
        if s[:k] in names:
            return s[:k]
    return None


def _near(text: str, pool: dict[str, str]) -> str | None:
    """The one name of the pool within one edit of the text (names of 3+ characters: 2 are too easily confused)."""
    if len(text) < 3:
        return None
    near = {
        pool[a]: a
        for a in pool
        if abs(len(a) - len(text)) <= 1 and Levenshtein.distance(a, text, score_cutoff=1) <= 1
    }
    return next(iter(near.values())) if len(near) == 1 else None


def _read(path: Path, key: str, value: str) -> dict[str, str]:
    with path.open(encoding="utf-8") as fh:
        return {row[key]: row[value] for row in csv.DictReader(fh)}
