"""Canonical fields in the staged layer: each one's SQL type and the function that standardizes a raw value.

A feed maps its source columns to these fields in the catalog; the staged table has one typed column per mapped
field, named by the field. Each standardizer returns ``(value, reason)``: the typed value, or None with a reason
code (None and no reason when the source left the value empty).
"""

import re
from collections.abc import Callable
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation
from functools import lru_cache

from jx_pipeline.lib import standardize as std

Standardizer = Callable[[str | None], tuple[object, str | None]]

SQL_TYPE = {
    "record_key": "text not null",
    "birth_date": "date",
    "reg_date": "date",
    "event_date": "date",
    "period": "date",
    "reg_capital": "numeric",
    "amount": "numeric",
    "lon": "double precision",
    "lat": "double precision",
    "updated_at": "timestamp",
    "deleted": "boolean",
}
# Personal data: masked wherever a value leaves raw/staged (rejects, check samples).
PERSONAL = frozenset({"person_name", "id_number", "phone", "legal_rep_name", "legal_rep_id"})

_WS = re.compile(r"[\s\u3000]+")
# GB/T 2261.1 sex codes (1 男, 2 女; 0 未知的性别 and 9 未说明的性别 are valid codes that say "unknown": null,
# not a reject), the words, and the Latin letters some systems export.
_GENDER = {"男": "M", "女": "F", "1": "M", "2": "F", "M": "M", "F": "F", "男性": "M", "女性": "F"}
_GENDER |= {"MALE": "M", "FEMALE": "F"}
_GENDER_UNKNOWN = frozenset({"0", "9", "未知", "未说明", "未知的性别", "未说明的性别"})
_DELETED = {
    "0": False,
    "1": True,
    "N": False,
    "Y": True,
    "FALSE": False,
    "TRUE": True,
    "否": False,
    "是": True,
}
_NUMBER = str.maketrans("０１２３４５６７８９．－", "0123456789.-", ",，¥￥ ")
_BEIJING = timezone(timedelta(hours=8))
EARLIEST = {"birth_date": date(1900, 1, 1), "reg_date": date(1949, 10, 1), "event_date": date(1949, 10, 1)}


def sql_type(field: str) -> str:
    return SQL_TYPE.get(field, "text")


def mask(field: str, value: str | None) -> str | None:
    """Keeps the shape of a personal value for debugging, not the value: 330*************3X, 张**."""
    if value is None or field not in PERSONAL:
        return value
    if len(value) > 8:
        return value[:3] + "*" * (len(value) - 5) + value[-2:]
    return value[:1] + "*" * (len(value) - 1)


def text(value: str | None) -> tuple[str | None, str | None]:
    v = _WS.sub(" ", value).strip() if value else ""
    return (v or None), None


def _from_std(fn: Callable) -> Standardizer:
    def run(value: str | None):
        if value is None or not value.strip():
            return None, None
        return fn(value)

    return run


def gender(value: str | None):
    v = (value or "").strip().upper()
    if not v or v in _GENDER_UNKNOWN:
        return None, None
    return (_GENDER[v], None) if v in _GENDER else (None, "gender_invalid")


def deleted(value: str | None):
    v = (value or "").strip().upper()
    return (None, None) if not v else ((_DELETED[v], None) if v in _DELETED else (None, "deleted_invalid"))


def change_type(value: str | None):
    v = (value or "").strip().upper()
    return (None, None) if not v else ((v, None) if v in ("I", "U", "D") else (None, "change_type_invalid"))


def amount(value: str | None):
    v = (value or "").translate(_NUMBER).removesuffix("万元").removesuffix("元")
    if not v:
        return None, None
    try:
        d = Decimal(v)
    except InvalidOperation:
        return None, "amount_invalid"
    if not d.is_finite():
        return None, "amount_invalid"
    return (None, "amount_negative") if d < 0 else (d, None)


# A month as written: 202403, 2024-03, 2024/3, 2024.3, 2024年3月, or a date in it (2024-03-01, 2024年3月1日).
_PERIOD = re.compile(
    r"^(\d{4})(?:(\d{2})(?:\d{2})?|\s*[-/.年]\s*(\d{1,2})\s*月?(?:\s*[-/.]?\s*\d{1,2}\s*[日号]?)?)(?:[\sT].*)?$"
)
_DIGITS = str.maketrans("０１２３４５６７８９", "0123456789")


def period(value: str | None):
    if not value or not value.strip():
        return None, None
    m = _PERIOD.match(value.strip().translate(_DIGITS))
    month = int(m[2] or m[3]) if m else 0
    if not 1 <= month <= 12 or not 1949 <= int(m[1]) <= 2100:
        return None, "period_invalid"
    return date(int(m[1]), month, 1), None


_SECONDS = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}[ T][0-9]{2}:[0-9]{2}:[0-9]{2}")
_SECONDS_AT = ((0, 4), (5, 7), (8, 10), (11, 13), (14, 16), (17, 19))


def timestamp(value: str | None):
    v = (value or "").strip()
    if not v:
        return None, None
    if _SECONDS.fullmatch(v):  # the common form, without strptime's cost (same result)
        try:
            return datetime(*(int(v[a:b]) for a, b in _SECONDS_AT)), None
        except ValueError:
            pass  # not a real time: the formats below decide
    for fmt in ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M:%S.%f", "%Y-%m-%dT%H:%M:%S", "%Y/%m/%d %H:%M:%S"):
        try:
            return datetime.strptime(v, fmt), None
        except ValueError:
            continue
    try:  # other ISO 8601 forms (no seconds, an offset): local Beijing time, as the other forms are
        t = datetime.fromisoformat(v)
        return (t.astimezone(_BEIJING).replace(tzinfo=None) if t.tzinfo else t), None
    except ValueError:
        pass
    day, _reason = std.parse_date(v, latest=date(2100, 1, 1))
    return (datetime.fromisoformat(day), None) if day else (None, "timestamp_invalid")


def latest_date(landing_day: date) -> date:
    """The latest date a value delivered on the landing day may carry (a day's margin for time zones)."""
    return landing_day + timedelta(days=1)


def standardizers(fields: list[str], declared_date: str, landing_day: date) -> dict[str, Standardizer]:
    """The standardizer of each mapped field for one feed and landing day (dates, including the birth dates in
    resident IDs, may not lie after that day)."""
    latest = latest_date(landing_day)

    def dates(field: str) -> Standardizer:
        return _from_std(lambda v: std.parse_date(v, declared_date, earliest=EARLIEST[field], latest=latest))

    table: dict[str, Standardizer] = {
        "id_number": _from_std(lambda v: std.resident_id(v, latest)),
        "legal_rep_id": _from_std(lambda v: std.resident_id(v, latest)),
        "credit_code": _from_std(std.credit_code),
        "phone": _from_std(std.phone),
        "gender": gender,
        "birth_date": dates("birth_date"),
        "reg_date": dates("reg_date"),
        "event_date": dates("event_date"),
        "period": period,
        "reg_capital": amount,
        "amount": amount,
        "updated_at": timestamp,
        "deleted": deleted,
        "change_type": change_type,
    }
    # the same value recurs across rows (dates, genders, codes of one subject): standardize it once
    return {f: lru_cache(maxsize=65536)(table.get(f, text)) for f in fields if f not in ("lon", "lat")}
