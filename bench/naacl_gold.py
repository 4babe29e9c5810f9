"""Gold codes for the NAACL-2019 Chinese address-parsing corpus, by simple name rules of the bench's own.

The corpus labels spans of each address (prov, city, district, town, community …) but gives no codes. To score
parsers by code, every labelled place name is looked up in the NBS 2022 divisions (jx_pipeline/data/china_divisions)
with rules that are deliberately plain and independent of our parser, so that the parser is not graded by itself:

- a name matches a unit of its level when the names are equal after dropping committee words (村委会, 居委会,
  村民委员会, 居民委员会), or else when they are equal without the level suffix (区/县/市, 街道/镇/乡, 村/社区 …);
- only units inside the parent already found count (codes nest: a town's code starts with its county's);
  without a parent the scope is the whole table (China for counties, Zhejiang for towns), except that a village
  is only looked up inside a city, county or town found above it; a name above that is ambiguous still narrows
  the scope to the deepest unit its candidates share (重庆市: 50), and a city labelled as county or the reverse
  (建德市 labelled city) to that unit, without counting as gold for the level it was labelled;
- the match must be unique in that scope; an ambiguous or unknown name maps to nothing and is left out, and so
  is a level labelled twice with different units, or a county its labelled town has left since (see resolve).

The same rules turn the names cpca and jionlp return into codes, so all tools are scored alike.
"""

from __future__ import annotations

import csv
import re
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

LEVELS = ("prov", "city", "county", "town", "village")
# corpus label of each level
LABEL = {"prov": "prov", "city": "city", "county": "district", "town": "town", "village": "community"}
SUFFIXES = {
    "prov": ("壮族自治区", "回族自治区", "维吾尔自治区", "自治区", "特别行政区", "省", "市"),
    "city": ("自治州", "地区", "盟", "市"),
    "county": ("自治县", "区", "县", "市", "旗"),
    "town": ("街道", "镇", "乡"),
    "village": ("社区", "村"),
}
_AUTONOMOUS = re.compile(r"^(.{2,}?)(?:[^族]{1,5}族)+自治(?:县|州|旗)$")
MUNICIPALITIES = ("11", "12", "31", "50")  # their cities.csv rows are named 市辖区 / 县


@dataclass
class Address:
    """One corpus address: its text and its labelled spans in order, (label, text)."""

    text: str
    spans: list[tuple[str, str]]
    source: str  # file:ordinal, to find it again in the corpus

    def labelled(self, label: str) -> list[str]:
        """The distinct texts labelled ``label``, in order."""
        return list(dict.fromkeys(t for lab, t in self.spans if lab == label))


def read_corpus(path: Path) -> Iterator[Address]:
    """The addresses of one corpus file: a token and a BIO label per line, blank lines between addresses."""
    tokens: list[tuple[str, str]] = []
    n = 0
    with path.open(encoding="utf-8") as f:
        for lineno, line in enumerate([*f, ""], 1):
            line = line.rstrip("\n")
            if line.strip():
                token, sep, label = line.rpartition(" ")
                if not sep or not (label == "O" or label[:2] in ("B-", "I-")):
                    raise ValueError(f"{path}:{lineno}: expected '<token> <BIO label>', got {line!r}")
                tokens.append((token, label))
                continue
            if tokens:
                n += 1
                yield _address(tokens, f"{path.name}:{n}")
                tokens = []


def _address(tokens: list[tuple[str, str]], source: str) -> Address:
    spans: list[list[str]] = []
    for token, label in tokens:
        if label.startswith("I-") and spans and spans[-1][0] == label[2:]:
            spans[-1][1] += token
        elif label != "O":
            spans.append([label[2:], token])
    return Address("".join(t for t, _ in tokens), [(a, b) for a, b in spans], source)


def full_form(name: str, level: str) -> str:
    """The name without committee words: 清波门社区居委会 -> 清波门社区, 高桥村村委会 / 高桥村民委员会 -> 高桥村."""
    name = name.strip()
    if level == "village":
        for word, adds in (("村民委员会", "村"), ("居民委员会", ""), ("村委会", "村"), ("居委会", "")):
            if name.endswith(word) and len(name) > len(word):
                rest = name[: -len(word)]
                return rest if rest.endswith(adds) else rest + adds
    if level == "town" and name.endswith("办事处"):
        return name[: -len("办事处")]
    return name


def base_form(name: str, level: str) -> str:
    """The full form without its level suffix, if at least two characters remain: 富阳市 -> 富阳, 闲林街道 -> 闲林,
    景宁畲族自治县 -> 景宁 (an autonomous unit loses its peoples too)."""
    name = full_form(name, level)
    if m := _AUTONOMOUS.match(name):
        return m[1]
    for suffix in SUFFIXES[level]:
        if name.endswith(suffix) and len(name) - len(suffix) >= 2:
            return name[: -len(suffix)]
    return name


@dataclass
class Lookup:
    """The outcome of looking one name up: a code, or why not ("ambiguous", "unknown")."""

    code: str | None
    why: str = "ok"
    # a left-out label's NBS 2022 unit, or the code prefix its candidates share: it still narrows the scope
    place: str | None = None


@dataclass
class Divisions:
    """NBS units by level (code -> name) with indexes by full and by base form."""

    names: dict[str, dict[str, str]]
    _full: dict[str, dict[str, list[str]]] = field(default_factory=dict)
    _base: dict[str, dict[str, list[str]]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for level, units in self.names.items():
            full, base = defaultdict(list), defaultdict(list)
            for code, name in units.items():
                full[full_form(name, level)].append(code)
                base[base_form(name, level)].append(code)
            self._full[level], self._base[level] = dict(full), dict(base)

    @classmethod
    def load(cls, folder: Path) -> Divisions:
        def read(file: str) -> dict[str, str]:
            with (folder / file).open(encoding="utf-8", newline="") as f:
                return {r["code"]: r["name"] for r in csv.DictReader(f)}

        return cls(
            {
                "prov": read("provinces.csv"),
                "city": read("cities.csv"),
                "county": read("areas.csv"),
                "town": read("zhejiang_streets.csv"),
                "village": read("zhejiang_villages.csv"),
            }
        )

    def lookup(self, level: str, name: str | None, parent: str = "") -> Lookup | None:
        """The unique unit of ``level`` inside ``parent`` (a code prefix, "" = anywhere) named ``name``."""
        if not name or not name.strip():
            return None
        for index, form in ((self._full, full_form), (self._base, base_form)):
            codes = [c for c in index[level].get(form(name, level), ()) if c.startswith(parent)]
            if len(codes) == 1:
                return Lookup(codes[0])
            if len(codes) > 1:
                return Lookup(None, "ambiguous", place=_shared(codes))
        if level == "city":  # 上海市: a municipality's one city row is named 市辖区
            prov = self.lookup("prov", name, parent[:2])
            if prov and prov.code in MUNICIPALITIES:
                codes = [c for c in self.names["city"] if c.startswith(prov.code)]
                return Lookup(codes[0]) if len(codes) == 1 else Lookup(None, "ambiguous", place=prov.code)
        return Lookup(None, "unknown")

    def resolve(self, names: dict[str, str | None]) -> dict[str, Lookup]:
        """Codes for a chain of names by level (prov … village), each looked up inside the deepest code found
        above it. Levels without a name are absent from the result.

        Towns move: 临平街道 left 余杭区 for the new 临平区 (2021), 龙港镇 of 苍南县 became 龙港市 (2019). When a
        town is not in the county found above it but is, uniquely, elsewhere in the city, or names a county-level
        unit of the city, the labels contradict NBS 2022: the county is left out ("stale": either answer is
        defensible) and the town taken where NBS 2022 puts it. (Villages are not moved so: a village name
        recurs too often in a county for a move to be told from a namesake.)"""
        out: dict[str, Lookup] = {}
        parent, parent_level = "", None
        for level in LEVELS:
            if level == "village" and len(parent) < 4:
                # never Zhejiang-wide: village names recur, and a village with no place above it may be elsewhere
                if names.get(level):
                    out[level] = Lookup(None, "no_parent")
                continue
            hit = self.lookup(level, names.get(level), parent)
            if hit is None:
                continue
            if hit.why == "unknown" and level in ("city", "county"):  # 建德市 labelled city: a county's name
                other = self.lookup("county" if level == "city" else "city", names[level], parent)
                if other.code or other.place:
                    hit = Lookup(None, "unknown", place=other.code or other.place)
            if hit.why == "unknown" and level == "town" and parent_level == "county":
                up = self.lookup(level, names[level], parent[:4])
                if up and up.code:
                    out["county"], hit = Lookup(None, "stale"), up
                else:
                    now = self.lookup("county", base_form(names[level], "town"), parent[:4])
                    if now and now.code and now.code != parent:  # a town made a county (龙港镇 -> 龙港市)
                        out["county"] = Lookup(None, "stale", place=now.code)
                        out["town"] = Lookup(None, "county_now", place=now.code)
                        parent, parent_level = now.code, "county"
                        continue
            out[level] = hit
            if hit.code:
                parent, parent_level = hit.code, level
            elif hit.place and hit.place.startswith(parent) and hit.why in ("ambiguous", "unknown"):
                parent = hit.place  # narrower, though no unit of this level: 江北区 is in 3302 or 5001
        return out

    def gold(self, address: Address) -> dict[str, Lookup]:
        """The gold codes of a corpus address: its labelled spans by level, resolved top down. A level with two
        spans naming different units (临平 … 南苑街道) is left out as ambiguous; the levels below it are then
        looked up in the unit above it."""
        names = {level: address.labelled(LABEL[level]) for level in LEVELS}
        first = {level: texts[0] if texts else None for level, texts in names.items()}
        split, stale = [], False
        for level, texts in names.items():
            if len(texts) > 1:
                each = [self.resolve(first | {level: t}) for t in texts]
                codes = {r.get(level, Lookup(None)).code for r in each}
                if len(codes) > 1 or None in codes:
                    split.append(level)
                    # 余杭区临平镇星桥街道: both towns have left the county, whichever is meant
                    stale |= level == "town" and all(r.get("county", Lookup("")).why == "stale" for r in each)
        out = self.resolve({level: None if level in split else name for level, name in first.items()})
        out |= {level: Lookup(None, "ambiguous") for level in split}
        if stale:
            out["county"] = Lookup(None, "stale")
        return out


def _shared(codes: list[str]) -> str:
    """The deepest unit (province, city, county, town) all ``codes`` lie in, or ""."""
    for width in (9, 6, 4, 2):
        if len({c[:width] for c in codes}) == 1:
            return codes[0][:width]
    return ""


def city_of(codes: dict[str, Lookup]) -> str | None:
    """The 4-digit city of the deepest level that resolved at or below city, or None."""
    for level in ("city", "county", "town", "village"):
        hit = codes.get(level)
        code = hit and (hit.code or hit.place)
        if code and len(code) >= 4:
            return code[:4]
    return None
