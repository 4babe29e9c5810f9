"""Standard forms of the values departments write in many ways: resident IDs, credit codes, phones, dates.

Each function returns ``(value, reason)``: the standard value, or None with a short reason code that the staged
layer writes to ``quality.rejects``. Checks come from python-stdnum where it has them; where real data needs
otherwise (the area codes of resident IDs, credit codes of letter authorities) the function says how and why.
Tested against the standards' worked examples and outside vectors in ``test_standardize_vectors.py``.
"""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta
from functools import cache

from stdnum import numdb
from stdnum.cn import ric, uscc

# full-width forms, and × typed for the X of a resident ID
_FULLWIDTH = str.maketrans(
    "０１２３４５６７８９Ｘｘ×ＡＢＣＤＥＦＧＨＪＫＬＭＮＰＱＲＴＵＷＹ", "0123456789XXXABCDEFGHJKLMNPQRTUWY"
)
_SPACES = re.compile(r"[\s\u3000\-_]+")
USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"

Result = tuple[str | None, str | None]


def _clean(value: object) -> str:
    return _SPACES.sub("", str(value)).translate(_FULLWIDTH).upper() if value is not None else ""


# Birth dates an ID may carry: real calendar dates, not after the day the record was delivered (today when not
# given), not before anyone alive when resident IDs were first issued (1984) could have been born.
ID_EARLIEST_BIRTH = date(1880, 1, 1)


@cache
def _birth_date(yyyymmdd: str) -> date | None:
    """``ric.get_birth_date``'s rule (a real calendar date) without its string cleaning, which was a third of
    staging's time on ID feeds; ``test_standardize_vectors`` checks both agree."""
    try:
        born = date(int(yyyymmdd[:4]), int(yyyymmdd[4:6]), int(yyyymmdd[6:8]))
    except ValueError:
        return None
    return born if born >= ID_EARLIEST_BIRTH else None


_SPAN = re.compile(r"\[(\d*)-(\d*)\]")


@cache
def area_code_years(area: str) -> tuple[tuple[int, int], ...]:
    """The (first, last) years in which a 6-digit area code was in use, from python-stdnum's cn/loc table;
    ``()`` when the table knows no county-, city- or province-level unit with that code (only its province at
    best). Codes listed without years were in use throughout the table (first 0, last 9999)."""
    county = next((p["county"] for _, p in numdb.get("cn/loc").info(area) if "county" in p), None)
    return () if county is None else county_years(county)


def county_years(county: str) -> tuple[tuple[int, int], ...]:
    """The (first, last) years of each name in a cn/loc ``county`` entry ("[1986-]房山区,[-1986]…")."""
    spans = []
    for name in county.split(","):
        m = _SPAN.match(name)
        spans.append((int(m[1] or 0), int(m[2] or 9999)) if m else (0, 9999))
    return tuple(spans)


@cache
def _area_code_ok(area: str, year: int) -> bool:
    """An ID carries the code of the county that ISSUED it, at the issue date: the birth year or any year after
    (first IDs at 16, re-registration after a move, 15 -> 18 upgrades in 1999-2004). So a code is right when it
    was in use in some year from the birth year on, including codes retired since (the ID stays valid).

    Deviation from python-stdnum: ``ric.get_birth_place`` requires the code to be in use IN the birth year, which
    rejects e.g. 330481 (海宁市, since 1986/89) for everyone born before, i.e. most IDs of older residents;
    python-stdnum issue #442 reports these false rejections. Codes the table does not know at county level
    (only the province matches, where stdnum raises KeyError) never existed: rejected as before."""
    return any(last >= year for _first, last in area_code_years(area))


def resident_id_form(value: object) -> Result:
    """The 18 characters of a resident ID when its form is right (length, digits, check character); 15-digit
    first-generation IDs are upgraded (19xx births). Dates and area codes are left to ``resident_id``."""
    # an ID as most systems write it (18 ASCII letters and digits) needs no cleaning but the case of its X
    if type(value) is str and len(value) == 18 and value.isascii() and value.isalnum():
        v = value.upper()
    else:
        v = _clean(value)
    if not v:
        return None, "id_empty"
    if len(v) == 15 and v.isascii() and v.isdigit():
        body = v[:6] + "19" + v[6:]
        v = body + ric.calc_check_digit(body + "0")
    if len(v) != 18:
        return None, "id_length"
    if not (v[:17].isascii() and v[:17].isdigit()):  # ² and ① are digits to str.isdigit
        return None, "id_format"
    if v[17] != ric.calc_check_digit(v):
        return None, "id_checksum"
    return v, None


def resident_id(value: object, latest: date | None = None) -> Result:
    """An 18-character resident ID (GB 11643); 15-digit first-generation IDs are upgraded (19xx births).

    The checks of ``stdnum.cn.ric.validate`` in its order (length, format, check character, birth date, area
    code), memoized, with two changes: the birth date must also be plausible (``ID_EARLIEST_BIRTH`` to
    ``latest``, the landing day in the staged layer, default today) and the area code is checked against the
    years it could have been issued (``_area_code_ok``). Reason ``id_birth_place`` (name kept for stable
    reports) means the area code was never in use from the birth year on."""
    v, reason = resident_id_form(value)
    if v is None:
        return None, reason
    born = _birth_date(v[6:14])
    if born is None or born > (latest or date.today()):
        return None, "id_birth_date"
    if not _area_code_ok(v[:6], int(v[6:10])):
        return None, "id_birth_place"
    return v, None


def credit_code_check(body: str) -> str:
    """GB 32100 check character of 17 characters; letters are allowed anywhere (authority codes such as N)."""
    total = sum(USCC_ALPHABET.index(c) * pow(3, i, 31) for i, c in enumerate(body))
    return USCC_ALPHABET[(31 - total) % 31]


def credit_code(value: object) -> Result:
    """An 18-character unified social credit code (GB 32100): registration authority (1), entity type (1),
    area code (6 digits), organisation code (9), check character. python-stdnum checks codes whose first 8 places
    are digits; codes of letter authorities (N… agriculture: rural collectives, Y… others such as trade unions)
    are valid in GB 32100 but rejected by stdnum, so they are checked here with the same weights."""
    v = _clean(value)
    if not v:
        return None, "credit_code_empty"
    if len(v) != 18:
        return None, "credit_code_length"
    if any(c not in USCC_ALPHABET for c in v) or not v[2:8].isdigit():
        return None, "credit_code_format"
    if v[:8].isdigit():
        return (v, None) if uscc.is_valid(v) else (None, "credit_code_checksum")
    return (v, None) if credit_code_check(v[:17]) == v[17] else (None, "credit_code_checksum")


# Where the feeds come from: an 8-digit local number written without its area code is a Jiaxing number.
LOCAL_AREA_CODE = "0573"
# China's numbering plan: mobile numbers 1[3-9]x + 8 digits; area codes 010 and 02x with 8-digit local numbers,
# 03xx-09xx with 7- or 8-digit local numbers (which never start with 0 or 1); 400/800 service numbers.
_MOBILE = re.compile(r"1[3-9]\d{9}")
_LANDLINE = re.compile(r"0(?:10|2\d)[2-9]\d{7}|0[3-9]\d{2}[2-9]\d{6,7}")
_SERVICE = re.compile(r"[48]00\d{7}")
_PHONE_SPLIT = re.compile(r"[/,;，；、|]|或")  # several numbers in one cell
_EXTENSION = re.compile(r"(?:转|分机|ext\.?|x|#).*$", re.IGNORECASE)


def _national(digits: str, international: bool) -> str | None:
    if international and digits[:1] != "0" and not (_MOBILE.fullmatch(digits) or _SERVICE.fullmatch(digits)):
        digits = "0" + digits  # +86 573 ... drops the trunk 0
    if len(digits) == 8 and digits[0] in "23456789":
        digits = LOCAL_AREA_CODE + digits
    ok = _MOBILE.fullmatch(digits) or _LANDLINE.fullmatch(digits) or _SERVICE.fullmatch(digits)
    return digits if ok else None


def _one_phone(text: str) -> str | None:
    groups = re.findall(r"\d+", _EXTENSION.sub("", text.replace("(0)", "")))
    international = text.lstrip().startswith("+") or groups[:1] in (["86"], ["0086"])
    if groups[:1] in (["86"], ["0086"]):
        groups = groups[1:]
    # the whole number, or without a trailing group of 1-5 digits: an extension written after "-" or a space
    whole = ["".join(groups)] + (["".join(groups[:-1])] if len(groups) > 1 and len(groups[-1]) <= 5 else [])
    for digits in whole:
        number = _national(digits, international)
        for glued in ("0086", "86"):  # the country code glued to the number
            if number is None and digits.startswith(glued):
                number = _national(digits[len(glued) :], True)
        if number:
            return number
    return None


def phone(value: object) -> Result:
    """A mobile number (11 digits), a landline with its area code (0573 + 8 digits for Jiaxing), or a 400/800
    number, digits only. Takes what clerks write: +86 / 0086 / 86 in front, (0573), separators, an extension after
    转 / 分机 / ext / - (dropped: the line is the number), several numbers in one cell (the first valid one)."""
    if type(value) is str and _MOBILE.fullmatch(value) and value.isascii():  # the common case, as below
        return value, None
    text = str(value).translate(_FULLWIDTH).strip() if value is not None else ""
    if not re.search(r"\d", text):  # blank, or words such as 无 / 电联 in place of a number
        return None, "phone_empty"
    for part in _PHONE_SPLIT.split(text):
        if (number := _one_phone(part)) is not None:
            return number, None
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
# year, month, day with any one separator (2024/3/7, 2024年3月7日, 2024.3.7), or run together (20240307); then
# optionally a time part (after a space, T, or directly after 日/号). Day-first and two-digit years are ambiguous
# and stay unparseable.
_LOOSE = re.compile(r"^(\d{4})\D(\d{1,2})\D(\d{1,2})[日号]?(?:[\sT].*|(?<=[日号])\d.*)?$")
_COMPACT = re.compile(r"^(\d{4})(\d{2})(\d{2})(?:[\sT].*)?$")
# Spreadsheet serial numbers (days since 1899-12-30, Excel's 1900 date system): 39 feeds arrive as .xlsx, and a
# date cell formatted as a number (a sheet pasted as values) reaches us as e.g. "32875" or "32875.5". Only
# 5-digit serials (1927-05-18 .. 2173) are taken: 4 digits would be confused with a bare year.
_SERIAL = re.compile(r"^(\d{5})(?:\.\d+)?$")
_SERIAL_EPOCH = date(1899, 12, 30)


# CPython's strptime grammar (Lib/_strptime.py, TimeRE) for the directives of the feeds' date formats: a value
# this reads is read by strptime the same way (test_standardize checks it), at a fraction of strptime's cost
# (which was most of staging's time on date columns, a value failing several formats before one fits).
_STRPTIME = {
    "Y": r"(?P<Y>\d\d\d\d)",
    "m": r"(?P<m>1[0-2]|0[1-9]|[1-9])",
    "d": r"(?P<d>3[0-1]|[1-2]\d|0[1-9]|[1-9]| [1-9])",
    "H": r"(?P<H>2[0-3]|[0-1]\d|\d)",
    "M": r"(?P<M>[0-5]\d|\d)",
    "S": r"(?P<S>6[0-1]|[0-5]\d|\d)",
}
_REGEX_CHARS = re.compile(r"([\\.^$*+?\(\){}\[\]|])")


@cache
def _format_regex(fmt: str) -> tuple[re.Pattern, bool] | None:
    """strptime's regex for a format of year, month, day (and time) only, and whether it reads seconds; None for
    a format with other directives."""
    parts = re.split(r"(%.)", fmt)
    if not {"%Y", "%m", "%d"} <= set(parts):
        return None
    out = []
    for part in parts:
        if part.startswith("%") and len(part) == 2:
            if part[1] not in _STRPTIME:
                return None
            out.append(_STRPTIME[part[1]])
        elif "%" in part:  # a stray or trailing %: strptime's error is the one to give
            return None
        else:
            out.append(re.sub(r"\s+", r"\\s+", _REGEX_CHARS.sub(r"\\\1", part)))
    return re.compile("".join(out), re.IGNORECASE), "%S" in parts


def _by_format(v: str, fmt: str) -> date | None:
    """``datetime.strptime(v, fmt).date()`` for the formats ``_format_regex`` reads; None where that raises."""
    rx, seconds = _format_regex(fmt)
    m = rx.match(v)
    if m is None or m.end() != len(v):  # strptime: "unconverted data remains"
        return None
    if seconds and int(m["S"]) > 59:  # the grammar reads leap seconds, datetime refuses them
        return None
    try:
        return date(int(m["Y"]), int(m["m"]), int(m["d"]))
    except ValueError:
        return None


def _strptime_date(v: str, fmt: str) -> date | None:
    """``datetime.strptime(v, fmt).date()``, None where that raises; through strptime's grammar when it can."""
    if _format_regex(fmt) is not None:
        return _by_format(v, fmt)
    try:
        return datetime.strptime(v, fmt).date()
    except ValueError:
        return None


def parse_date(
    value: object,
    declared: str | None = None,
    *,
    earliest: date = date(1900, 1, 1),
    latest: date | None = None,
) -> Result:
    """An ISO date from the feed's declared format, the other formats feeds use, y/m/d with any separators
    (with or without a time), or a spreadsheet serial number; then within [earliest, latest]."""
    v = str(value).strip().translate(_FULLWIDTH) if value is not None else ""
    if not v:
        return None, "date_empty"
    parsed = None
    for fmt in ((declared,) if declared else ()) + _DATE_FORMATS:
        if (parsed := _strptime_date(v, fmt)) is not None:
            break
    if parsed is None and (m := _SERIAL.match(v)):
        parsed = _SERIAL_EPOCH + timedelta(days=int(m[1]))
    if parsed is None:
        m = _LOOSE.match(v) or _COMPACT.match(v)
        if not m:
            return None, "date_unparseable"
        try:
            parsed = date(int(m[1]), int(m[2]), int(m[3]))
        except ValueError:
            return None, "date_impossible"
    if parsed < earliest or parsed > (latest or date.today()):
        return None, "date_out_of_range"
    return parsed.isoformat(), None
