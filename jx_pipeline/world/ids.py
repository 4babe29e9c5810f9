"""Identity numbers as departments see them: resident IDs (GB 11643, with 15-digit legacy forms) and
unified social credit codes (GB 32100). Check characters come from python-stdnum.
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path

import numpy as np
import stdnum
from stdnum.cn import ric, uscc

from jx_pipeline.lib.standardize import credit_code_check

# Birth-place code of a Jiaxing county valid in a birth year (python-stdnum cn/loc.dat ranges).
_JIAXING_CODES = {
    "330402": [(1983, "332102"), (9999, "330402")],
    "330411": [(1981, "332121"), (1983, "332102"), (9999, "330411")],
    "330421": [(1983, "332122"), (9999, "330421")],
    "330424": [(1983, "332125"), (9999, "330424")],
    "330481": [(1983, "332124"), (1986, "330423"), (1988, "339002"), (9999, "330481")],
    "330482": [(1983, "332123"), (1991, "330422"), (9999, "330482")],
    "330483": [(1983, "332126"), (1993, "330425"), (9999, "330483")],
}
# Provinces most migrants to Jiaxing come from: Anhui, Henan, Sichuan, Jiangxi, Hubei, Hunan, Guizhou, Jiangsu.
MIGRANT_PROVINCES = ("34", "41", "51", "36", "42", "43", "52", "32")


def birthplace_code(county: str, year: int) -> str:
    return next(code for last, code in _JIAXING_CODES[county] if year <= last)


@lru_cache(maxsize=1)
def _county_ranges() -> list[tuple[str, int, int]]:
    """(code, first year, last year) of every county-level code in python-stdnum's cn/loc.dat."""
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
            span = re.match(r"\[(\d*)-(\d*)\]", part)
            first, last = (int(span[1] or 0), int(span[2] or 9999)) if span else (0, 9999)
            out.append((code, first, last))
    return out


@lru_cache(maxsize=256)
def migrant_codes(year: int) -> tuple[str, ...]:
    """Birth-place codes in the migrant provinces that python-stdnum accepts for a birth year."""
    return tuple(sorted({c for c, a, b in _county_ranges() if c[:2] in MIGRANT_PROVINCES and a <= year <= b}))


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
