"""Staging's fast path: the rows whose every value is already written the standard way are standardized and
copied from raw to staged by one SQL statement, inside PostgreSQL; only the other rows are read into Python.

Most rows of a real feed are clean: reading each one into Python, standardizing it there and writing it back was
most of staging's time (`bench/staging_throughput.py`). The SQL functions in ``sql/staged/fast.sql`` accept only
the forms whose standard value is certain (an 18-character ID with a right check character, ``2024-03-07``, a
mobile number in 11 digits, plain text): each returns exactly what the Python standardizer returns for it, and
NULL for any other form. A row with any other value goes the Python way (lib/staging.py), which decides the reject
and its reason, so rejects and their messages are the Python path's alone. Rows with an empty or repeated key go
that way too.
"""

from __future__ import annotations

from datetime import date
from functools import cache

import psycopg
from psycopg import sql
from stdnum import numdb

from jx_pipeline.catalog.schema import Feed
from jx_pipeline.lib import settings, standardize

# a field's SQL function (sql/staged/fast.sql); lon and lat: _lonlat; any other field is text (jx_text)
FUNCTION = {
    "id_number": "jx_resident_id",
    "legal_rep_id": "jx_resident_id",
    "credit_code": "jx_credit_code",
    "phone": "jx_phone",
    "gender": "jx_gender",
    "birth_date": "jx_date",
    "reg_date": "jx_date",
    "event_date": "jx_date",
    "period": "jx_period",
    "reg_capital": "jx_amount",
    "amount": "jx_amount",
    "updated_at": "jx_timestamp",
    "deleted": "jx_deleted",
    "change_type": "jx_change_type",
}
# declared date formats under which a y-m-d value reads as jx_date reads it (a format such as %d/%m/%Y does not:
# its feed's dates all go the Python way)
DATE_FORMATS = frozenset({"%Y-%m-%d", "%Y%m%d", "%Y/%m/%d", "%Y.%m.%d", "%Y年%m月%d日", "%Y-%m-%d %H:%M:%S"})
SLOW = "jx_slow_rows"  # the rows left to Python: a temporary table of their raw columns


def _ymd(day: date) -> int:
    return day.year * 10000 + day.month * 100 + day.day


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


def prepare(conn: psycopg.Connection) -> None:
    """The session's functions and its table of area codes, made once per connection."""
    if conn.execute("select to_regclass('pg_temp.jx_area')").fetchone()[0] is not None:
        return
    psycopg.ClientCursor(conn).execute((settings.SQL_DIR / "staged" / "fast.sql").read_text(encoding="utf-8"))
    conn.execute("create temp table jx_area (area text primary key, last int not null)")
    with conn.cursor().copy("copy jx_area from stdin") as copy:
        for row in area_last_years():
            copy.write_row(row)
    conn.execute("analyze jx_area")


def _value(field: str, feed: Feed, col, raw_col, n, area, latest: int, earliest: int | None):
    """The SQL that standardizes one raw column the fast way (``col``), and the SQL (or None) that prepares, from
    ``raw_col``, the int the first reads as ``n`` (a date's digits); None when the field never goes that way."""
    fn = FUNCTION.get(field)
    if fn is None:
        return sql.SQL("pg_temp.jx_text({})").format(col), None
    if fn == "jx_date":
        if feed.date_format not in DATE_FORMATS:
            return None
        value = sql.SQL("pg_temp.jx_ymd({}, {}, {})").format(n, sql.Literal(earliest), sql.Literal(latest))
        return value, sql.SQL("pg_temp.jx_date_ymd({})").format(raw_col)
    if fn == "jx_resident_id":
        value = sql.SQL("pg_temp.jx_resident_id({}, {}, {}, {})").format(col, n, sql.Literal(latest), area)
        return value, sql.SQL("pg_temp.jx_id_ymd({})").format(raw_col)
    if fn == "jx_timestamp":
        value = sql.SQL("pg_temp.jx_timestamp({}, {})").format(col, n)
        return value, sql.SQL("pg_temp.jx_timestamp_ymd({})").format(raw_col)
    return sql.SQL("pg_temp.{}({})").format(sql.Identifier(fn), col), None


def _lonlat(feed: Feed, plain, f: dict) -> tuple[sql.Composable, sql.Composable, sql.Composable] | None:
    """lon and lat, and the condition on the columns they became (``f``) that both are usable as written or both
    empty; None for a feed whose coordinates need a datum shift (GCJ-02, BD-09: numpy's, in Python, so that every
    row of the feed gets the same arithmetic)."""
    if feed.coordinates.crs != "cgcs2000":
        return None
    from jx_pipeline.lib.staging import BBOX  # staging imports this module

    x, y = plain(feed.coordinates.x), plain(feed.coordinates.y)
    lon, lat = (sql.SQL("pg_temp.jx_degrees({})").format(c) for c in (x, y))
    # both empty (no point), or both plain decimals inside the box; NULL (one missing) is made false by insert's
    # verdict, as any field's NULL is
    ok = sql.SQL(
        "((coalesce({x}, '') = '' and coalesce({y}, '') = '')"
        " or ({lon} between {x0} and {x1} and {lat} between {y0} and {y1}))"
    ).format(
        x=x,
        y=y,
        lon=f["lon"],
        lat=f["lat"],
        **{k: sql.Literal(v) for k, v in zip(("x0", "y0", "x1", "y1"), BBOX, strict=True)},
    )
    return lon, lat, ok


def insert(
    conn: psycopg.Connection,
    feed: Feed,
    partition: str,
    day: sql.Composable,
    target: list[str],
    source_of: dict[str, str],
    dups: dict,
    batch_id: str,
    latest: date,
    earliest: dict[str, date],
) -> tuple[int, sql.Composable | None] | None:
    """Copies the partition's rows that are standard as written into ``day``; the rest go into a temporary
    table (``SLOW``, their raw columns). Returns the rows copied and the query that reads the rest (None when
    no row is left), or None when the feed has no fast way (then nothing was copied).

    Three levels, each computed once a row: ``p`` reads raw (the area codes joined, dates' digits as ints),
    ``s`` the standard values, ``t`` whether the row is fast."""

    def qualified(column: str) -> sql.Composable:
        return sql.SQL("r.{}").format(sql.Identifier(column.lower()))

    def plain(column: str) -> sql.Composable:
        return sql.Identifier(column.lower())

    names = target[: target.index("_batch_id")]
    f = {n: sql.Identifier(f"jx_f{i}") for i, n in enumerate(names)}
    lonlat = None
    if feed.coordinates and (lonlat := _lonlat(feed, plain, f)) is None:
        return None
    values, prep, ok, joins = [], [], [], []
    for i, n in enumerate(names):
        if n in ("lon", "lat"):
            values.append(lonlat[0] if n == "lon" else lonlat[1])
            continue
        col = source_of[n]
        if n == "record_key":
            values.append(sql.SQL("pg_temp.jx_key({})").format(plain(col)))
            ok.append(sql.SQL("{} is not null").format(f[n]))
            if dups:
                ok.append(sql.SQL("not ({} = any({}::text[]))").format(f[n], sql.Literal(list(dups))))
            continue
        number, area, joined = (sql.Identifier(f"jx_{k}{i}") for k in ("n", "a", "area"))
        bounds = (_ymd(latest), _ymd(earliest[n]) if n in earliest else None)
        made = _value(n, feed, plain(col), qualified(col), number, area, *bounds)
        if made is None:
            return None
        values.append(made[0])
        if made[1] is not None:
            prep.append(sql.SQL("{} {}").format(made[1], number))
        if FUNCTION.get(n) == "jx_resident_id":
            joins.append(
                sql.SQL(" left join pg_temp.jx_area {a} on {a}.area = left({c}, 6)").format(
                    a=joined, c=qualified(col)
                )
            )
            prep.append(sql.SQL("{}.last {}").format(joined, area))
        ok.append(sql.SQL("({c} is null or {c} = '' or {v} is not null)").format(c=plain(col), v=f[n]))
    if lonlat is not None:
        ok.append(lonlat[2])
    columns = [*feed.columns, "_source_file", "_row_number", "_row_id"]
    slow_cols = sql.SQL(", ").join(map(plain, columns))
    conn.execute(sql.SQL("drop table if exists {}").format(sql.Identifier(SLOW)))
    conn.execute(
        sql.SQL("create temp table {} on commit drop as select {} from raw.{} with no data").format(
            sql.Identifier(SLOW), slow_cols, sql.Identifier(feed.id)
        )
    )
    fast, slow = conn.execute(
        sql.SQL(
            "with t as (select *, coalesce({ok}, false) as jx_fast from ("
            "  select *, {vals} from ("
            "   select {src}{prep} from raw.{t} r{joins} where r._partition = {p} offset 0) p offset 0) s),"
            " ins as (insert into {day} ({target}) select {fs}, {b}, {p}, _source_file, _row_number, _row_id"
            " from t where jx_fast returning 1),"
            " slow as (insert into {slow} select {slow_cols} from t where not jx_fast returning 1)"
            " select (select count(*) from ins), (select count(*) from slow)"
        ).format(
            src=sql.SQL(", ").join(map(qualified, columns)),
            prep=sql.SQL("").join(sql.SQL(", {}").format(x) for x in prep),
            vals=sql.SQL(", ").join(
                sql.SQL("{} {}").format(v, f[n]) for v, n in zip(values, names, strict=True)
            ),
            t=sql.Identifier(feed.id),
            joins=sql.SQL("").join(joins),
            p=sql.Literal(partition),
            ok=sql.SQL(" and ").join(ok),
            day=day,
            target=sql.SQL(", ").join(map(sql.Identifier, target)),
            fs=sql.SQL(", ").join(f[n] for n in names),
            b=sql.Literal(batch_id),
            slow=sql.Identifier(SLOW),
            slow_cols=slow_cols,
        )
    ).fetchone()
    read_slow = sql.SQL("select {} from {} order by _row_id").format(slow_cols, sql.Identifier(SLOW))
    return fast, (read_slow if slow else None)
