"""Great Expectations 1.x suites per feed, validated against a staged partition.

The suite is generated from the catalog — how complete each mapped field must be after standardization, and that
a person's records do not predate their birth — plus the feed's own expectations written in ``feeds.yaml``.
GE is called directly (dagster-ge pins GE < 1) and imported only here: the import costs ~6 s.
"""

import json
import math
from functools import cache

import great_expectations as gx
import numpy as np
import pandas as pd
from great_expectations.data_context.types.base import ProgressBarsConfig
from psycopg import sql

from jx_pipeline.catalog.schema import Feed
from jx_pipeline.lib import canonical, staging
from jx_pipeline.lib.errors import JxError

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
    ctx = gx.get_context(mode="ephemeral")
    ctx.variables.progress_bars = ProgressBarsConfig(globally=False)
    return ctx


FALSE_FAILURE = 0.00135  # the one-sided tail beyond three standard deviations


def allowance(share: float, rows: int) -> float:
    """The share a partition of ``rows`` rows must reach: the lowest share a partition meeting the target
    falls below with chance at most FALSE_FAILURE (exact binomial quantile), so that a day's increment of a
    few rows does not fail by chance (two rows both without a phone, at a target of 85 %, happen 2 % of the
    time) while a large partition is held to the target."""
    if share >= 1 or share <= 0:
        return share
    from scipy.stats import binom

    rows = max(rows, 1)
    return math.floor(binom.ppf(FALSE_FAILURE, rows, share) / rows * 1000) / 1000


@cache
def _batch_definition(feed_id: str):
    """Registered once per feed and process: each registration rewrites the context's config (~20 ms)."""
    ctx = _context()
    source = ctx.data_sources.get("staged") if "staged" in ctx.data_sources.all() else None
    source = source or ctx.data_sources.add_pandas("staged")
    return source.add_dataframe_asset(feed_id).add_batch_definition_whole_dataframe("partition")


def suite(feed: Feed, rows: int) -> gx.ExpectationSuite:
    """The feed's suite for a partition of ``rows`` rows."""
    _context()
    s = gx.ExpectationSuite(name=f"jx.{feed.id}")
    mapped = set(feed.columns.values())
    for field, share in (COMPLETENESS | feed.completeness).items():
        if field in mapped and share > 0:
            s.add_expectation(
                gx.expectations.ExpectColumnValuesToNotBeNull(
                    column=field, mostly=allowance(share, rows), meta={"source": "catalog", "target": share}
                )
            )
    if {"birth_date", "event_date"} <= mapped:
        s.add_expectation(
            gx.expectations.ExpectColumnPairValuesAToBeGreaterThanB(
                column_A="event_date",
                column_B="birth_date",
                or_equal=True,
                ignore_row_if="either_value_is_missing",
                mostly=allowance(0.99, rows),
                meta={"source": "catalog", "target": 0.99},
            )
        )
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
    cls = getattr(gx.expectations, cls_name, None)
    if cls is None:
        raise JxError(
            f"feed {feed.id}: {name} is not a Great Expectations expectation",
            fix="use a name from the Great Expectations 1.x gallery in the feed's expectations",
        )
    return cls


def frame(conn, feed: Feed, partition: str) -> pd.DataFrame:
    """The staged partition's canonical columns, typed for GE (dates as datetimes, amounts as floats)."""
    names = staging.fields(feed)
    cur = conn.execute(
        sql.SQL("select {} from {}").format(
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
    return v is None or (not isinstance(v, (list, tuple)) and pd.isna(v))


def _show(v) -> str:
    if isinstance(v, (list, tuple)):
        return "(" + ", ".join(_show(x) for x in v) + ")"
    if isinstance(v, (pd.Timestamp, np.datetime64)):
        return str(pd.Timestamp(v).date())
    return str(v)


def suite_json(expectation_suite: gx.ExpectationSuite) -> list[dict]:
    return [
        {"type": e.expectation_type, "kwargs": json.loads(json.dumps(e.configuration.kwargs, default=str))}
        for e in expectation_suite.expectations
    ]
