"""Standardizers against outside test vectors, not our generator: the worked examples of GB 11643 (resident IDs)
and GB 32100 (credit codes), python-stdnum's own doctest vectors (tests/test_cn_ric.doctest,
tests/test_cn_uscc.doctest), libphonenumber's example numbers for China and the national numbering plan, and
openpyxl's reading of spreadsheet serial dates. Where we deviate from python-stdnum the test says so."""

from datetime import date, datetime

import pytest
from openpyxl.utils.datetime import from_excel
from stdnum.cn import ric, uscc

from jx_pipeline.lib import canonical
from jx_pipeline.lib import standardize as std


def _with_check(body17: str) -> str:
    return body17 + ric.calc_check_digit(body17 + "0")


# --- resident IDs (GB 11643-1999) ----------------------------------------------------------------------------


# python-stdnum's tests/test_cn_ric.doctest, with our reasons (the code of stdnum issue #442 genuine)
STDNUM_RIC_VECTORS = [
    ("360426199101010071", ("360426199101010071", None)),
    ("44011320141005001x", ("44011320141005001X", None)),
    ("412723199010050012", ("412723199010050012", None)),  # 商水县: the code of stdnum issue #442
    ("120110198012010073", ("120110198012010073", None)),  # 东郊区 before 1991
    ("120110199212010072", ("120110199212010072", None)),  # the same code, 东丽区, after 1991
    ("T60426199101010078", (None, "id_format")),
    ("360426199113010079", (None, "id_birth_date")),  # month 13
    ("36042619910102009X", (None, "id_checksum")),
    ("990426199112010074", (None, "id_birth_place")),  # no such area code
    ("110201199312010077", (None, "id_birth_place")),  # code retired (1982) before the birth year
]


# a sample of the numbers "found online" in python-stdnum's tests/test_cn_uscc.doctest
USCC_PUBLISHED = [
    "121200004013590816",
    "91110000600037341L",
    "913304007429141869",
    "9131012056010553X5",
    "91310115MA1K3BTP2B",
    "91620105L015101280",
    "92340603MA2UK3DT5H",
    "91442000696462712R",
]


def test_gb11643_worked_example_by_the_standards_weights():
    """The standard's example 11010519491231002X: ISO 7064 MOD 11-2 with weights 2^(17-i) mod 11 gives X."""
    body = "11010519491231002"
    weights = [pow(2, 17 - i, 11) for i in range(17)]
    assert weights[:4] == [7, 9, 10, 5]  # the table printed in the standard
    check = (12 - sum(int(c) * w for c, w in zip(body, weights, strict=True)) % 11) % 11
    assert ("X" if check == 10 else str(check)) == "X" == ric.calc_check_digit(body + "0")
    assert std.resident_id("11010519491231002X") == ("11010519491231002X", None)
    for written in (
        "11010519491231002x",
        "11010519491231002×",
        "110105 19491231 002X",
        "１１０１０５１９４９１２３１００２Ｘ",
    ):
        assert std.resident_id(written) == ("11010519491231002X", None)


def test_first_generation_15_digit_ids_are_upgraded():
    # 15 digits: area, yymmdd, sequence; the 18-digit form inserts 19 and adds the check character
    assert std.resident_id("110105491231002") == ("11010519491231002X", None)


@pytest.mark.parametrize(("raw", "expected"), STDNUM_RIC_VECTORS)
def test_python_stdnum_doctest_vectors(raw, expected):
    assert std.resident_id(raw) == expected


def test_deviation_from_stdnum_code_introduced_after_birth():
    """stdnum's vector 110111198012010078 ("county was not registered yet at birth year") is rejected by stdnum
    but is a genuine kind of ID: 房山区 (110111, since 1986) issued numbers to residents born before 1986."""
    assert not ric.is_valid("110111198012010078")
    assert std.resident_id("110111198012010078") == ("110111198012010078", None)


@pytest.mark.parametrize(
    ("area", "born"),
    [
        ("330481", "19750312"),  # 海宁市 (county-level city since 1986, code in stdnum's table from 1989)
        ("330402", "19400101"),  # 南湖区 (code holder since 2005; 城区 1983-1992, 秀城区 1993-2004)
        ("330483", "19350630"),  # 桐乡市 (since 1993)
        ("330411", "19581111"),  # 秀洲区 (since 1999; 郊区 before)
        ("330423", "19500101"),  # 海宁县: retired in 1986, the IDs it issued stay valid
    ],
)
def test_ids_carry_the_code_of_the_issuing_county(area, born):
    """The case of issue 9: elderly residents' IDs with codes their counties got after their birth."""
    n = _with_check(area + born + "021")
    assert std.resident_id(n) == (n, None)


def test_area_codes_that_never_existed_or_ended_before_birth():
    # 33 is Zhejiang but 9999 is no unit of it: stdnum raises KeyError here; we reject with the usual reason
    unknown = _with_check("339999" + "19500101" + "001")
    with pytest.raises(KeyError):
        ric.is_valid(unknown)
    assert std.resident_id(unknown) == (None, "id_birth_place")
    assert std.area_code_years("339999") == ()
    retired = _with_check(
        "330423" + "19900101" + "001"
    )  # 海宁县 ended 1986: no ID of a 1990 birth carries it
    assert std.resident_id(retired) == (None, "id_birth_place")


def test_birth_dates_must_be_plausible():
    landing = date(2026, 11, 1)
    assert std.resident_id(_with_check("330402" + "20261102" + "001"), landing)[1] == "id_birth_date"
    assert std.resident_id(_with_check("330402" + "20261101" + "001"), landing)[1] is None
    assert std.resident_id(_with_check("330402" + "18791231" + "001"))[1] == "id_birth_date"
    assert std.resident_id(_with_check("330402" + "19000229" + "001"))[1] == "id_birth_date"  # no leap day


@pytest.mark.parametrize(
    "yyyymmdd",
    [
        "19000229",
        "20000229",
        "19990229",
        "19801301",
        "19801232",
        "19800000",
        "00000101",
        "19840431",
        "19840430",
    ],
)
def test_birth_dates_read_as_python_stdnum_reads_them(yyyymmdd):
    """Our date reading (stdnum's without its string cleaning, for speed) agrees with ``ric.get_birth_date``."""
    try:
        theirs = ric.get_birth_date("000000" + yyyymmdd + "0000")
    except ValueError:  # stdnum's InvalidComponent
        theirs = None
    ours = std._birth_date(yyyymmdd)
    assert ours == (theirs if theirs is not None and theirs >= std.ID_EARLIEST_BIRTH else None)


# --- unified social credit codes (GB 32100-2015) -------------------------------------------------------------


def test_gb32100_worked_example():
    """The standard's example: 91350100M000100Y4 has the weighted sum 1640, MOD 31 = 28, check 31-28 = 3."""
    body = "91350100M000100Y4"
    assert sum(std.USCC_ALPHABET.index(c) * pow(3, i, 31) for i, c in enumerate(body)) == 1640
    assert std.credit_code_check(body) == "3" == uscc.calc_check_digit(body + "0")
    assert std.credit_code(body + "3") == (body + "3", None)
    assert std.credit_code(body + "Z")[1] == "credit_code_format"  # Z is not in the code's alphabet


@pytest.mark.parametrize("code", USCC_PUBLISHED)
def test_credit_codes_published_as_valid(code):
    assert std.credit_code(code) == (code, None)
    assert std.credit_code(" ".join([code[:2], code[2:8], code[8:]]).lower()) == (code, None)


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("12345", "credit_code_length"),
        ("9111000060003IOZSV", "credit_code_format"),  # I O Z S V are not in the alphabet
        ("91110000600037341N", "credit_code_checksum"),
        ("91A10000600037341L", "credit_code_format"),  # places 3-8 are an area code: digits
    ],
)
def test_python_stdnum_uscc_rejects(raw, reason):
    assert std.credit_code(raw)[1] == reason


def test_letter_authorities_use_the_same_check_as_stdnum():
    """stdnum rejects any letter in the first 8 places (its vector A1110000600037341L), but GB 32100 has letter
    registration authorities (N agriculture, Y others). Our check is stdnum's where stdnum applies..."""
    for body in ("91330402MA2B1234X", "12330000470004567", "52330481MJ8765432"):
        assert std.credit_code_check(body) == uscc.calc_check_digit(body + "0")
    # ...and the same arithmetic for letter authorities
    for body in ("N2330481MF1234567", "Y1330402MC0012345", "A1110000600037341"):
        code = body + std.credit_code_check(body)
        assert not uscc.is_valid(code) and std.credit_code(code) == (code, None)
        wrong = body + next(c for c in std.USCC_ALPHABET if c != code[-1])
        assert std.credit_code(wrong)[1] == "credit_code_checksum"


# --- phones (national numbering plan; libphonenumber's examples for CN) --------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        # libphonenumber's example numbers for China (mobile, toll free, shared cost), as it formats them
        ("131 2345 6789", "13123456789"),
        ("+86 131 2345 6789", "13123456789"),
        ("800 123 4567", "8001234567"),
        ("400 123 4567", "4001234567"),
        ("+86 400 123 4567", "4001234567"),
        # 3-digit area codes (010, 02x) with 8-digit numbers; 4-digit codes with 7 or 8 digits
        ("010-62345678", "01062345678"),
        ("(021)6234 5678", "02162345678"),
        ("+86 21 6234 5678", "02162345678"),
        ("0573-82345678", "057382345678"),
        ("0573 8234 5678", "057382345678"),
        ("（0573）82345678", "057382345678"),
        ("+86 573 8234 5678", "057382345678"),
        ("+86 (0)573 82345678", "057382345678"),
        ("0086-573-82345678", "057382345678"),
        ("0898-6234567", "08986234567"),  # 7-digit local numbers still exist behind 4-digit codes
        ("82345678", "057382345678"),  # a Jiaxing number written without its area code
        # extensions are dropped: the line is the number
        ("0573-82345678转8001", "057382345678"),
        ("0573-82345678 分机 12", "057382345678"),
        ("0573-82345678 ext. 12", "057382345678"),
        ("0573-82345678-8001", "057382345678"),
        # mobile segments 16x, 17x, 19x; 86 glued to the number
        ("166 1234 5678", "16612345678"),
        ("17312345678", "17312345678"),
        ("19912345678", "19912345678"),
        ("8613912345678", "13912345678"),
        # several numbers in one cell: the first that is a number
        ("13912345678/0573-82345678", "13912345678"),
        ("0573-82345678；13912345678", "057382345678"),
        ("１３９１２３４５６７８", "13912345678"),
    ],
)
def test_phones_as_written(raw, expected):
    assert std.phone(raw) == (expected, None)


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("1380013800", "phone_invalid"),  # a digit short
        ("12345678901", "phone_invalid"),  # no 12x mobile segment
        ("0573-02345678", "phone_invalid"),  # local numbers never start with 0 (the trunk prefix)
        ("0211234567", "phone_invalid"),  # 021 numbers have 8 digits
        ("12345", "phone_invalid"),  # a short service number is not a subscriber's
        ("无", "phone_empty"),
        ("", "phone_empty"),
    ],
)
def test_phones_rejected(raw, reason):
    assert std.phone(raw) == (None, reason)


# --- dates --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [
        "1990-01-02",
        "1990年1月2日",
        "1990年01月02日",
        "1990年1月2号",
        "1990.1.2",
        "19900102",
        "1990/01/02",
        "1990/1/2",
        "1990-01-02 08:30:00",
        "1990-01-02T08:30:00",  # ISO 8601 / GB/T 7408 with a time
        "1990-01-02T08:30:00+08:00",
        "1990/1/2 8:30",
        "1990年1月2日 8时30分",
        "1990年1月2日08:30",
        "19900102083000",
        "19900102 083000",
        "１９９０年１月２日",
    ],
)
def test_dates_as_clerks_write_them(raw):
    assert std.parse_date(raw) == ("1990-01-02", None)


@pytest.mark.parametrize("serial", ["32875", "32875.5", "45292", "27000"])
def test_spreadsheet_serial_dates_read_as_openpyxl_reads_them(serial):
    expected = from_excel(float(serial)).date()
    assert std.parse_date(serial) == (expected.isoformat(), None)


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("1990", "date_unparseable"),  # a bare year (and 4-digit serials, which it resembles)
        ("02/01/1990", "date_unparseable"),  # day-first or month-first: ambiguous
        ("90.1.2", "date_unparseable"),  # two-digit year: which century
        ("1990-02-30", "date_impossible"),
        ("19901302", "date_impossible"),
        ("9999", "date_unparseable"),
    ],
)
def test_dates_rejected(raw, reason):
    assert std.parse_date(raw) == (None, reason)


def test_serials_still_obey_the_range():
    # 10000 is 1927-05-18: too early for a registration date
    assert std.parse_date("10000", earliest=date(1949, 10, 1)) == (None, "date_out_of_range")


# --- other canonical fields ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    # GB/T 2261.1-2003 sex codes: 0 未知的性别, 1 男性, 2 女性, 9 未说明的性别
    [("1", "M"), ("2", "F"), ("0", None), ("9", None), ("男", "M"), ("女性", "F"), ("未说明的性别", None)],
)
def test_gender_codes_of_gb_t_2261(raw, expected):
    assert canonical.gender(raw) == (expected, None)
    assert canonical.gender("3") == (None, "gender_invalid")


@pytest.mark.parametrize(
    "raw",
    [
        "202403",
        "2024-03",
        "2024/3",
        "2024.3",
        "2024年3月",
        "2024-03-01",
        "2024年3月1日",
        "2024-03-01 00:00:00",
    ],
)
def test_periods_as_written(raw):
    assert canonical.period(raw) == (date(2024, 3, 1), None)


@pytest.mark.parametrize("raw", ["20243", "2024-13", "2024", "1948-12"])
def test_periods_rejected(raw):
    assert canonical.period(raw) == (None, "period_invalid")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("2024-03-07 08:00:00", datetime(2024, 3, 7, 8, 0)),
        ("2024-03-07 08:00", datetime(2024, 3, 7, 8, 0)),  # ISO 8601 without seconds
        ("2024-03-07T08:00:00+08:00", datetime(2024, 3, 7, 8, 0)),
        ("2024-03-07T00:00:00Z", datetime(2024, 3, 7, 8, 0)),  # UTC, kept as Beijing time like the rest
        ("2024/03/07 08:00:00", datetime(2024, 3, 7, 8, 0)),
    ],
)
def test_timestamps(raw, expected):
    assert canonical.timestamp(raw) == (expected, None)


@pytest.mark.parametrize(
    "raw, reason",
    [
        ("3304021990010100²X", "id_format"),
        ("33040290010100①", "id_length"),
        ("33040219900101001①", "id_checksum"),
    ],
)
def test_digits_of_other_scripts_are_rejected_not_a_crash(raw, reason):
    """str.isdigit() holds for ² and ①, which int() cannot read: they used to fail the staging step."""
    assert std.resident_id(raw) == (None, reason)
