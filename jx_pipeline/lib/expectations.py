"""Expectations per feed, validated against a staged partition.

The catalog's expectations — how complete each mapped field must be after standardization, and that a person's
records do not predate their birth — are counted in one SQL statement per partition (``check``): Great
Expectations spent ~25 ms per expectation building its metric graph, ~250 ms per feed partition whatever its
size, while the statement takes a few ms. Their results have GE's names and semantics, and a test holds them
equal to GE's own on the same partitions (``test_expectations_sql.py``). The feed's own expectations written in
``feeds.yaml`` (any of GE's gallery) are validated by GE, but for a feed whose own are all in-set or between
expectations: those are counted in SQL too (``own_in_sql``). GE is called directly (dagster-ge pins GE < 1) and
imported only when a suite is built: the import costs ~6 s, which a run staging no feed with expectations of its
own no longer pays.
"""

from __future__ import annotations

import json
import math
from decimal import Decimal
from functools import cache
from typing import TYPE_CHECKING

from psycopg import sql

from jx_pipeline.catalog.schema import Feed
from jx_pipeline.lib import canonical, staging
from jx_pipeline.lib.errors import JxError

if TYPE_CHECKING:
    import great_expectations as gx
    import pandas as pd

# Share of rows that must keep a usable value of each field after standardization (the rest were empty or bad).
COMPLETENESS = {
    "record_key": 1.0,
    "person_name": 0.95,
    "id_number": 0.9,
    "legal_rep_id": 0.9,
    "credit_code": 0.9,
    "org_name": 0.95,
    "phone": 0.85,
    "address": 0.9,
    "birth_date": 0.95,
    "reg_date": 0.95,
    "event_date": 0.95,
    "gender": 0.95,
    "lon": 0.85,
    "lat": 0.85,
    "updated_at": 1.0,
    "change_type": 0.99,
}
SAMPLE = 5


@cache
def _context():
    """One in-memory GE context per process (suites and batches are never written anywhere)."""
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    ctx = gx.get_context(mode="ephemeral")
    ctx.variables.progress_bars = ProgressBarsConfig(globally=False)
    return ctx


FALSE_FAILURE = 0.00135  # the one-sided tail beyond three standard deviations


@cache
def allowance(share: float, rows: int) -> float:
    """The share a partition of ``rows`` rows must reach: the lowest share a partition meeting the target
    falls below with chance at most FALSE_FAILURE (exact binomial quantile), so that a day's increment of a
    few rows does not fail by chance (two rows both without a phone, at a target of 85 %, happen 2 % of the
    time) while a large partition is held to the target."""
    if share >= 1 or share <= 0:
        return share
    rows = max(rows, 1)
    return math.floor(binomial_quantile(FALSE_FAILURE, rows, share) / rows * 1000) / 1000


def binomial_quantile(q: float, n: int, p: float) -> int:
    """The smallest k with P(X <= k) >= q for X ~ Binomial(n, p): scipy.stats.binom.ppf, by bisection on the
    CDF of scipy.special (a 0.3 s import where scipy.stats takes 1 s, paid by every staging process)."""
    from scipy.special import bdtr

    lo, hi = 0, n  # P(X <= n) = 1 >= q
    while lo < hi:
        mid = (lo + hi) // 2
        if bdtr(mid, n, p) >= q:
            hi = mid
        else:
            lo = mid + 1
    return lo


@cache
def _batch_definition(feed_id: str):
    """Registered once per feed and process: each registration rewrites the context's config (~20 ms)."""
    ctx = _context()
    source = ctx.data_sources.get("staged") if "staged" in ctx.data_sources.all() else None
    source = source or ctx.data_sources.add_pandas("staged")
    return source.add_dataframe_asset(feed_id).add_batch_definition_whole_dataframe("partition")


def prepare(feeds: list[Feed]) -> None:
    """Import and build in this process what validating the feeds needs (scipy's binomial; GE's context and the
    batch definition of a feed with expectations of its own that only GE validates), so that workers forked from it
    share them."""
    import scipy.special  # noqa: F401

    for feed in feeds:
        if feed.expectations and not own_in_sql(feed):
            _batch_definition(feed.id)


NOT_NULL = "expect_column_values_to_not_be_null"
PAIR = "expect_column_pair_values_a_to_be_greater_than_b"


def catalog_expectations(feed: Feed, rows: int) -> list[dict]:
    """The catalog's expectations of the feed for a partition of ``rows`` rows: {type, kwargs, meta}."""
    mapped = set(feed.columns.values())
    out = [
        {
            "type": NOT_NULL,
            "kwargs": {"column": field, "mostly": allowance(share, rows)},
            "meta": {"source": "catalog", "target": share},
        }
        for field, share in (COMPLETENESS | feed.completeness).items()
        if field in mapped and share > 0
    ]
    if {"birth_date", "event_date"} <= mapped:
        kwargs = {"column_A": "event_date", "column_B": "birth_date", "or_equal": True}
        kwargs |= {"ignore_row_if": "either_value_is_missing", "mostly": allowance(0.99, rows)}
        out.append({"type": PAIR, "kwargs": kwargs, "meta": {"source": "catalog", "target": 0.99}})
    return out


def suite(feed: Feed, rows: int, catalog: bool = True) -> gx.ExpectationSuite:
    """The feed's GE suite for a partition of ``rows`` rows: its own expectations, and the catalog's too unless
    ``catalog`` is False (they are counted in SQL by ``check``)."""
    import great_expectations as gx

    _context()
    s = gx.ExpectationSuite(name=f"jx.{feed.id}")
    for e in catalog_expectations(feed, rows) if catalog else []:
        cls = _expectation_class(feed, e["type"])
        s.add_expectation(cls(**e["kwargs"], meta=e["meta"]))
    for e in feed.expectations:
        cls = _expectation_class(feed, e.type)
        try:
            s.add_expectation(cls(**e.kwargs, meta={"source": "feed"}))
        except Exception as exc:  # GE's own validation error (pydantic): name the feed and expectation
            raise JxError(
                f"feed {feed.id}: expectation {e.type} {e.kwargs} is not valid: {str(exc).splitlines()[0]}",
                fix="correct its kwargs in jx_pipeline/catalog/feeds.yaml (see the Great Expectations gallery)",
            ) from None
    return s


def _expectation_class(feed: Feed, name: str):
    cls_name = "".join(p.capitalize() for p in name.split("_"))
    import great_expectations as gx

    cls = getattr(gx.expectations, cls_name, None)
    if cls is None:
        raise JxError(
            f"feed {feed.id}: {name} is not a Great Expectations expectation",
            fix="use a name from the Great Expectations 1.x gallery in the feed's expectations",
        )
    return cls


def check(conn, feed: Feed, partition: str) -> tuple[list[dict], list[dict]]:
    """(results, expectations) of one staged partition: the catalog's counted in one statement, the feed's own by
    GE (only feeds that have some load the partition into pandas)."""
    table = staging.staged_table(feed, partition)
    shape = catalog_expectations(feed, 0)
    pair = any(e["type"] == PAIR for e in shape)
    fields = [e["kwargs"]["column"] for e in shape if e["type"] == NOT_NULL]
    counts = [sql.SQL("count({})").format(sql.Identifier(f)) for f in fields]
    if pair:
        counts.append(sql.SQL("count(*) filter (where event_date is not null and birth_date is not null)"))
        counts.append(sql.SQL("count(*) filter (where event_date < birth_date)"))
    row = conn.execute(
        sql.SQL("select count(*), {} from {}").format(sql.SQL(", ").join(counts), table)
    ).fetchone()
    rows, filled = row[0], dict(zip(fields, row[1:], strict=False))
    expected = catalog_expectations(feed, rows)
    results = []
    for e in expected:
        kw = e["kwargs"]
        if e["type"] == NOT_NULL:
            column, unexpected, judged = kw["column"], rows - filled[kw["column"]], rows
            sample = []  # the unexpected values are nulls: nothing to show
        else:
            column, (judged, unexpected) = f"{kw['column_A']}>{kw['column_B']}", row[-2:]
            sample = _pair_sample(conn, table) if unexpected else []
        results.append(
            {
                "expectation": e["type"],
                "column": column,
                "success": judged == 0 or (judged - unexpected) / judged >= kw["mostly"],
                "element_count": rows,
                "unexpected_count": unexpected,
                "unexpected_percent": round(unexpected / judged * 100, 3) if judged else 0.0,  # as GE
                "sample": sample,
                "source": "catalog",
            }
        )
    if own_in_sql(feed):
        for e in feed.expectations:
            results.append(_count_own(conn, table, e, rows))
            expected.append({"type": e.type, "kwargs": _suite_kwargs(e)})
    elif feed.expectations:
        own = suite(feed, rows, catalog=False)
        results += validate(feed, frame(conn, feed, partition), own)
        expected += suite_json(own)
    return results, [{k: e[k] for k in ("type", "kwargs")} for e in expected]


# A feed whose own expectations are all of these two kinds has them counted in SQL like the catalog's (GE's
# import, ~3 s per process, is then not paid), with GE's semantics: nulls are not judged, ``mostly`` applies to the
# values present, bounds are inclusive, the sample is the first unexpected values in row order. Numbers are
# compared exactly (numeric), where GE compares them as floats: they differ only for a value within a float's
# rounding of a bound. Another kind or keyword (strict bounds...) anywhere in the feed: all of them go to GE, in
# the order declared. test_expectations_sql.py holds both equal to GE's own results, on real and corrupted data.
IN_SET, BETWEEN = "expect_column_values_to_be_in_set", "expect_column_values_to_be_between"


def _number(v) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def _countable(e) -> bool:
    """True when SQL counts this expectation with GE's semantics (its kind, keywords and column type)."""
    kw, column = e.kwargs, e.kwargs.get("column")
    mostly = kw.get("mostly", 1)
    if not isinstance(column, str) or not _number(mostly) or not 0 <= mostly <= 1:
        return False
    if e.type == IN_SET:
        values = kw.get("value_set")
        return (
            set(kw) <= {"column", "value_set", "mostly"}
            and canonical.sql_type(column) == "text"
            and isinstance(values, list)
            and all(isinstance(v, str) for v in values)
        )
    if e.type == BETWEEN:
        low, high = kw.get("min_value"), kw.get("max_value")
        return (
            set(kw) <= {"column", "min_value", "max_value", "mostly"}
            and canonical.sql_type(column) in ("numeric", "double precision")
            and all(v is None or _number(v) for v in (low, high))
            and (low is not None or high is not None)
            and (low is None or high is None or low <= high)  # GE reports that as an error
        )
    return False


def own_in_sql(feed: Feed) -> bool:
    """True when every one of the feed's own expectations is counted in SQL (and it has some)."""
    return bool(feed.expectations) and all(_countable(e) for e in feed.expectations)


def _suite_kwargs(e) -> dict:
    """The expectation's kwargs as GE's suite shows them (bounds as floats, ``mostly`` 1 left out)."""
    kw = {
        k: float(v) if k in ("min_value", "max_value") and v is not None else v for k, v in e.kwargs.items()
    }
    return {k: v for k, v in kw.items() if not (k == "mostly" and v == 1)}


def _count_own(conn, table: sql.Composable, e, rows: int) -> dict:
    kw = e.kwargs
    value = sql.Identifier(kw["column"])
    if e.type == IN_SET:
        bad = sql.SQL("{} <> all(%(values)s)").format(value)
    else:  # exact numbers: a value beyond a float's range is compared, not an error
        bad = sql.SQL(" or ").join(
            sql.SQL("{} {} %({})s").format(value, sql.SQL(op), sql.SQL(k))
            for k, op in (("min_value", "<"), ("max_value", ">"))
            if kw.get(k) is not None
        )
    params = {"values": kw.get("value_set")} | {
        k: None if kw.get(k) is None else Decimal(repr(kw[k])) for k in ("min_value", "max_value")
    }
    present, unexpected = conn.execute(
        sql.SQL("select count({v}), count(*) filter (where {v} is not null and ({bad})) from {t}").format(
            v=value, bad=bad, t=table
        ),
        params,
    ).fetchone()
    sample = []
    if unexpected:  # the first few in the table's order, as GE's partial unexpected list
        sample = [
            canonical.mask(kw["column"], _show(v if e.type == IN_SET else float(v)))  # GE reads floats
            for (v,) in conn.execute(
                sql.SQL(
                    "select {v} from {t} where {v} is not null and ({bad}) order by _row_id limit %(n)s"
                ).format(v=value, bad=bad, t=table),
                {**params, "n": SAMPLE},
            ).fetchall()
        ]
    return {
        "expectation": e.type,
        "column": kw["column"],
        "success": present == 0 or (present - unexpected) / present >= kw.get("mostly", 1),
        "element_count": rows,
        "unexpected_count": unexpected,
        "unexpected_percent": round(unexpected / present * 100, 3) if present else 0.0,
        "sample": sample,
        "source": "feed",
    }


RESULT_FIELDS = (
    "expectation",
    "column",
    "success",
    "element_count",
    "unexpected_count",
    "unexpected_percent",
    "sample",
)


def comparable(results: list[dict]) -> list[dict]:
    """Results of ``check`` and of ``validate`` reduced to what both give (to compare the two paths)."""
    return [{k: r[k] for k in RESULT_FIELDS} for r in results]


def _pair_sample(conn, table) -> list[str]:
    """A few (event_date, birth_date) pairs out of order, as GE's partial unexpected list shows them."""
    pairs = conn.execute(
        sql.SQL(
            "select event_date, birth_date from {} where event_date < birth_date order by _row_id limit %s"
        ).format(table),
        (SAMPLE,),
    ).fetchall()
    return [canonical.mask("event_date>birth_date", _show(list(p))) for p in pairs]


def frame(conn, feed: Feed, partition: str) -> pd.DataFrame:
    """The staged partition's canonical columns, typed for GE (dates as datetimes, amounts as floats)."""
    import pandas as pd  # ~0.3 s, paid only by a feed with expectations of its own (every process loads this module)

    names = staging.fields(feed)
    cur = conn.execute(
        sql.SQL("select {} from {} order by _row_id").format(  # row order: GE's samples are its first
            sql.SQL(", ").join(sql.Identifier(c) for c in names), staging.staged_table(feed, partition)
        )
    )
    df = pd.DataFrame(cur.fetchall(), columns=names, dtype=object)
    for c in names:
        kind = canonical.sql_type(c)
        if kind == "date" or kind == "timestamp":
            df[c] = pd.to_datetime(df[c])
        elif kind in ("numeric", "double precision"):
            df[c] = pd.to_numeric(df[c], errors="coerce")
    return df


def validate(feed: Feed, df: pd.DataFrame, expectation_suite: gx.ExpectationSuite) -> list[dict]:
    """Each expectation's outcome: type, columns, success, counts and a few (masked) unexpected values."""
    batch = _batch_definition(feed.id).get_batch(batch_parameters={"dataframe": df})
    out = []
    for r in batch.validate(expectation_suite).results:
        cfg, res = r.expectation_config, r.result
        column = cfg.kwargs.get("column") or f"{cfg.kwargs.get('column_A')}>{cfg.kwargs.get('column_B')}"
        sample = [
            canonical.mask(column, _show(v))
            for v in (res.get("partial_unexpected_list") or [])
            if not _missing(v)
        ][:SAMPLE]
        out.append(
            {
                "expectation": cfg.type,
                "column": column,
                "success": bool(r.success),
                "element_count": res.get("element_count"),
                "unexpected_count": res.get("unexpected_count"),
                "unexpected_percent": round(res.get("unexpected_percent") or 0.0, 3),
                "sample": sample,
                "source": (cfg.meta or {}).get("source", "catalog"),
            }
        )
    return out


def _missing(v) -> bool:
    import pandas as pd

    return v is None or (not isinstance(v, (list, tuple)) and pd.isna(v))


def _show(v) -> str:
    if isinstance(v, (list, tuple)):
        return "(" + ", ".join(_show(x) for x in v) + ")"
    if type(v).__module__.split(".")[0] in ("pandas", "numpy"):  # GE's values (pandas is loaded then)
        import numpy as np
        import pandas as pd

        if isinstance(v, (pd.Timestamp, np.datetime64)):
            return str(pd.Timestamp(v).date())
    return str(v)


def suite_json(expectation_suite: gx.ExpectationSuite) -> list[dict]:
    return [
        {"type": e.expectation_type, "kwargs": json.loads(json.dumps(e.configuration.kwargs, default=str))}
        for e in expectation_suite.expectations
    ]
