"""Staging's fast path: a partition's raw rows are read once by COPY into Arrow, the rows whose every value is
already written the standard way are standardized there column by column (Arrow compute and numpy, no Python
loop per value) and copied into staged by COPY; only the other rows go through the Python standardizers.

Most rows of a real feed are clean: standardizing every value in Python, then in SQL functions evaluated row by
row inside PostgreSQL, held staging at 53k and 80-90k rows/s (`bench/staging_throughput.py`). Each function here
accepts only the forms whose standard value is certain (an 18-character ID with a right check character,
``2024-03-07``, a mobile number in 11 digits, plain text) and gives exactly the text the Python standardizer's
value is written as; NULL for any other form. A row with any other value goes the Python way (lib/staging.py),
which decides the reject and its reason, so rejects and their messages are the Python path's alone. Rows with an
empty or repeated key go that way too.

Memory is bounded whatever the partition's size: the rows read are spooled to a temporary file and standardized
in batches (``BATCH``), each copied in as it is done; the parsed batches are held between the two passes (the
keys delivered twice, then the rows) only for a file up to ``HELD`` bytes; past it, the keys are the only column
held whole.
"""

from __future__ import annotations

import io
import tempfile
from contextlib import contextmanager
from datetime import date
from functools import cache

import numpy as np
import psycopg
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv
from psycopg import sql
from stdnum import numdb

from jx_pipeline.catalog.schema import Feed
from jx_pipeline.lib import standardize

# a field's rule below; lon and lat: _degrees with the box; any other field is text (_text)
FUNCTION = {
    "id_number": "resident_id",
    "legal_rep_id": "resident_id",
    "credit_code": "credit_code",
    "phone": "phone",
    "gender": "gender",
    "birth_date": "date",
    "reg_date": "date",
    "event_date": "date",
    "period": "period",
    "reg_capital": "amount",
    "amount": "amount",
    "updated_at": "timestamp",
    "deleted": "deleted",
    "change_type": "change_type",
}
# declared date formats under which a y-m-d value reads as _date reads it (a format such as %d/%m/%Y does not:
# its feed's dates all go the Python way)
DATE_FORMATS = frozenset({"%Y-%m-%d", "%Y%m%d", "%Y/%m/%d", "%Y.%m.%d", "%Y年%m月%d日", "%Y-%m-%d %H:%M:%S"})
BATCH = 1 << 24  # bytes of CSV standardized at a time (~100k rows of six columns)
HELD = 1 << 27  # a partition read in at most this many bytes of CSV is parsed once (~1M rows of six columns)
# Python's whitespace (str.isspace, which re's \s and str.strip use); a text may hold the ASCII space alone
SPACE = "".join(c for c in map(chr, range(0x3001)) if c.isspace())  # U+3000 is the last
_OTHER_SPACE = "[" + "".join(f"\\x{{{ord(c):x}}}" for c in SPACE if c != " ") + "]"
_ANY_SPACE = "[" + "".join(f"\\x{{{ord(c):x}}}" for c in SPACE) + "]"
_GENDER = {v: "M" for v in ("男", "男性", "1", "M", "m", "MALE", "male", "Male")} | {
    v: "F" for v in ("女", "女性", "2", "F", "f", "FEMALE", "female", "Female")
}
_DELETED = {v: "t" for v in ("1", "Y", "y", "TRUE", "true", "True", "是")} | {
    v: "f" for v in ("0", "N", "n", "FALSE", "false", "False", "否")
}
_CHANGE = {"I": "I", "U": "U", "D": "D", "i": "I", "u": "U", "d": "D"}
# a date in one of the feeds' y-m-d forms (with or without a time, which does not change the day)
_YMD = (
    r"^(?:[0-9]{8}|[0-9]{4}-[0-9]{2}-[0-9]{2}|[0-9]{4}/[0-9]{2}/[0-9]{2}|[0-9]{4}\.[0-9]{2}\.[0-9]{2}"
    r"|[0-9]{4}年[0-9]{2}月[0-9]{2}日|[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9:]{2}:[0-9:]{2}:[0-9:]{2})$"
)


def _among(v: pa.Array, shaped: pa.Array, ok: np.ndarray) -> pa.Array:
    """``v`` where it is ``shaped`` and the test ``ok`` of the shaped values (in order) holds, else null."""
    accepted = np.zeros(len(v), dtype=bool)
    accepted[np.flatnonzero(shaped.to_numpy(zero_copy_only=False))] = ok
    return _where(pa.array(accepted), v)


def _ymd(day: date) -> int:
    return day.year * 10000 + day.month * 100 + day.day


ID_EARLIEST = _ymd(standardize.ID_EARLIEST_BIRTH)


@cache
def area_last_years() -> tuple[tuple[str, int], ...]:
    """Every 6-digit area code python-stdnum's cn/loc table knows at county level, with the last year it was in
    use (as ``standardize.area_code_years`` reads the table, which test_staging_fast checks code by code; an ID's
    code is right when that year is not before the birth year). Read from the table's tree in one walk: asking it
    code by code took 0.5 s, paid by every forked staging worker."""
    out = []

    def walk(prefix: str, nodes, county: str | None) -> None:
        for length, low, high, props, children in nodes:
            here = county if county is not None else props.get("county")
            for n in range(int(low), int(high) + 1):
                code = prefix + str(n).zfill(length)
                if len(code) == 6 and here is not None:
                    out.append((code, max(last for _first, last in standardize.county_years(here))))
                elif len(code) < 6:
                    walk(code, children, here)

    walk("", numdb.get("cn/loc").prefixes, None)
    return tuple(out)


@cache
def areas() -> tuple[pa.Array, np.ndarray]:
    """``area_last_years`` as the ID rule reads it: the codes, and each one's last year."""
    codes, last = zip(*area_last_years(), strict=True)
    return pa.array(codes), np.array(last, dtype=np.int64)


def _bytes(values: pa.Array, width: int) -> np.ndarray:
    """The characters of strings that are all ``width`` ASCII characters long, as a (rows, width) array."""
    values = _chunked(pc.cast(values, pa.large_string()))
    offsets = np.frombuffer(values.buffers()[1], dtype=np.int64)[
        values.offset : values.offset + len(values) + 1
    ]
    data = np.frombuffer(values.buffers()[2], dtype=np.uint8)
    return data[offsets[0] : offsets[-1]].reshape(len(values), width)


def _chunked(values) -> pa.Array:
    return values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values


def _where(ok, values) -> pa.Array:
    """``values`` where ``ok`` is true, else null (null ``ok`` too)."""
    return pc.if_else(pc.fill_null(ok, False), values, pa.scalar(None, pa.string()))


def _int(values: pa.Array) -> np.ndarray:
    """Digit strings as ints, 0 where null."""
    return pc.fill_null(pc.cast(values, pa.int64()), 0).to_numpy(zero_copy_only=False)


def _calendar(ymd: np.ndarray, lo: int, hi: int) -> np.ndarray:
    """Whether each yyyymmdd is a calendar date from lo to hi."""
    y, m, d = ymd // 10000, ymd // 100 % 100, ymd % 100
    leap = (y % 4 == 0) & ((y % 100 != 0) | (y % 400 == 0))
    days = np.where(np.isin(m, (4, 6, 9, 11)), 30, np.where(m != 2, 31, np.where(leap, 29, 28)))
    return (ymd >= lo) & (ymd <= hi) & (m >= 1) & (m <= 12) & (d >= 1) & (d <= days)


def _iso(digits: pa.Array) -> pa.Array:
    """yyyymmdd as yyyy-mm-dd."""
    part = [pc.utf8_slice_codeunits(digits, a, b) for a, b in ((0, 4), (4, 6), (6, 8))]
    return pc.binary_join_element_wise(*part, "-")


def _text(v: pa.Array) -> pa.Array:
    bad = pc.or_(
        pc.or_(pc.match_substring_regex(v, _OTHER_SPACE), pc.match_substring(v, "  ")),
        pc.or_(pc.starts_with(v, " "), pc.ends_with(v, " ")),
    )
    return _where(pc.and_(pc.invert(bad), pc.not_equal(v, "")), v)


def key(v: pa.Array) -> pa.Array:
    """A record key: text with no whitespace at either end (Python strips it)."""
    bad = pc.match_substring_regex(v, f"^{_ANY_SPACE}|{_ANY_SPACE}$")
    return _where(pc.and_(pc.invert(bad), pc.not_equal(v, "")), v)


def _date(v: pa.Array, lo: int | None, hi: int) -> pa.Array:
    if lo is None:
        return pa.nulls(len(v), pa.string())
    shaped = pc.match_substring_regex(v, _YMD)
    digits = pc.utf8_slice_codeunits(pc.replace_substring_regex(_where(shaped, v), "[^0-9]", ""), 0, 8)
    return _where(pa.array(_calendar(_int(digits), lo, hi)), _iso(digits))


def _resident_id(v: pa.Array, latest: int) -> pa.Array:
    shaped = pc.fill_null(pc.match_substring_regex(v, "^[0-9]{17}[0-9X]$"), False)
    ids = pc.filter(v, shaped)
    ok = np.zeros(len(ids), dtype=bool)
    if len(ids):
        chars = _bytes(ids, 18)
        digits = chars[:, :17].astype(np.int64) - 48
        check = np.frombuffer(b"10X98765432", dtype=np.uint8)[digits @ np.array(_ID_WEIGHTS) % 11]
        ymd = _int(pc.utf8_slice_codeunits(ids, 6, 14))
        codes, last = areas()
        where = pc.index_in(pc.utf8_slice_codeunits(ids, 0, 6), value_set=codes)
        area_last = np.where(pc.is_null(where).to_numpy(zero_copy_only=False), -1, last[_int(where)])
        ok = (check == chars[:, 17]) & (area_last >= ymd // 10000) & _calendar(ymd, ID_EARLIEST, latest)
    return _among(v, shaped, ok)


_ID_WEIGHTS = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]  # GB 11643: 2^(17-i) mod 11
_USCC = np.full(256, -1, dtype=np.int64)
_USCC[np.frombuffer(standardize.USCC_ALPHABET.encode(), dtype=np.uint8)] = np.arange(31)


def _credit_code(v: pa.Array) -> pa.Array:
    shaped = pc.fill_null(
        pc.match_substring_regex(v, "^[0-9A-HJ-NPQRTUWXY]{2}[0-9]{6}[0-9A-HJ-NPQRTUWXY]{10}$"), False
    )
    codes = pc.filter(v, shaped)
    ok = np.zeros(len(codes), dtype=bool)
    if len(codes):
        chars = _bytes(codes, 18)
        total = _USCC[chars[:, :17]] @ np.array([pow(3, i, 31) for i in range(17)])
        alphabet = np.frombuffer(standardize.USCC_ALPHABET.encode(), dtype=np.uint8)
        ok = alphabet[(31 - total % 31) % 31] == chars[:, 17]
    return _among(v, shaped, ok)


def _period(v: pa.Array) -> pa.Array:
    v = _where(pc.match_substring_regex(v, "^[0-9]{4}-?[0-9]{2}$"), v)  # digits only from here
    year, month = pc.utf8_slice_codeunits(v, 0, 4), pc.utf8_slice_codeunits(v, -2, None)
    y, m = _int(year), _int(month)
    ok = pa.array((y >= 1949) & (y <= 2100) & (m >= 1) & (m <= 12))
    return _where(ok, pc.binary_join_element_wise(year, month, "01", "-"))


def _timestamp(v: pa.Array) -> pa.Array:
    v = _where(pc.match_substring_regex(v, "^[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}$"), v)
    hour, minute, second = (_int(pc.utf8_slice_codeunits(v, a, a + 2)) for a in (11, 14, 17))
    ymd = _int(pc.replace_substring_regex(pc.utf8_slice_codeunits(v, 0, 10), "-", ""))
    ok = _calendar(ymd, 10101, 99991231) & (hour <= 23) & (minute <= 59) & (second <= 59)
    return _where(pa.array(ok), v)


def _mapped(v: pa.Array, table: dict[str, str]) -> pa.Array:
    keys = list(table)
    where = pc.index_in(v, value_set=pa.array(keys))
    return pc.take(pa.array([table[k] for k in keys]), where)


def _degrees(v: pa.Array) -> tuple[pa.Array, np.ndarray]:
    """A coordinate in plain decimal degrees, and its value (NaN where it is not)."""
    ok = pc.and_(pc.match_substring_regex(v, r"^-?[0-9]+(\.[0-9]+)?$"), pc.less(pc.utf8_length(v), 30))
    text = _where(ok, v)
    return text, pc.cast(text, pa.float64()).to_numpy(zero_copy_only=False)


def value(
    field: str, v: pa.Array, declared: str | None, latest: date, earliest: date | None
) -> pa.Array | None:
    """The COPY text of each raw value of ``field`` standardized the fast way (null: empty, or not fast); None
    when the field never goes that way (a date under a declared format the rule does not read)."""
    v = _chunked(v)
    fn = FUNCTION.get(field)
    if fn is None:
        return _text(v)
    if fn == "date" and declared not in DATE_FORMATS:
        return None
    if fn in ("amount", "phone"):  # mostly distinct values, one cheap test
        return _rule(fn, v, latest, earliest)
    # dates, codes and IDs recur (a day's records share their dates, a person's records the ID): decided once
    # per distinct value (dates: 0.37 s -> 0.02 s for 642k values)
    distinct = pc.dictionary_encode(v)
    return pc.take(_rule(fn, distinct.dictionary, latest, earliest), distinct.indices)


def _rule(fn: str, v: pa.Array, latest: date, earliest: date | None) -> pa.Array:
    if fn == "date":
        return _date(v, _ymd(earliest) if earliest else None, _ymd(latest))
    if fn == "resident_id":
        return _resident_id(v, _ymd(latest))
    if fn == "credit_code":
        return _credit_code(v)
    if fn == "phone":
        return _where(pc.match_substring_regex(v, "^1[3-9][0-9]{9}$"), v)
    if fn == "period":
        return _period(v)
    if fn == "amount":
        return _where(pc.match_substring_regex(v, r"^[0-9]+(\.[0-9]+)?$"), v)
    if fn == "timestamp":
        return _timestamp(v)
    return _mapped(v, {"gender": _GENDER, "deleted": _DELETED, "change_type": _CHANGE}[fn])


META = ("_source_file", "_row_number", "_row_id")
_CSV_PARSE = pcsv.ParseOptions(newlines_in_values=True)


class Spool:
    """One raw partition's rows (the feed's columns and their lineage) in a temporary CSV file, read back in
    batches of strings (lineage numbers as ints, NULL kept apart from the empty string). A file of at most
    ``HELD`` bytes is parsed once and its batches held for the next pass."""

    def __init__(self, file, columns: list[str]):
        self.file, self.columns = file, columns
        self.size = file.seek(0, 2)
        self._held: list[pa.RecordBatch] | None = None

    def batches(self, columns: list[str] | None = None):
        """Every batch; with ``columns``, only those are needed (a large file parses only them)."""
        if self._held is not None:
            yield from self._held
            return
        if not self.size:  # no row: Arrow's reader wants at least one
            return
        held = self.size <= HELD
        self.file.seek(0)
        types = {c: pa.int64() if c in META[1:] else pa.string() for c in self.columns}
        reader = pcsv.open_csv(
            self.file,
            read_options=pcsv.ReadOptions(column_names=self.columns, block_size=BATCH, use_threads=False),
            parse_options=_CSV_PARSE,
            convert_options=pcsv.ConvertOptions(
                column_types=types,
                include_columns=[] if held or columns is None else columns,
                null_values=[""],
                strings_can_be_null=True,
                quoted_strings_can_be_null=False,
            ),
        )
        if held:
            self._held = list(reader)
            yield from self._held
        else:
            yield from reader


@contextmanager
def spooled(conn: psycopg.Connection, feed: Feed, partition: str):
    """The partition's raw rows as a ``Spool`` (COPY out once), for the block's duration."""
    # a bigint first: Arrow's reader drops a byte-order mark opening the file, which a raw value may hold
    columns = ["_row_id", *feed.columns, *META[:2]]
    # in the table's order, usually delivery order (raw numbers the rows as it writes them; an update moves a row
    # to the end). Nothing here depends on it: repeated keys compare row ids. ``order by _row_id`` sorted 642k
    # rows on disk with two parallel workers, 0.6 s. The scan runs in one process, so that the order stays the
    # table's (a parallel scan interleaves its workers' rows); the setting is restored after (a failure rolls it
    # back with the transaction)
    query = sql.SQL(
        "copy (select {} from raw.{} where _partition = {}) to stdout (format csv, encoding 'UTF8')"
    )
    workers = conn.execute("select current_setting('max_parallel_workers_per_gather')").fetchone()[0]
    conn.execute("select set_config('max_parallel_workers_per_gather', '0', true)")
    with tempfile.TemporaryFile() as file:
        with conn.cursor().copy(
            query.format(
                sql.SQL(", ").join(sql.Identifier(c.lower()) for c in columns),
                sql.Identifier(feed.id),
                sql.Literal(partition),
            )
        ) as copy:
            for chunk in copy:
                file.write(chunk)
        conn.execute("select set_config('max_parallel_workers_per_gather', %s, true)", (workers,))
        yield Spool(file, columns)


def duplicates(spool: Spool, key_col: str) -> dict[str, tuple[int, str, int]]:
    """Keys delivered more than once in the partition (compared as Python strips them) -> the row kept, the
    last delivered: (row id, file, row in the file)."""
    wanted = [key_col, "_row_id", "_source_file", "_row_number"]
    parts = [b.select(wanted) for b in spool.batches(wanted)]
    if not parts:
        return {}
    rows = pa.Table.from_batches(parts)
    keys = pc.utf8_trim(rows[key_col], characters=SPACE)
    distinct = _chunked(pc.dictionary_encode(keys))  # a hash pass: value_counts took twice as long
    index = pc.fill_null(distinct.indices, -1).to_numpy(zero_copy_only=False)
    counts = np.bincount(index[index >= 0], minlength=len(distinct.dictionary))
    repeated = (counts > 1) & pc.not_equal(distinct.dictionary, "").to_numpy(zero_copy_only=False)
    if not repeated.any():  # also: every key NULL, an empty dictionary
        return {}
    rows = rows.append_column("k", keys).filter(pa.array((index >= 0) & repeated[np.maximum(index, 0)]))
    out: dict[str, tuple[int, str, int]] = {}
    for k, row_id, path, number in zip(
        *(rows[c].to_pylist() for c in ("k", "_row_id", "_source_file", "_row_number")), strict=True
    ):
        if k not in out or row_id > out[k][0]:
            out[k] = (row_id, path, number)
    return out


def fast_way(feed: Feed) -> bool:
    """Whether any row of the feed can go the fast way: not when its dates are declared in a form the rule does
    not read, nor when its coordinates need a datum shift (GCJ-02, BD-09: numpy's, in Python, so that every row
    of the feed gets the same arithmetic)."""
    if feed.coordinates and feed.coordinates.crs != "cgcs2000":
        return False
    return (
        not any(FUNCTION.get(f) == "date" for f in feed.columns.values()) or feed.date_format in DATE_FORMATS
    )


def split(
    feed: Feed,
    batch: pa.RecordBatch,
    names: list[str],
    dups: dict,
    latest: date,
    earliest: dict[str, date],
) -> tuple[pa.Table, pa.RecordBatch]:
    """A batch of raw rows (``Spool.batches``) as the staged rows of those standard as written (``names``, then
    the lineage), and the other rows as read."""
    from jx_pipeline.lib.staging import BBOX  # staging imports this module

    source_of = {canon: s for s, canon in feed.columns.items()}
    out, ok = {}, pa.array(np.ones(batch.num_rows, dtype=bool))
    for n in names:
        if n in ("lon", "lat"):
            continue
        raw = batch.column(source_of[n])
        if n == "record_key":
            out[n] = key(raw)
            fresh = pc.invert(pc.is_in(out[n], value_set=pa.array(list(dups), pa.string())))
            ok = pc.and_(ok, pc.and_(pc.is_valid(out[n]), fresh))
            continue
        out[n] = value(n, raw, feed.date_format, latest, earliest.get(n))
        empty = pc.fill_null(pc.equal(raw, ""), True)
        ok = pc.and_(ok, pc.or_(empty, pc.is_valid(out[n])))
    if feed.coordinates:
        x, y = batch.column(feed.coordinates.x), batch.column(feed.coordinates.y)
        (out["lon"], lon), (out["lat"], lat) = _degrees(_chunked(x)), _degrees(_chunked(y))
        empty = pc.and_(pc.equal(pc.fill_null(x, ""), ""), pc.equal(pc.fill_null(y, ""), ""))
        inside = (lon >= BBOX[0]) & (lon <= BBOX[2]) & (lat >= BBOX[1]) & (lat <= BBOX[3])
        ok = pc.and_(ok, pc.or_(empty, pa.array(inside)))
    ok = pc.fill_null(ok, False)
    columns = [*(out[n] for n in names), *(batch.column(c) for c in META)]
    fast = pa.Table.from_arrays(columns, names=[*names, *META]).filter(ok)
    return fast, batch.filter(pc.invert(ok))


SHARED = ("_batch_id", "_partition", "_source_file")  # lineage every row of a batch may share


def copy_in(conn: psycopg.Connection, day: sql.Composable, fast: pa.Table, tail: tuple[str, str]) -> int:
    """The fast rows of a batch (``split``) into the staged partition ``day`` (COPY, CSV), with the batch id and
    partition ``tail``; their count. What every row shares (``tail``, and the source file when the batch comes
    from one) is the table's default for the copy, not written row by row: a third of a row's bytes, and a
    fifth of the server's COPY (1.0 -> 0.8 s for 615k rows). ``shared_defaults`` drops the defaults after."""
    if not fast.num_rows:
        return 0
    shared = dict(zip(SHARED[:2], tail, strict=True))
    files = fast.column("_source_file")
    if not files.null_count and len(one := pc.unique(files)) == 1:
        shared["_source_file"] = one[0].as_py()
        fast = fast.drop_columns(["_source_file"])
    shared_defaults(conn, day, shared)
    data = io.BytesIO()
    pcsv.write_csv(
        fast, data, write_options=pcsv.WriteOptions(include_header=False, quoting_style="all_valid")
    )
    target = sql.SQL(", ").join(map(sql.Identifier, fast.column_names))
    with conn.cursor().copy(
        sql.SQL("copy {} ({}) from stdin (format csv, encoding 'UTF8')").format(day, target)
    ) as copy:
        copy.write(data.getbuffer())
    return fast.num_rows


def shared_defaults(conn: psycopg.Connection, day: sql.Composable, shared: dict[str, str] | None) -> None:
    """The staged partition's defaults for the lineage its rows share (``copy_in``); None: none (as its
    table's, before it is attached)."""
    conn.execute(
        sql.SQL("alter table {} {}").format(
            day,
            sql.SQL(", ").join(
                sql.SQL("alter column {} {}").format(
                    sql.Identifier(c),
                    sql.SQL("drop default")
                    if shared is None
                    else sql.SQL("set default {}").format(sql.Literal(shared.get(c))),
                )
                for c in SHARED
            ),
        )
    )
