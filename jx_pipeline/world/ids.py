"""Identity numbers as departments see them: resident IDs (GB 11643, with 15-digit legacy forms) and
unified social credit codes (GB 32100). Check characters come from python-stdnum.
"""

from __future__ import annotations

import re
from functools import cache, lru_cache
from pathlib import Path

import numpy as np
import pandas as pd
import stdnum
from stdnum.cn import ric, uscc

from jx_pipeline.lib.settings import DATA_DIR
from jx_pipeline.lib.standardize import credit_code_check

CHINA_DIVISIONS = DATA_DIR / "china_divisions"

# The codes each Jiaxing county carried over time, oldest first (their years come from python-stdnum's cn/loc.dat):
# the prefecture 嘉兴地区 (3321xx) became the city 嘉兴市 (3304xx) in 1983; 嘉兴县 merged into 嘉兴市 (332102) in
# 1981; 海宁 was a province-administered city (339002) 1986-1989; 平湖, 海宁, 桐乡 became cities in 1991/1989/1993.
JIAXING_LINEAGE = {
    "330402": ("332102", "330402"),
    "330411": ("332121", "332102", "330411"),
    "330421": ("332122", "330421"),
    "330424": ("332125", "330424"),
    "330481": ("332124", "330423", "339002", "330481"),
    "330482": ("332123", "330422", "330482"),
    "330483": ("332126", "330425", "330483"),
}
# Provinces most migrants to Jiaxing come from, with their share: Anhui, Henan, Sichuan, Jiangxi, Hubei, Hunan,
# Guizhou, Jiangsu.
MIGRANT_PROVINCES = {
    "34": 0.25,
    "41": 0.20,
    "51": 0.12,
    "36": 0.10,
    "42": 0.08,
    "43": 0.08,
    "52": 0.10,
    "32": 0.07,
}
FIRST_ISSUE = 1984  # first-generation resident ID cards (and their numbers) were issued from 1984 on
SECOND_GENERATION = 1999  # 18-digit numbers from 1999; numbers first issued before then had 15 digits
_SUFFIXES = ("自治县", "自治旗", "县", "市", "区", "旗")


@lru_cache(maxsize=1)
def _loc_entries() -> list[tuple[str, int, int, str]]:
    """(code, first year, last year, name) of every county-level code period in python-stdnum's cn/loc.dat."""
    path = Path(stdnum.__file__).parent / "cn" / "loc.dat"
    out, prov = [], None
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        if not line.startswith(" "):
            prov = line[:2]
            continue
        code = prov + line.strip()[:4]
        m = re.search(r'county="([^"]*)"', line)
        if code.endswith("00") or not m:
            continue
        for part in m.group(1).split(","):
            span = re.match(r"\[(\d*)-(\d*)\](.*)", part)
            if span:
                out.append((code, int(span[1] or 0), int(span[2] or 9999), span[3]))
            else:
                out.append((code, 0, 9999, part))
    return out


def _stem(name: str) -> str:
    return next((name[: -len(s)] for s in _SUFFIXES if name.endswith(s) and len(name) > len(s) + 1), name)


@cache
def _lineage(county: str) -> tuple[tuple[str, int, int], ...]:
    """Code periods (code, first, last) that stand for today's county ``county``: its own code's periods and, in
    the same province, codes once named like it (蒙城县 -> 蒙城市 keeps its stem). Jiaxing's from JIAXING_LINEAGE."""
    entries = _province_entries().get(county[:2], [])
    if county in JIAXING_LINEAGE:
        return tuple((c, a, b) for c, a, b, _ in entries if c in JIAXING_LINEAGE[county])
    stems = {s for c, _, _, s in entries if c == county}
    return tuple((c, a, b) for c, a, b, s in entries if c == county or s in stems)


@lru_cache(maxsize=1)
def _province_entries() -> dict[str, list[tuple[str, int, int, str]]]:
    """_loc_entries by province, with the name's stem in place of the name."""
    out: dict[str, list[tuple[str, int, int, str]]] = {}
    for c, a, b, n in _loc_entries():
        out.setdefault(c[:2], []).append((c, a, b, _stem(n)))
    return out


@cache
def issued_code(county: str, year: int) -> str | None:
    """The area code a number issued in ``year`` by today's county ``county`` carries (None if unknown).

    When codes change in a year both are valid then; the newer one is taken, then the county's own, then the
    one of the same city (first 4 digits)."""
    found = [(a, c == county, c[:4] == county[:4], c) for c, a, b in _lineage(county) if a <= year <= b]
    return max(found)[3] if found else None


@lru_cache(maxsize=1)
def migrant_counties() -> dict[str, tuple[str, ...]]:
    """Per migrant province, today's counties and county-level cities (NBS 2022) whose issuing code python-stdnum
    knows for every year numbers can have been issued in (FIRST_ISSUE to today)."""
    areas = pd.read_csv(CHINA_DIVISIONS / "areas.csv", dtype=str)
    rural = areas[areas.code.str[4].isin(("2", "8")) & areas.provinceCode.isin(MIGRANT_PROVINCES)]
    out: dict[str, list[str]] = {p: [] for p in MIGRANT_PROVINCES}
    for code, prov in zip(rural.code, rural.provinceCode, strict=True):
        if all(issued_code(code, y) for y in range(FIRST_ISSUE, 2027)):
            out[prov].append(code)
    return {p: tuple(sorted(v)) for p, v in out.items()}


def issue_year(birth_year: int, rollout: int, delay: int) -> int:
    """Year a person's number was first issued: the first card at 16 (+ ``delay``), not before the roll-out of
    first-generation cards (``rollout``, 1984-1990) for those already adult then; from 1999 on a child gets its
    number when registered at birth."""
    if birth_year >= SECOND_GENERATION:
        return birth_year
    return min(2026, max(birth_year + 16 + delay, rollout))


def resident_id(region: str, birth: str, seq: int) -> str:
    """18-digit ID: region (6), birth date YYYYMMDD, sequence (3, odd for men), check character."""
    body = f"{region}{birth}{seq:03d}"
    return body + ric.calc_check_digit(body + "0")


def legacy_id(id18: str) -> str:
    """The 15-digit first-generation form: no century, no check character."""
    return id18[:6] + id18[8:17]


def _org_code(rng: np.random.Generator, modern: bool) -> str:
    """9-character organisation code (GB 11714): 8 characters and a mod-11 check character."""
    chars = "0123456789"
    body = (
        ("MA" + "".join(rng.choice(list("0123456789ABCDEFGH"), 6)))
        if modern
        else "".join(rng.choice(list(chars), 8))
    )
    values = [int(c) if c.isdigit() else ord(c) - 55 for c in body]
    c9 = 11 - sum(v * w for v, w in zip(values, (3, 7, 9, 10, 5, 8, 4, 2), strict=True)) % 11
    return body + ("X" if c9 == 10 else "0" if c9 == 11 else str(c9))


def credit_code(rng: np.random.Generator, prefix: str, county: str, modern: bool) -> str:
    """Unified social credit code: authority + type (2), county (6), org code (9), check character.

    ``prefix`` '91' enterprise, '92' individual business, '93' farmer cooperative, '51'/'52'/'53' social
    organisations, '12' public institution, 'N2' rural collective (letter authority codes are valid in
    GB 32100 but rejected by python-stdnum, which expects digits in the first 8 places).
    """
    body = f"{prefix}{county}{_org_code(rng, modern)}"
    return body + (uscc.calc_check_digit(body + "0") if body[:2].isdigit() else credit_code_check(body))
