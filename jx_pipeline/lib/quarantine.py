"""Quarantine of feed partitions: only data whose blocking checks passed is linked and published.

A feed partition whose raw or staged gating check fails is recorded in ``quality.quarantine`` (in the same
transaction as the data it judges) instead of stopping the run: the step succeeds, the check is reported as failed
with WARN severity, and everything downstream reads the feed through ``staging.current()``, which leaves
quarantined partitions out. The quarantine outlives the run; a later run of the same partition that passes the
same check clears it.

These checks are therefore not Dagster-``blocking``: an ERROR-severity blocking check would skip linking and the
marts for all 27 departments in the run, and Dagster's automation (``all_deps_blocking_checks_passed``) would hold
them back until the bad partition passed. The quarantine blocks the bad partition's data, not everyone's run.

Left out means: each record counts in its latest version from a partition that is not quarantined. A record
changed in a quarantined partition falls back to its previous good version; a record first seen there is
absent; a deletion delivered there is not applied yet.
"""

import dagster as dg
import psycopg
from psycopg import sql

from jx_pipeline.catalog.schema import Feed

RAW = "raw/rows_reconcile"
STAGED = "staged/rows_reconcile"
EXPECTATIONS = "staged/expectations"
CHECK_NOTE = (
    " Gates the data, not the run: a failing partition is quarantined (quality.quarantine), the check fails as a"
    " warning, the run goes on, and linking and the marts leave the partition out until a later run of it passes."
)


def record(
    conn: psycopg.Connection, feed: Feed, partition: str, check: str, failure: str | None, run_id: str
) -> None:
    """The outcome of ``check`` on one feed partition: a failure opens (or renews) its quarantine, a pass
    clears an open one."""
    if failure:
        conn.execute(
            """insert into quality.quarantine (feed_id, department, partition_key, check_name, reason, run_id)
               values (%s, %s, %s, %s, %s, %s)
               on conflict (feed_id, partition_key, check_name) where cleared_at is null
               do update set reason = excluded.reason, run_id = excluded.run_id, failed_at = now()""",
            (feed.id, feed.department, partition, check, failure, run_id),
        )
    else:
        conn.execute(
            """update quality.quarantine set cleared_at = now(), cleared_by_run = %s
                where feed_id = %s and partition_key = %s and check_name = %s and cleared_at is null""",
            (run_id, feed.id, partition, check),
        )


def active(conn: psycopg.Connection) -> set[tuple[str, str]]:
    """(feed_id, partition) of every feed partition quarantined now."""
    rows = conn.execute(
        "select distinct feed_id, partition_key from quality.quarantine where cleared_at is null"
    )
    return {(f, p) for f, p in rows.fetchall()}


def listing(conn: psycopg.Connection, feed_ids: list[str] | None = None) -> list[dict]:
    """The quarantined partitions now (of ``feed_ids``, or all), with their failed checks and why."""
    rows = conn.execute(
        """select feed_id, department, partition_key, checks, reason, since from quality.quarantine_active
            where %(ids)s::text[] is null or feed_id = any(%(ids)s) order by feed_id, partition_key""",
        {"ids": feed_ids},
    ).fetchall()
    names = ("feed_id", "department", "partition", "checks", "reason", "since")
    return [dict(zip(names, (*r[:5], r[5].isoformat(timespec="seconds")), strict=True)) for r in rows]


def good_partitions(feed: Feed) -> sql.Composable:
    """A condition on ``_partition`` of the feed's staged rows: true outside its quarantined partitions
    (read in the caller's snapshot, so a reader sees the data and its verdict from one moment)."""
    return sql.SQL(
        "_partition not in (select partition_key from quality.quarantine where feed_id = {} and cleared_at is null)"
    ).format(sql.Literal(feed.id))


def severity(failures: dict[str, str]) -> dg.AssetCheckSeverity:
    """Failed partitions were quarantined: the check fails as a warning, so the run goes on without them."""
    return dg.AssetCheckSeverity.WARN if failures else dg.AssetCheckSeverity.ERROR


def metadata(failures: dict[str, str]) -> dict:
    """What a failed check's (and its asset's) metadata says about the partitions it quarantined."""
    if not failures:
        return {}
    return {"quarantined": dg.MetadataValue.json(failures)}
