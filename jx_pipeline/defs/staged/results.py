"""Staging a department's feeds for a run, and what each staged feed reports to Dagster: its materialization
metadata and both check results. Great Expectations is imported only when a feed with expectations of its own is
validated (lib/expectations.py).
"""

from collections import Counter
from dataclasses import dataclass

import dagster as dg
import psycopg
from psycopg import sql

from jx_pipeline.catalog import Feed
from jx_pipeline.lib import expectations, fork_pool, quarantine, reconcile, staging, staging_fast


def _store(conn: psycopg.Connection, feed: Feed, partition: str, outcome: list[dict]) -> None:
    with conn.transaction():
        conn.execute(
            "delete from quality.expectation_result where feed_id = %s and partition_key = %s",
            (feed.id, partition),
        )
        with conn.cursor().copy(
            "copy quality.expectation_result (feed_id, partition_key, expectation, column_name, success,"
            " element_count, unexpected_count, suite_source) from stdin"
        ) as copy:
            for r in outcome:
                copy.write_row(
                    (
                        feed.id,
                        partition,
                        r["expectation"],
                        r["column"],
                        r["success"],
                        r["element_count"],
                        r["unexpected_count"],
                        r["source"],
                    )
                )


def _table(outcome: list[dict]) -> str:
    lines = [
        "| partition | expectation | column | ok | unexpected | % | sample |",
        "|---|---|---|---|---|---|---|",
    ]
    lines += [
        f"| {r['partition']} | {r['expectation'].removeprefix('expect_')} | {r['column']} |"
        f" {'✅' if r['success'] else '❌'} | {r['unexpected_count']} | {r['unexpected_percent']} |"
        f" {', '.join(r['sample'])} |"
        for r in outcome
    ]
    return "\n".join(lines)


def _failed(result: list[dict]) -> str | None:
    """A partition's failed expectations in words, or None when its suite passed."""
    failed = [
        f"{r['expectation'].removeprefix('expect_')}({r['column'] or ''}) {r['unexpected_count']} unexpected"
        f" ({r['unexpected_percent']} %)"
        for r in result
        if not r["success"]
    ]
    return f"{len(failed)} expectation(s) failed: " + "; ".join(failed) if failed else None


# below this many raw rows in the step, forking workers and opening their connections costs more than it saves
# (a day's increment: a few hundred rows per department)
PARALLEL_ROWS = 20_000


@dataclass
class FeedStaged:
    """What staging one feed's partitions found, as plain data (it comes back from a worker process)."""

    staged: list[staging.StageResult]
    outcome: list[dict]  # every partition's expectation results
    suites: dict[str, list[dict]]
    tally: reconcile.Tally
    quarantined: dict[str, dict[str, str]]  # check -> partition -> reason
    counted: int  # staged rows of the partitions, counted after they committed


def stage_feed(conn: psycopg.Connection, feed: Feed, partitions: list[str], batch_id: str) -> FeedStaged:
    """Stage and validate each partition of the run, each in its own transaction."""
    staged, outcome, suites, tally = [], [], {}, reconcile.Tally()
    quarantined: dict[str, dict[str, str]] = {quarantine.STAGED: {}, quarantine.EXPECTATIONS: {}}
    for p in partitions:
        # a partition's staged rows, its expectation results and its quarantine verdict commit together
        with conn.transaction():
            staged.append(staging.stage_partition(conn, feed, p, batch_id))
            result, suites[p] = expectations.check(conn, feed, p)
            _store(conn, feed, p, result)
            counted = reconcile.staged(conn, feed, [p])
            tally.add(counted)
            for check, failure in (
                (quarantine.STAGED, counted.failure()),
                (quarantine.EXPECTATIONS, _failed(result)),
            ):
                quarantine.record(conn, feed, p, check, failure, batch_id)
                if failure:
                    quarantined[check][p] = failure
        outcome += [{"partition": p, **r} for r in result]
    with conn.transaction():  # leaves the connection idle: the next feed's partitions commit on their own
        counted = conn.execute(
            sql.SQL("select count(*) from {} where _partition = any(%s)").format(staging.staged_table(feed)),
            (partitions,),
        ).fetchone()[0]
    return FeedStaged(staged, outcome, suites, tally, quarantined, counted)


def stage_department(
    conn: psycopg.Connection,
    url: str,
    feeds: list[tuple[Feed, dg.AssetKey]],
    partitions: list[str],
    batch_id: str,
):
    """Stage a department's feeds and yield each feed's asset result and checks, in the feeds' order. With more
    than one feed and ``PARALLEL_ROWS`` raw rows or more: on forked workers (lib/fork_pool.py, at most one per
    core and per feed), each feed on a connection of its own; otherwise in this process on ``conn``."""
    with conn.transaction():
        rows = conn.execute(
            "select coalesce(sum(rows_loaded), 0) from quality.load_audit where stage = 'raw'"
            " and feed_id = any(%s) and partition_key = any(%s)",
            ([f.id for f, _ in feeds], partitions),
        ).fetchone()[0]
    parallel = len(feeds) > 1 and rows >= PARALLEL_ROWS
    if parallel:
        expectations.prepare([f for f, _ in feeds])  # built once here, shared by the forked workers
        staging_fast.areas()  # the same
    work = fork_pool.on_connections(conn, url, lambda c, feed: stage_feed(c, feed, partitions, batch_id))
    batches = [[f] for f, _ in feeds]
    for (_, key), [done] in zip(feeds, fork_pool.imap_batches(work, batches, parallel), strict=True):
        yield from _events(key, done)


def _events(key: dg.AssetKey, done: FeedStaged):
    """The feed's asset result and its two checks."""
    staged, outcome, quarantined = done.staged, done.outcome, done.quarantined
    reasons = sum((r.reasons for r in staged), Counter())
    read = sum(r.rows_read for r in staged)
    loaded = sum(r.rows_staged for r in staged)
    rejected = sum(r.rows_rejected for r in staged)
    counts = {"rows_read": read, "rows_staged": loaded, "rows_rejected": rejected}
    yield dg.MaterializeResult(
        asset_key=key,
        metadata={
            "dagster/row_count": dg.MetadataValue.int(done.counted),
            **counts,
            "values_nulled": sum(r.values_nulled for r in staged),
            "reject_reasons": dg.MetadataValue.json(dict(reasons.most_common())),
            **quarantine.metadata({p: r for q in quarantined.values() for p, r in q.items()}),
        },
    )
    staged_q, expect_q = quarantined[quarantine.STAGED], quarantined[quarantine.EXPECTATIONS]
    yield done.tally.check(
        "rows_reconcile",
        key,
        severity=quarantine.severity(staged_q),
        **counts,
        **quarantine.metadata(staged_q),
    )
    failed = [r for r in outcome if not r["success"]]
    yield dg.AssetCheckResult(
        asset_key=key,
        check_name="expectations",
        passed=not failed,
        severity=quarantine.severity(expect_q),
        metadata={
            **quarantine.metadata(expect_q),
            "expectations": len(outcome),
            "failed": len(failed),
            "unexpected_total": sum(r["unexpected_count"] or 0 for r in outcome),
            "results": dg.MetadataValue.md(_table(outcome)),
            "suite": dg.MetadataValue.json(done.suites),
        },
    )
