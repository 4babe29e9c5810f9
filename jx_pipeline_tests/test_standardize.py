"""Standard forms of IDs, credit codes, phones and dates, with the reason when a value cannot be used."""

from datetime import date, datetime

import numpy as np
import pytest

from jx_pipeline.lib import standardize as std
from jx_pipeline.world import ids, people, places, render
from jx_pipeline.world.writers import DATE_VARIANTS


@pytest.fixture(scope="module")
def pop():
    return people.build(5, 0.001, places.admin_units(5))[0]


# The generated population's ages count to the end of 2026 (births may lie after today's date).
WORLD_END = date(2026, 12, 31)


def test_resident_ids_valid_legacy_and_broken(pop):
    for n in pop.persons.id_number[:300]:
        assert std.resident_id(n, WORLD_END) == (n, None)
        if n[6:8] == "19":
            assert std.resident_id(ids.legacy_id(n), WORLD_END) == (n, None)  # 15 -> 18 restores the number
    n = pop.persons.id_number.iloc[0]
    spaced = " ".join([n[:6], n[6:14], n[14:]]).translate(str.maketrans("0123456789", "０１２３４５６７８９"))
    assert std.resident_id(spaced) == (n, None)
    assert std.resident_id(render.mistype(n, 3))[1] == "id_checksum"
    assert std.resident_id(n[:17])[1] == "id_length"
    assert std.resident_id("33040219A0010112X3")[1] == "id_format"
    body = "33040219990230123"  # 30 February
    assert std.resident_id(body + std.ric.calc_check_digit(body + "0"))[1] == "id_birth_date"
    assert std.resident_id(None) == (None, "id_empty")


def test_credit_codes_including_letter_authorities(pop):
    for code in pop.orgs.credit_code:
        assert std.credit_code(code) == (code, None), code
    n2 = next(c for c in pop.orgs.credit_code if c.startswith("N2"))
    assert not std.uscc.is_valid(n2) and std.credit_code(n2.lower()) == (n2, None)
    assert std.credit_code(render.mistype(n2, 7))[1] in {"credit_code_checksum", "credit_code_length"}
    assert std.credit_code("91330402MA2" + "I" * 7)[1] == "credit_code_format"  # I is not in the alphabet
    assert std.credit_code("")[1] == "credit_code_empty"
    assert ids.credit_code(np.random.default_rng(1), "N2", "330402", True)[-1] == std.credit_code_check(
        ids.credit_code(np.random.default_rng(1), "N2", "330402", True)[:17]
    )


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("138 0013 8000", ("13800138000", None)),
        ("+86 13800138000", ("13800138000", None)),
        ("0573-82345678", ("057382345678", None)),
        ("1380013800", (None, "phone_invalid")),
        ("", (None, "phone_empty")),
    ],
)
def test_phones(raw, expected):
    assert std.phone(raw) == expected


def test_dates_in_every_format_the_feeds_use():
    d = date(2024, 3, 7)
    for fmt in (*DATE_VARIANTS, "%Y-%m-%d %H:%M:%S"):
        assert std.parse_date(d.strftime(fmt)) == ("2024-03-07", None), fmt
    assert std.parse_date("2024/3/7 08:00", "%Y/%m/%d") == ("2024-03-07", None)
    assert std.parse_date("２０２４年３月７日") == ("2024-03-07", None)
    assert std.parse_date("2026-02-30")[1] == "date_impossible"
    assert std.parse_date("sometime")[1] == "date_unparseable"
    assert std.parse_date("1899-12-31")[1] == "date_out_of_range"
    assert std.parse_date("2099-01-01")[1] == "date_out_of_range"


def _date_like(rng) -> list[str]:
    """Strings in and near the fast paths' forms: every corner of year, month and day, random digits, full-width
    digits, one hyphen missing, times appended."""
    out = []
    for y in ("0000", "0001", "1899", "1900", "1949", "2024", "2026", "2100", "9999"):
        for m in ("00", "01", "02", "09", "10", "12", "13", "1", "99"):
            for d in ("00", "01", "09", "28", "29", "30", "31", "32", "7"):
                out += [f"{y}-{m}-{d}", f"{y}{m}{d}", f"{y}-{m}{d}", f"{y}{m}-{d}", f"{y}-{m}-{d} 10:00:00"]
    digits = rng.integers(0, 10, size=(3000, 10))
    out += ["".join(map(str, r[:8])) for r in digits]
    out += ["{}{}{}{}-{}{}-{}{}".format(*r[:8]) for r in digits]
    out += [s.translate(str.maketrans("0123456789", "０１２３４５６７８９")) for s in out[:500]]
    return out


def _in_format(fmt: str, rng) -> list[str]:
    """Strings written in a strptime format, with parts of 1-3 digits (some impossible), padded or not, spaced."""
    out = []
    for _ in range(1500):
        v = fmt
        for k, width in zip("YmdHMS", (4, 2, 2, 2, 2, 2), strict=True):
            n = int(rng.integers(0, 10 ** min(width, int(rng.integers(1, 4)))))
            v = v.replace(f"%{k}", str(n).zfill(width) if rng.random() < 0.6 else str(n))
        out += [v, v.replace(" ", "  "), " " + v[:-1], v + "0"]
    return out


def _strptime_or_none(v: str, fmt: str):
    try:
        return datetime.strptime(v, fmt).date()
    except ValueError:
        return None


@pytest.mark.parametrize("fmt", [*std._DATE_FORMATS, "%d/%m/%Y", "%Y年%m月%d号 %H时", "%m.%d.%Y %H:%M"])
def test_strptime_grammar_reads_as_strptime_does(fmt):
    """``_by_format`` against ``datetime.strptime`` itself, on strings in every format of the list (a string in
    one format is noise to another), corners of every field, random digits, full-width digits."""
    rng = np.random.default_rng(13)
    values = _date_like(rng) + [v for f in std._DATE_FORMATS for v in _in_format(f, rng)[:1000]]
    values += _in_format(fmt, rng)
    assert std._format_regex(fmt) is not None  # the grammar covers the format: no strptime behind it
    assert std._format_regex("%Y-%m-%d %Z") is None  # a directive it does not know: left to strptime
    assert std._format_regex("%Y-%m-%d%") is None  # nor a stray %
    ours = [std._by_format(v, fmt) for v in values]
    assert ours == [_strptime_or_none(v, fmt) for v in values]
    assert sum(d is not None for d in ours) > 100


def test_timestamp_fast_path_reads_as_strptime_does(monkeypatch):
    import re

    from jx_pipeline.lib import canonical

    rng = np.random.default_rng(17)
    days = _date_like(rng)[:2000]
    clocks = ["00:00:00", "23:59:59", "24:00:00", "12:60:00", "12:00:60", "7:05:09", "09:05"]
    values = [f"{d}{sep}{c}" for d in days[::7] for c in clocks for sep in (" ", "T")]
    values += ["{}{}{}{}-{}{}-{}{} {}{}:{}{}:{}{}".format(*rng.integers(0, 10, 14)) for _ in range(3000)]
    fast = [canonical.timestamp(v) for v in values]
    monkeypatch.setattr(canonical, "_SECONDS", re.compile(r"(?!)"))  # never the fast path
    slow = [canonical.timestamp(v) for v in values]
    assert fast == slow
    assert sum(r[0] is not None for r in fast) > 500


def test_id_and_mobile_fast_paths_agree_with_the_cleaning_path(pop):
    """A value written plainly takes a fast path; the same value with a space around takes the cleaning path."""
    rng = np.random.default_rng(19)
    ids = [*pop.persons.id_number[:500], *(n[:17] + "x" for n in pop.persons.id_number[:200] if n[17] == "X")]
    ids += ["".join(map(str, rng.integers(0, 10, 18))) for _ in range(2000)]
    ids += ["11010519491231002" + c for c in "xXyY0²"] + ["１１０１０５１９４９１２３１００２Ｘ", "A" * 18]
    for v in ids:
        assert std.resident_id_form(v) == std.resident_id_form(f" {v} "), v
        assert std.resident_id(v, WORLD_END) == std.resident_id(f" {v}", WORLD_END), v
    assert sum(std.resident_id_form(v)[0] is not None for v in ids) > 500
    phones = ["1" + "".join(map(str, rng.integers(0, 10, 10))) for _ in range(3000)]
    phones += ["13800138000", "12800138000", "1380013800", "138001380001", "１３８００１３８０００"]
    for v in phones:
        assert std.phone(v) == std.phone(f" {v}"), v
    assert sum(std.phone(v)[0] is not None for v in phones) > 1500
