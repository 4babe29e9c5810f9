"""Standard forms of the values departments write in many ways: resident IDs, credit codes, phones, dates.

Each function returns ``(value, reason)``: the standard value, or None with a short reason code that the staged
layer writes to ``quality.rejects``. Checks come from python-stdnum where it has them.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from functools import cache

from stdnum.cn import ric, uscc
from stdnum.exceptions import InvalidComponent

_FULLWIDTH = str.maketrans(
    "０１２３４５６７８９ＸｘＡＢＣＤＥＦＧＨＪＫＬＭＮＰＱＲＴＵＷＹ", "0123456789XXABCDEFGHJKLMNPQRTUWY"
)
_SPACES = re.compile(r"[\s\u3000\-_]+")
USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"

Result = tuple[str | None, str | None]


def _clean(value: object) -> str:
    return _SPACES.sub("", str(value)).translate(_FULLWIDTH).upper() if value is not None else ""


@cache
def _birth_date_ok(yyyymmdd: str) -> bool:
    try:
        ric.get_birth_date("000000" + yyyymmdd + "0000")
    except InvalidComponent:
        return False
    return True


@cache
def _birth_place_ok(area: str, year: str) -> bool:
    """stdnum's table lookup (the costly part, ~0.3 ms) once per area code and birth year."""
    try:
        ric.get_birth_place(area + year + "01010000")
    except (InvalidComponent, KeyError):  # KeyError: the code is known only above county level
        return False
    return True


def resident_id(value: object) -> Result:
    """An 18-character resident ID (GB 11643); 15-digit first-generation IDs are upgraded (19xx births).

    The same checks as ``stdnum.cn.ric.validate`` in the same order, with its table lookups memoized."""
    v = _clean(value)
    if not v:
        return None, "id_empty"
    if len(v) == 15 and v.isdigit():
        body = v[:6] + "19" + v[6:]
        v = body + ric.calc_check_digit(body + "0")
    if len(v) != 18:
        return None, "id_length"
    if not v[:17].isdigit():
        return None, "id_format"
    if v[17] != ric.calc_check_digit(v):
        return None, "id_checksum"
    if not _birth_date_ok(v[6:14]):
        return None, "id_birth_date"
    if not _birth_place_ok(v[:6], v[6:10]):
        return None, "id_birth_place"
    return v, None


def credit_code_check(body: str) -> str:
    """GB 32100 check character of 17 characters; letters are allowed anywhere (authority codes such as N)."""
    total = sum(USCC_ALPHABET.index(c) * pow(3, i, 31) for i, c in enumerate(body))
    return USCC_ALPHABET[(31 - total) % 31]


def credit_code(value: object) -> Result:
    """An 18-character unified social credit code. python-stdnum checks codes whose first 8 places are digits;
    codes of letter authorities (N… rural collectives, Y… trade unions) are checked against GB 32100 here."""
    v = _clean(value)
    if not v:
        return None, "credit_code_empty"
    if len(v) != 18:
        return None, "credit_code_length"
    if any(c not in USCC_ALPHABET for c in v):
        return None, "credit_code_format"
    if v[:8].isdigit():
        return (v, None) if uscc.is_valid(v) else (None, "credit_code_checksum")
    return (v, None) if credit_code_check(v[:17]) == v[17] else (None, "credit_code_checksum")


def phone(value: object) -> Result:
    """Mobile numbers (1[3-9] + 9 digits) and Jiaxing landlines (0573 + 7-8 digits), digits only."""
    v = re.sub(r"\D", "", _clean(value).removeprefix("+86"))
    if not v:
        return None, "phone_empty"
    if v.startswith("86") and len(v) == 13:
        v = v[2:]
    if re.fullmatch(r"1[3-9]\d{9}", v) or re.fullmatch(r"0\d{2,3}\d{7,8}", v):
        return v, None
    return None, "phone_invalid"


_DATE_FORMATS = (
    "%Y-%m-%d",
    "%Y%m%d",
    "%Y/%m/%d",
    "%Y年%m月%d日",
    "%Y.%m.%d",
    "%Y-%m-%d %H:%M:%S",
    "%Y/%m/%d %H:%M:%S",
    "%Y%m%d%H%M%S",
)
_LOOSE = re.compile(r"^(\d{4})\D(\d{1,2})\D(\d{1,2})\D?(?:\s.*)?$")


def parse_date(
    value: object,
    declared: str | None = None,
    *,
    earliest: date = date(1900, 1, 1),
    latest: date | None = None,
) -> Result:
    """An ISO date from the feed's declared format, the other formats feeds use, or y/m/d with any separators."""
    v = str(value).strip().translate(_FULLWIDTH) if value is not None else ""
    if not v:
        return None, "date_empty"
    parsed = None
    for fmt in ((declared,) if declared else ()) + _DATE_FORMATS:
        try:
            parsed = datetime.strptime(v, fmt).date()
            break
        except ValueError:
            continue
    if parsed is None:
        m = _LOOSE.match(v)
        if not m:
            return None, "date_unparseable"
        try:
            parsed = date(int(m[1]), int(m[2]), int(m[3]))
        except ValueError:
            return None, "date_impossible"
    if parsed < earliest or parsed > (latest or date.today()):
        return None, "date_out_of_range"
    return parsed.isoformat(), None
