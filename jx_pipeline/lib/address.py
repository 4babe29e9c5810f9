"""The address parser: province, city, county, town, village/community, road, number, complex, group,
building, unit, room — for any city of China down to county, any Zhejiang city down to village.

Configured by city (``AddressParser(city="3304")``, Jiaxing the default). Names come from the division index
(``address_index``: NBS 2022 for all China, former county names, implied places of ``data/address``); the
writers' habits (separators, 中国, remarks, names and phones at the end) are undone by ``address_norm``. An
address is never all-or-nothing: every level the parser is sure of is returned with a confidence, with the
reason it stopped. An address naming a place elsewhere (a migrant's home county glued in front is skipped) is
``outside``, with the codes of that place. For the configured city, the gazetteer of door plates (门牌), when
given, resolves an urban address (road and number) to its village/community and entity.
"""

import re
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from rapidfuzz import fuzz, process
from rapidfuzz.distance import Levenshtein

from jx_pipeline.lib import address_index
from jx_pipeline.lib.address_index import Index, Place, village_short_name
from jx_pipeline.lib.address_norm import normalize

__all__ = [
    "AddressParser",
    "Parsed",
    "from_warehouse",
    "normalize",
    "points_of",
    "standard",
    "village_short_name",
]

DEFAULT_CITY = "3304"  # Jiaxing
FUZZY_MIN = 75
CONFIDENCE = {0: 1.0, 1: 0.9, 2: 0.8}  # official name, other suffix or former name, bare stem
_RURAL = re.compile(r"^(?P<village>.*?)(?P<group>\d+)组(?:(?P<number>\d+)号)?")
_TAIL = re.compile(
    r"^(?P<complex>.*?)(?:(?P<building>\d+)(?:幢|栋|号楼))?(?:(?P<unit>\d+)单元)?(?:(?P<room>\d+)(?:室|户|号))?$"
)
# a road ends 路/街/道…, but never splits 街道 (a sub-district) into 街 + 道
_URBAN_GENERIC = re.compile(r"^(?P<road>.+?(?:大道|路|街(?!道)|(?<!街)道|巷|弄))(?:(?P<number>\d+)号(?!楼))?")
# a town-level name where the towns are not known (outside Zhejiang): …街道/镇/乡, not the start of a road
_TOWN_NAME = re.compile(r"^[\u4e00-\u9fff]{2,6}?(?:街道|镇|乡)(?!大道|路|街|巷|弄)")
# what follows a bare stem when the stem is part of a longer name (萧山路, 城北村, 平湖街道), not a division
_NOT_AFTER_STEM = re.compile(
    r"^(?:[\u4e00-\u9fff]?(?:大道|路|街|巷|弄)|街道|镇|乡|村|社区|居委|组|号|小区|花园|大厦|广场|公寓|新村|苑|庄|桥|湾|港|塘"
    r"|城(?![\u4e00-\u9fff]{1,3}(?:大道|路|街|巷)|[东南西北中]|区)|园区)"
)  # 义乌城店南路, 诸暨城南路, 嵊州城东开发区: a road or quarter of the county after its stem, not 海宁城
_HEAD = re.compile(r"^\D*\d?")
# building, unit and room at the end (a room written 号 only after a building or unit: 12号 alone is a number)
_FLAT = re.compile(
    r"(?:(?P<building>\d+)(?:幢|栋|号楼))?(?:(?P<unit>\d+)单元)(?:(?P<room>\d+)(?:室|户|号))?$"
    r"|(?P<building2>\d+)(?:幢|栋|号楼)(?:(?P<room2>\d+)(?:室|户|号))?$|(?P<room3>\d+)(?:室|户)$"
)
_FLAT_END = set("幢栋楼元室户号")
_FLAT_CHARS = "0123456789幢栋号楼单元室户"  # all a flat is written with (but non-ASCII digits)
# filler between levels: null values, and NBS placeholders copied from forms (上海市-市辖区-黄浦区)
_NONE = ("",)  # a level not in the chain
_FILLER = re.compile(r"^(?:中华人民共和国|中国|null|NULL|None|none|无|市辖区|其它区|其他区)")
_NOTHING = re.compile(rf"(?:{_FILLER.pattern[1:]}|[\W_])*\Z")  # filler and punctuation only
_FILLER_FIRST = set("中nN无市其")  # the first characters of the fillers: the regex is tried only after one


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
    province_code: str | None = None
    city_code: str | None = None
    outside: bool = False  # the address names a place outside the configured city
    confidence: dict[str, float] = field(default_factory=dict)
    stop_reason: str | None = None

    def as_dict(self) -> dict:
        return {**self.__dict__, "confidence": dict(self.confidence)}


class AddressParser:
    """Parses addresses for one city (4-digit NBS code) against the division index and, optionally, door-plate
    points ``(entity_id, village_code, address)`` of that city's gazetteer."""

    def __init__(
        self,
        folder: Path | None = None,
        points: list[tuple[str, str, str]] | None = None,
        city: str = DEFAULT_CITY,
    ):
        ix = address_index.load(folder)
        if city not in ix.city_name and not any(c[:4] == city for c in ix.county_city.values()):
            raise ValueError(f"unknown city code {city!r}: give a 4-digit NBS city code such as 3304")
        self.ix: Index = ix
        self.city, self.province = city, city[:2]
        self.county_name = ix.county_name
        self.town_name = ix.town_name
        self.village_name = ix.village_name
        self.village_short = ix.village_short
        self._head_cache: dict[str, tuple[int, dict, dict]] = {}
        self._core_cache: dict[str, dict] = {}
        # the first two characters of every full province, city or county name (and of city stems)
        self._heads = {
            a[:2] for a, ps in ix.places.items() if any(p.rank < 2 or p.level != "county" for p in ps)
        }
        # names that are only bare stems (rank 2) of every place they name
        self._stems_only = {a for a, ps in ix.places.items() if all(p.rank == 2 for p in ps)}
        # villages of the city by their own or variant name, when only one village answers to it
        self.villages_of_city: dict[str, str] = {}
        for alias, cands in ix.villages.items():
            mine = {c for c, r in cands if c[:4] == city and r < 2}
            if len(mine) == 1:
                self.villages_of_city[alias] = mine.pop()
        # gazetteer: door plates by (town, road, number) and (village, group, number)
        self.urban: dict[tuple, list[tuple[str, str, str | None]]] = defaultdict(list)
        self.urban_city: dict[tuple, list[tuple[str, str, str | None]]] = defaultdict(list)
        self.rural: dict[tuple, tuple[str, str]] = {}
        self.roads_of_town: dict[str, set[str]] = defaultdict(set)
        self.roads_of_county: dict[str, set[str]] = defaultdict(set)
        self.roads: set[str] = set()
        self.road_heads: dict[str, list[str]] = defaultdict(list)  # first two characters -> roads
        self._learned = False  # door-plate roads known: fuzzy road matching on
        for _, village_code, address in points or ():
            p = self.parse(address)
            road = p.road
            if (
                not road
                and p.village_code == village_code
                and p.village
                and _URBAN_GENERIC.fullmatch(p.village)
            ):
                road = p.village  # a community named after its road (解放路社区 on 解放路): the plate's road
            if road:
                self.roads_of_town[village_code[:9]].add(road)
                self.roads_of_county[village_code[:6]].add(road)
                self.roads.add(road)
        for road in self.roads:
            self.road_heads[road[:2]].append(road)
        self.road_lengths = {
            h: sorted({len(r) for r in rs}, reverse=True) for h, rs in self.road_heads.items()
        }
        self._learned = True
        self._head_cache.clear()  # heads read before the roads were known
        self._core_cache.clear()  # and cores: a plate first read as its village reads as its road now
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
        self._core_cache.clear()  # cores read before the door plates were known

    # -- parsing -------------------------------------------------------------------------------------------
    def parse(self, text: str) -> Parsed:
        return self.assemble(*self.split(text))

    def assemble(self, fields: dict, flat: re.Match | None, remark: str | None) -> Parsed:
        """The Parsed of the parts ``split`` returns."""
        out = object.__new__(Parsed)
        out.__dict__.update(fields)
        out.confidence = dict(out.confidence)
        if flat:
            g = flat.group
            out.building, out.unit = g("building") or g("building2"), g("unit")
            out.room = g("room") or g("room2") or g("room3")
        if remark:
            out.remark = out.remark + remark if out.remark else remark
        return out

    def split(self, text: str) -> tuple[dict, re.Match | None, str | None]:
        """The parse in its parts: the fields of the core (shared by every line with that core: do not change
        them), the flat at the end (building, unit, room) and the remark split off by normalization."""
        s, remark = normalize(text)
        # building, unit and room at the end vary most between lines and decide nothing above them: the rest
        # (the core) is parsed once for all the flats of a door plate
        flat = None
        if s[-1:] in _FLAT_END:
            # the flat lies in the trailing run of its characters: searched from there, the same leftmost match
            # (from the start if a non-ASCII digit ends the part before)
            start = len(s.rstrip(_FLAT_CHARS))
            flat = _FLAT.search(s, 0 if start and s[start - 1].isdecimal() else start)
        core = s[: flat.start()] if flat else s
        fields = self._core_cache.get(core)
        if fields is None:
            if len(self._core_cache) > 200_000:
                self._core_cache.clear()
            fields = self._core_cache[core] = self._parse_core(core).__dict__
        return fields, flat, remark

    def _parse_core(self, s: str) -> Parsed:
        # the divisions are read from the head of the address, up to its first digit: many addresses share it,
        # so it is parsed once (the same result as reading the whole: no division name holds a digit)
        head = _HEAD.match(s).group(0)
        cached = self._head_cache.get(head)
        if cached is None:
            if len(self._head_cache) > 200_000:
                self._head_cache.clear()
            cached = self._head_cache[head] = self._divisions(head)
        used, fields, chain = cached
        if head[-1:].isdigit() and "city" in chain and not fields["county_code"]:
            after = s[len(head) - 1 :].lstrip("0123456789")
            if self._county_of_city_next(
                after, chain["city"][0]
            ):  # 台州114路桥路桥街道: a stray number between
                return self._parse_core(s[: len(head) - 1] + after)
        if (
            "local" in chain
        ):  # a migrant's home before a place of the city: local if that place's units follow
            codes, start = chain["local"]
            home = self._parse_core(s[start:])
            if any(self._evidence(home, code) for code in codes):
                return home
        out = object.__new__(Parsed)  # a copy of the cached fields, without __init__'s defaults
        out.__dict__.update(fields)
        out.confidence = dict(out.confidence)
        s = s[used:]
        local = not out.outside
        m = _RURAL.match(s)  # 组 (a village's production group) appears only in rural addresses
        if m:
            out.group, out.number = m.group("group"), m.group("number")
            if not out.village_code and not m.group("village") and chain.get("town", ("", 0))[1] == 2:
                self._village(out.town, out)  # 陶庄1组: the town's namesake village (陶庄村), stem only
            elif not out.village_code:
                self._village(m.group("village"), out)
            s = s[m.end() :]
        else:
            s = self._road(s, out, local)
        t = _TAIL.match(s)
        if t:
            out.complex = t.group("complex") or None
            out.building, out.unit, out.room = t.group("building"), t.group("unit"), t.group("room")
        if local:
            self._resolve(out)
        if out.village_code != fields["village_code"] or out.entity_id:  # the tail resolved deeper
            if out.village_code and out.village_code[:9] == fields["town_code"] and "town" in out.confidence:
                out.stop_reason = None  # a village of the town already found: nothing above it changes
            else:
                self._finish(out, chain)
        return out

    def _divisions(self, s: str) -> tuple[int, dict, dict]:
        """Province … village at the start of ``s``: (characters used, fields of Parsed, the chain of places)."""
        out = Parsed()
        chain: dict[str, tuple[str, int]] = {}  # level -> (code, rank) of the place the address names
        rest = self._places(s, out, chain)
        if not chain and not self._prefix_town(rest, None, self.city):
            rest = self._after_label(rest, out, chain)
        local = self._local_after(rest, chain)
        if local:  # a place of the configured city after a place elsewhere: decided by what follows it
            chain["local"] = (local, len(s) - len(rest))
        rest = self._town(rest, out, chain)
        rest = self._repeat(rest, out, chain)
        self._context(out, chain)
        rest = self._village_prefix(rest, out)
        self._finish(out, chain)
        return len(s) - len(rest), dict(out.__dict__), chain

    def _consistent(self, place: Place, chain: dict[str, tuple[str, int]]) -> bool:
        code = place.code
        if not chain:
            return True  # nothing named before: every condition below holds
        prov, city, county = (
            chain.get("province", _NONE)[0],
            chain.get("city", _NONE)[0],
            chain.get("county", _NONE)[0],
        )
        if place.level == "province":
            return (
                (not prov or prov == code)
                and (not city or city[:2] == code)
                and (not county or county[:2] == code)
            )
        if place.level == "city":
            return (
                (not prov or prov == code[:2])
                and (not city or city == code)
                and (not county or self.ix.county_city.get(county) == code)
            )
        return (
            (not prov or prov == code[:2])
            and (
                not city or self.ix.county_city.get(code) == city or city[:2] in address_index.MUNICIPALITIES
            )
            and (not county or county == code)
        )

    def _places(self, s: str, out: Parsed, chain: dict) -> str:
        """Province, city and county names at the start, in any order and repeated; a place that contradicts the
        ones before starts the address anew (a home province and county glued in front of the address)."""
        ix = self.ix
        stems_only = self._stems_only
        while s:
            f = _FILLER.match(s) if s[0] in _FILLER_FIRST else None
            if f and s[:2] not in ix.place_heads:  # 无 is a null value, 无锡 and 无为 are places
                s = s[f.end() :]
                continue
            best = None
            town = None
            for k in ix.place_heads.get(s[:2], ()):
                cands = ix.places.get(s[:k])
                if not cands:
                    continue
                if s[:k] in stems_only:  # 萧山|开发区: a town, not the county's stem
                    town = self._town_len(s) if town is None else town
                    if k < town:
                        continue
                best = self._pick_place(cands, chain, s[k:])
                if best:
                    alias, (place, fresh) = s[:k], best
                    break
            if not best:
                if "county" in chain and s.startswith("城区") and not _NOT_AFTER_STEM.match(s[2:]):
                    s = s[2:]  # 瑞安市城区锦湖街道: downtown, between the county and its town
                    continue
                typo = self._misspelt_city(s, chain)
                if not typo:
                    return s
                place, k = typo
                chain["city"] = (place.code, place.rank)
                s = s[k:]
                continue
            if not fresh and place.level == "province" and self._ends_address(chain, s[len(alias) :]):
                fresh = True  # …西湖区|浙江|海宁工人路: the province named again starts the address anew
            if fresh:
                chain.clear()
                out.county = None
            chain[place.level] = (place.code, place.rank)
            if place.level == "county":
                out.county = alias
            s = s[len(alias) :]
        return s

    def _misspelt_city(self, s: str, chain: dict) -> tuple[Place, int] | None:
        """A city name one edit from the written one (a typed 卅 for 州, a stray character before it), read as
        that city only when the full name of one of its counties follows at once."""
        if "city" in chain or "county" in chain:
            return None
        ix = self.ix
        for k in (3, 4, 5):
            written, rest = s[:k], s[k:]
            for n in ix.place_heads.get(rest[:2], ()):
                for p in ix.places.get(rest[:n], ()):
                    if p.level != "county" or p.rank > 1:
                        continue
                    city = ix.county_city.get(p.code, "")
                    name = ix.city_name.get(city, "")
                    if (
                        len(name) >= 3
                        and name[-1] == written[-1]  # the suffix as written: 市 after the typo
                        and name != written
                        and Levenshtein.distance(name, written, score_cutoff=1) <= 1
                        and self._consistent(Place("city", city, 1), chain)
                    ):
                        return Place("city", city, 1), k
        return None

    def _pick_place(self, cands: list[Place], chain: dict, rest: str) -> tuple[Place, bool] | None:
        if len(cands) == 1 and cands[0].rank < 2:  # the common case, the same steps as below for one place
            place = cands[0]
            if self._consistent(place, chain):
                return place, False
            if chain and self._may_restart(place, chain, rest):
                return place, True
            return None
        if any(p.rank == 2 for p in cands) and _NOT_AFTER_STEM.match(rest) and not self._names_next(rest):
            cands = [p for p in cands if p.rank < 2 or self._own_town_next(p, rest)]
        if not cands:
            return None
        ok = [p for p in cands if self._consistent(p, chain)]
        fresh = False
        if not ok and chain:  # contradicts what came before: a new address may start here
            ok = [p for p in cands if self._may_restart(p, chain, rest)]
            fresh = True
        if not ok:
            return None
        if len(ok) > 1 and "city" not in chain and "county" not in chain:
            ok = [p for p in ok if p.code[:4] == self.city] or ok  # 郊区: the configured city's, before rank
        best = min(p.rank for p in ok)
        ok = [p for p in ok if p.rank == best]
        if len(ok) > 1:  # the same name in several places: the configured city's, else its province's
            ok = [p for p in ok if p.code[: len(self.city)] == self.city[: len(p.code)]] or [
                p for p in ok if p.code[:2] == self.province
            ]
        if len(ok) != 1:
            return None
        place = ok[0]
        if place.rank == 2 and place.level == "county" and not chain and place.code[:2] != self.province:
            return None  # a bare county stem of another province, nothing before it: too weak
        return place, fresh

    def _after_label(self, s: str, out: Parsed, chain: dict) -> str:
        """Words before the address (邮寄地址, 委托件, a company's name): the address starts at the first province,
        city or county name within the next few characters."""
        heads = self._heads
        best = None  # the start from which the most levels are read (金城镇|江苏省常州市…, not 金城|镇江…)
        for i in range(1, min(len(s) - 1, 16)):
            if s[i : i + 2] in heads:
                trial_out, trial = Parsed(), {}
                rest = self._places(s[i:], trial_out, trial)
                if trial and (best is None or len(trial) > len(best[2])):
                    best = (i, trial_out, trial, rest)
        if best is None:
            return s
        i, trial_out, trial, rest = best
        chain.update(trial)
        out.county = trial_out.county
        out.remark = (s[:i] + (out.remark or "")) if out.remark else s[:i]
        return rest

    def _local_after(self, rest: str, chain: dict) -> tuple[str, ...] | None:
        """The codes of a place of the configured city named at the start of ``rest`` after a place elsewhere: a
        town when the place named has no town of that name (湖南省安乡县|王江泾镇…; 杭州市西湖区|转塘街道 is
        Hangzhou's own), or the city's or a county's bare stem (江西省宜黄县|秀洲|钱家桥1组…). Whether the
        address starts anew there is decided by what follows (``_evidence``)."""
        if not chain:
            return None
        county = chain.get("county", (None,))[0]
        city = chain.get("city", (None,))[0] or self.ix.county_city.get(county or "")
        prov = chain.get("province", (None,))[0]
        if (city or "")[:4] == self.city or (not city and (prov or self.province) == self.province):
            return None
        found = []
        hit = self._prefix_town(rest, None, self.city)
        if hit and len(hit[1]) == 1:
            there = county or city or prov or ""
            if any(c.startswith(there) for c, _ in self.ix.towns.get(hit[0], ())):
                return None  # the place named has a town of that name: it is that one
            found.append(hit[1][0])
        for k in self.ix.place_heads.get(rest[:2], ()):
            mine = {p.code for p in self.ix.places.get(rest[:k], ()) if p.code[:4] == self.city}
            if len(mine) == 1:
                found.append(mine.pop())
                break
        return tuple(found) or None

    def _evidence(self, home: Parsed, code: str) -> bool:
        """Whether a local reading names more of the place than its name: a village or community inside it, a
        door plate, or (after a town) a road of the gazetteer in that town."""
        if home.outside or not (home.town_code or home.county_code or home.city_code or "").startswith(code):
            return False
        return bool(
            (home.village_code or "").startswith(code)
            or (home.entity_id and (home.village_code or "").startswith(code))
            or (len(code) == 9 and home.road and home.road in self.roads_of_town.get(code, ()))
        )

    def _former_name(self, written: str | None, code: str) -> bool:
        """Whether a county is written by a name other than its own with some suffix (江干区 for 上城区)."""
        cut = address_index.stem
        return bool(written) and cut(written, address_index.COUNTY_SUFFIX) != cut(
            self.county_name.get(code, ""), address_index.COUNTY_SUFFIX
        )

    def _stem_of_county(self, hit) -> bool:
        """A bare town stem that is also its own county's stem (临平 of 临平区): the seat of a new county."""
        code = hit[1][0]
        return address_index.stem(self.county_name.get(code[:6], ""), address_index.COUNTY_SUFFIX) == hit[0]

    def _town_len(self, s: str) -> int:
        """Length of the longest Zhejiang town name with its suffix at the start of ``s`` (0 if none)."""
        for k in self.ix.town_heads.get(s[:2], ()):
            if any(r < 2 for _, r in self.ix.towns.get(s[:k], ())):
                return k
        return 0

    def _names_next(self, rest: str) -> bool:
        """Whether a division name with its suffix starts ``rest`` (宁波|镇海区, 台州|路桥区, 桐庐|城南街道)."""
        ix = self.ix
        for k in {*ix.place_heads.get(rest[:2], ()), *ix.town_heads.get(rest[:2], ())}:
            head = rest[:k]
            if any(p.rank < 2 for p in ix.places.get(head, ())) or any(
                r < 2 for _, r in ix.towns.get(head, ())
            ):
                return True
        return False

    def _county_of_city_next(self, s: str, city: str) -> bool:
        """Whether ``s`` starts with a county of ``city`` followed by one of that county's towns."""
        ix = self.ix
        for k in ix.place_heads.get(s[:2], ()):
            for p in ix.places.get(s[:k], ()):
                if ix.county_city.get(p.code) == city and self._own_town_next(p, s[k:]):
                    return True
        return False

    def _own_town_next(self, place: Place, rest: str) -> bool:
        """Whether a town of the county ``place``, stem or full name, starts ``rest`` (瑞安|塘下大道): the stem
        before it is that county, not a word of a road or quarter."""
        if place.level != "county":
            return False
        ix = self.ix
        return any(
            code[:6] == place.code
            for k in ix.town_heads.get(rest[:2], ())
            for code, _ in ix.towns.get(rest[:k], ())
        )

    def _may_restart(self, place: Place, chain: dict, rest: str) -> bool:
        """A place contradicting the ones before starts the address anew (a migrant's home glued in front) when
        it is a province (a bare one after a county only as ``_ends_address`` says), or a full city or county
        name before any county was named, or the configured city's county; a bare stem only if a division name
        follows (湖南邵阳|杭州萧山…); 乐清市清远… is not 清远市."""
        if _NOTHING.match(rest) and self._in_city(chain):
            return False  # 嘉兴市海宁市桐乡市: the city's place named last, after another of its own, starts nothing
        local = place.code[:4] == self.city
        if place.level == "province":
            return place.rank < 2 or "county" not in chain or self._ends_address(chain, rest)
        if "county" in chain and not local:
            return False
        if "county" in chain and place.rank == 1 and place.level == "county":
            county = chain["county"][0]
            if self.ix.county_city.get(county) == self.ix.county_city.get(place.code):
                return False  # 瓯海区城区…: 城区 (downtown; 鹿城区 once) after a county of the same city
        if place.rank < 2:
            return True
        if place.level == "county":
            return self._starts_local(place, chain, rest)
        return ("county" not in chain or local) and self._names_next(rest)  # 镇远县|嘉兴|嘉兴市嘉善…

    def _ends_address(self, chain: dict, rest: str) -> bool:
        """Whether a province named after a county ends that address (a second address written after the
        first): only when another county of the configured city follows it with more after (…西湖区|浙江|海宁工人路),
        not when it ends the text (…西湖区浙江海宁) nor names the city again (…西湖区浙江杭州…, a repeat)."""
        if "county" not in chain:
            return False
        ix = self.ix
        return any(
            p.level == "county"
            and p.code[:4] == self.city
            and p.code != chain["county"][0]
            and not _NOTHING.match(rest[k:])
            for k in ix.place_heads.get(rest[:2], ())
            for p in ix.places.get(rest[:k], ())
        )

    def _in_city(self, chain: dict) -> bool:
        """The places named so far are inside the configured city."""
        return any(chain.get(level, ("",))[0][:4] == self.city for level in ("city", "county"))

    def _starts_local(self, place: Place, chain: dict, rest: str) -> bool:
        """A bare county stem after another place's county starts the address anew only when one of its towns
        or villages follows (江西上饶鄱阳县嘉善西塘…), never by itself (深圳龙岗区平湖… is not 平湖市)."""
        if "county" not in chain:
            return place.code[:4] == self.city
        town = self._prefix_town(rest, place.code, None)
        if town and town[1]:
            return True
        villages = self.ix.villages  # 四川荥经县|桐乡|中群村1组: one of its villages by its own name
        return any(
            any(c[:6] == place.code and r == 0 for c, r in villages.get(rest[:k], ()))
            for k in self.ix.village_heads.get(rest[:2], ())
            if k >= 3
        )

    def _prefix_town(self, s: str, county: str | None, city: str | None, province: str | None = None):
        """(alias, [codes], rank) of the longest town name at the start of ``s`` inside the block."""
        towns = self.ix.towns
        for k in self.ix.town_heads.get(s[:2], ()):
            cands = towns.get(s[:k])
            if not cands:
                continue
            if county:
                mine = [(c, r) for c, r in cands if c[:6] == county]
            elif city:
                mine = [(c, r) for c, r in cands if c[:4] == city]
            else:
                mine = [(c, r) for c, r in cands if c[:2] == province and r < 2]
            if not mine:
                continue
            best = min(r for _, r in mine)
            if best == 2 and (_NOT_AFTER_STEM.match(s[k:]) or self._road_at(s)):
                continue
            return s[:k], sorted({c for c, r in mine if r == best}), best
        return None

    def _town(self, s: str, out: Parsed, chain: dict) -> str:
        county = chain.get("county", (None,))[0]
        city = chain.get("city", (None,))[0]
        prov = chain.get("province", (None,))[0]
        if (county and county[:2] != "33") or (not county and (city or prov or "33")[:2] != "33"):
            m = _TOWN_NAME.match(s) if county else None  # no towns known outside Zhejiang: the name only
            if m:
                out.town = m.group(0)
                return s[m.end() :]
            return s
        if not city and not county:
            city = self.city if (not prov or prov == self.province) else None
        hit = self._prefix_town(s, county, city if not county else None, prov)
        moved = False
        if not hit and county and (city or county[:4]):
            # the county written may be an old one (余杭区运河镇 is 临平区 now): any town of the city, by a name
            # with its suffix
            hit = self._prefix_town(s, None, city or self.ix.county_city.get(county), None)
            # a bare stem too when the county is written by a former name and the stem names one town of the
            # city (江干区下沙: 江干区 joined 上城区 in 2021, its 下沙街道 went to 钱塘区)
            former = self._former_name(out.county, county)
            hit = (
                hit
                if hit and len(hit[1]) == 1 and (hit[2] < 2 or former or self._stem_of_county(hit))
                else None
            )
            moved = bool(hit)
        if not hit and not county and not city and prov:
            hit = self._prefix_town(s, None, None, prov)
        if not hit:
            return s
        alias, codes, rank = hit
        out.town = alias
        if len(codes) == 1:
            out.town_code = codes[0]
            chain["town"] = (codes[0], rank + (1 if moved else 0))
        else:
            chain["town_ambiguous"] = ("", rank)
        return s[len(alias) :]

    def _repeat(self, s: str, out: Parsed, chain: dict) -> str:
        """A county and town written twice (建德市寿昌镇建德市寿昌镇…): the second copy is skipped."""
        for _ in range(3):
            for k in self.ix.place_heads.get(s[:2], ()):
                cands = self.ix.places.get(s[:k])
                same = [p for p in cands or () if chain.get(p.level, ("",))[0] == p.code]
                if same and not (all(p.rank == 2 for p in same) and self._stem_of_longer(s[k:])):
                    s = s[k:]  # 南湖区…南湖街5号: the stem begins the road's name, not a repeat
                    break
            else:
                hit = self._prefix_town(s, None, None, "33") if out.town_code else None
                if hit and out.town_code in hit[1]:
                    s = s[len(hit[0]) :]
                    continue
                return s
        return s

    def _road_at(self, s: str) -> bool:
        """Whether a door-plate road, written exactly or one character off, and its number start ``s``
        (石门北露5号 is 石门北路, not the town 石门; 东升南露10号 is 东升南路, not the community 东升)."""
        for road in self.road_heads.get(s[:2], ()):
            n = len(road)
            if s[n : n + 1].isdigit() and Levenshtein.distance(road, s[:n], score_cutoff=1) <= 1:
                return True
        return False

    def _stem_of_longer(self, rest: str) -> bool:
        """Whether a bare stem followed by ``rest`` is part of a longer name (萧山路, 城北村), not a division."""
        return bool(_NOT_AFTER_STEM.match(rest)) and not self._names_next(rest)

    def _context(self, out: Parsed, chain: dict) -> None:
        """County and city known so far (the configured city when the address names none), and outside."""
        county = out.town_code[:6] if out.town_code else (chain.get("county") or (None,))[0]
        prov = (chain.get("province") or (None,))[0]
        out.county_code = county
        out.city_code = self.ix.county_city.get(county or "") or (chain.get("city") or (None,))[0]
        if not out.city_code and prov in (None, self.province):
            out.city_code = self.city
        out.outside = bool((out.city_code and out.city_code != self.city) or (prov and prov != self.province))

    def _village_prefix(self, s: str, out: Parsed) -> str:
        """A village or community named at this point (…街道百福弄社区中山路…, …镇城北村梅家巷…)."""
        block = self._block(out)
        if not block:
            return s
        width, code = block
        villages = self.ix.villages
        for k in self.ix.village_heads.get(s[:2], ()):
            cands = villages.get(s[:k])
            if not cands:
                continue
            mine = [(c, r) for c, r in cands if c[:width] == code]
            if width == 4:
                mine = [(c, r) for c, r in mine if r < 2]
            if not mine:
                continue
            best = min(r for _, r in mine)
            codes = {c for c, r in mine if r == best}
            rest = s[k:]
            if best == 2 and ((_NOT_AFTER_STEM.match(rest) and not rest[:1].isdigit()) or self._road_at(s)):
                continue
            if len(codes) == 1:
                out.village, out.village_code = s[:k], codes.pop()
                out.confidence["village"] = CONFIDENCE[best] if width == 9 else CONFIDENCE[best] - 0.1
                return rest
            return s
        return s

    def _block(self, out: Parsed) -> tuple[int, str] | None:
        if out.town_code:
            return 9, out.town_code
        if out.county_code and out.county_code[:2] == "33":
            return 6, out.county_code
        city = out.city_code or (None if out.outside else self.city)  # nothing named: the configured city
        if city and city[:2] == "33":
            return 4, city
        return None

    def _village(self, text: str, out: Parsed) -> None:
        if not text:
            return
        out.village = text
        block = self._block(out)
        if not block:
            return
        width, code = block
        pool = {a: c for a, cands in self._candidates(text, width, code) for c in cands}
        found = None
        if out.group and not text.endswith(("村", "社区")):  # a 组 (production group) belongs to a 村
            found = pool.get(text + "村")
        found = found or pool.get(text)
        if found is None and width >= 6:  # a typo: the one name of the block one character away
            names = self._names_in(width, code)
            near = _near(text, names)
            found = names[near] if near else None
            out.fuzzy = out.fuzzy or bool(near)
        if found:
            out.village_code = found
            out.confidence["village"] = 0.7 if out.fuzzy else 0.9

    def _candidates(self, text: str, width: int, code: str):
        for alias in (text, text + "村"):
            mine = [(c, r) for c, r in self.ix.villages.get(alias, ()) if c[:width] == code]
            best = {c for c, r in mine if r == min((r for _, r in mine), default=0)}
            if len(best) == 1:  # a village's own name outranks a variant of another's (长秦村 vs 长秦社区)
                yield alias, best

    def _shorts_by_block(self, width: int) -> dict[str, list[tuple[str, str]]]:
        """(code, short name) of the villages by the first ``width`` digits of their code, in index order."""
        by = self.__dict__.setdefault("_shorts_cache", {})
        if width not in by:
            blocks: dict[str, list[tuple[str, str]]] = defaultdict(list)
            for c, short in self.ix.village_short.items():
                blocks[c[:width]].append((c, short))
            by[width] = dict(blocks)
        return by[width]

    def _names_in(self, width: int, code: str) -> dict[str, str]:
        key = (width, code)
        cache = self.__dict__.setdefault("_names_cache", {})
        if key not in cache:
            names: dict[str, set[str]] = defaultdict(set)
            for c, short in self._shorts_by_block(width).get(code, ()):
                names[short].add(c)
                bare = re.sub(r"(?:社区|村)$", "", short)
                if len(bare) >= 3:  # 界径港 for 界泾港村: a typo in the name written without 村
                    names[bare].add(c)
            cache[key] = {a: next(iter(cs)) for a, cs in names.items() if len(cs) == 1}
        return cache[key]

    def _road(self, s: str, out: Parsed, local: bool) -> str:
        town = out.town_code or ""
        known = self.roads_of_town.get(town) if town and local else None
        road = None
        if self._learned and local:
            names = known or self.roads
            road = next((s[:k] for k in self.road_lengths.get(s[:2], ()) if s[:k] in names), None)
        if road:
            out.road, s = road, s[len(road) :]
        else:  # a typo in the road's name: the one known road of the block one character away
            pool = (
                (known or self.roads_of_county.get(out.county_code or "", self.roads))
                if self._learned and local
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
            hit = _by_complex(cands, out.complex, out.number is None)
            if hit and len(cands) > 1 and out.complex and hit[2] != out.complex:
                out.fuzzy = True
            if hit:
                out.entity_id, out.village_code = hit[0], hit[1]
                out.confidence["entity"] = 0.9 if out.fuzzy else 1.0
                out.confidence["village"] = out.confidence["entity"]
        elif out.village_code and out.group and out.number:
            hit = self.rural.get((out.village_code, out.group, out.number))
            if hit:
                out.entity_id = hit[0]
                out.confidence["entity"] = 1.0

    def _finish(self, out: Parsed, chain: dict) -> None:
        """Codes of the levels above the deepest one found, confidences, outside, and why it stopped."""
        conf = out.confidence
        for level in ("province", "city", "county", "town"):
            if level in chain and chain[level][0]:
                conf[level] = CONFIDENCE[min(chain[level][1], 2)] - (0.1 if chain[level][1] > 2 else 0)
        deepest = out.village_code or out.town_code or (chain.get("county") or ("",))[0]
        if out.village_code:
            out.town_code = out.village_code[:9]
            conf.setdefault("town", conf["village"])
        if out.town_code:
            if out.county_code != out.town_code[:6] and "county" in conf:
                conf["county"] = min(conf["county"], conf["town"])  # the county written was not the town's
            out.county_code = out.town_code[:6]
            conf.setdefault("county", conf["town"])
        elif "county" in chain:
            out.county_code = chain["county"][0]
        city = self.ix.county_city.get(out.county_code or "") or (chain.get("city") or (None,))[0]
        if city is None and "province" in chain and chain["province"][0] in address_index.MUNICIPALITIES:
            city = chain["province"][0] + "01"
        out.city_code = city
        out.province_code = (city or (chain.get("province") or ("",))[0] or "")[:2] or None
        for level, code in (("city", out.city_code), ("province", out.province_code)):
            if code and level not in conf:
                conf[level] = max(
                    (v for k, v in conf.items() if k in ("county", "town", "village")), default=0.8
                )
        if out.county_code and out.county:
            out.county = out.county or self.county_name.get(out.county_code)
        out.outside = bool(
            (out.city_code and out.city_code != self.city)
            or (out.province_code and out.province_code != self.province)
        )
        if out.village_code:
            out.stop_reason = None
        elif not deepest and not out.city_code and not out.province_code:
            out.stop_reason = "no_place_named"
        elif not out.county_code:
            out.stop_reason = "county_not_found"
        elif (out.county_code or "")[:2] != "33":
            out.stop_reason = "no_deeper_divisions"  # towns and villages are known for Zhejiang only
        elif not out.town_code:
            out.stop_reason = "town_ambiguous" if "town_ambiguous" in chain else "town_not_found"
        else:
            out.stop_reason = "village_not_found"


def standard(parser: "AddressParser", p: Parsed) -> str:
    """The standard form of a parsed address: official county and town names, then the place."""
    return standard_place(parser, p.__dict__) + standard_flat(p.building, p.unit, p.room)


def standard_place(parser: "AddressParser", f: dict) -> str:
    """The standard form without the flat, from the fields of a parse."""
    parts = [
        parser.county_name.get(f["county_code"] or "", ""),
        parser.town_name.get(f["town_code"] or "", ""),
    ]
    if f["road"]:
        parts += [f["road"], f"{f['number']}号" if f["number"] else "", f["complex"] or ""]
    elif f["group"]:
        village = parser.village_short.get(f["village_code"] or "", f["village"] or "")
        parts += [village, f"{f['group']}组", f"{f['number']}号" if f["number"] else ""]
    return "".join(parts)


def standard_flat(building: str | None, unit: str | None, room: str | None) -> str:
    """The flat of the standard form: 3幢2单元301室."""
    if not building:
        return ""
    return f"{building}幢" + (f"{unit}单元" if unit else "") + (f"{room}室" if room else "")


def points_of(conn) -> list[tuple[str, str, str]]:
    """The gazetteer's door plates in ``core.geo_entity`` (none if that table is missing)."""
    if not conn.execute("select to_regclass('core.geo_entity')").fetchone()[0]:
        return []
    return conn.execute(
        "select entity_id, village_code, address from core.geo_entity"
        " where entity_type = 'address_point' order by entity_id"
    ).fetchall()


def from_warehouse(conn) -> AddressParser:
    """A parser with the gazetteer of ``core.geo_entity`` (divisions only if that table is empty or missing)."""
    return AddressParser(points=points_of(conn))


def _by_complex(cands: list[tuple[str, str, str | None]], complex_: str | None, by_name: bool = False):
    """The door plate among those of one road and number: the only one, or the one whose complex (小区) is
    named, exactly or with a typo. Without a number (``by_name``) the complex must always match."""
    if len(cands) <= 1 and not by_name:
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
