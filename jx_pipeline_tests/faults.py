"""Helpers of the fault tests (test_retry, test_crash): a real `jx-pipeline materialize` process group, the
moment a statement of it is running, the steps Dagster recorded, and a warehouse checksum that ignores what
differs between two correct runs (batch ids = run ids, load timestamps)."""

from __future__ import annotations

import os
import re
import subprocess
import time
from contextlib import contextmanager
from pathlib import Path

import psycopg
from psycopg import sql

from jx_pipeline.lib import settings
from jx_pipeline.lib.pg import connect, quote_ident
from jx_pipeline_tests.conftest import JX

VOLATILE = {"batch_id", "_batch_id", "loaded_at", "checked_at", "computed_at"}
# tables' tallies (lib/tallies.py): keyed by table oids, with write marks from a sequence; two correct runs
# differ, and a missing one is only read again
BOOKKEEPING = {"staged._key_tally"}
SCHEMAS = ("raw", "staged", "core", "quality")


def warehouse_digest(url: str) -> dict[str, tuple[int, str]]:
    """{schema.table: (rows, order-free checksum)} over raw, staged, core and quality, without the volatile
    columns; tables created on the way (partitions) are counted in their parent."""
    out = {}
    with connect(url, autocommit=True) as conn:
        tables = conn.execute(
            """select n.nspname, c.relname, c.oid from pg_class c join pg_namespace n on n.oid = c.relnamespace
                where c.relkind in ('r', 'p') and not c.relispartition and n.nspname = any(%s)
                order by 1, 2""",
            (list(SCHEMAS),),
        ).fetchall()
        for schema, table, oid in tables:
            if f"{schema}.{table}" in BOOKKEEPING:
                continue
            cols = [
                quote_ident(c)
                for (c,) in conn.execute(
                    "select attname from pg_attribute where attrelid = %s and attnum > 0 and not attisdropped"
                    " order by attnum",
                    (oid,),
                ).fetchall()
                if c not in VOLATILE
            ]
            rows, checksum = conn.execute(
                f"select count(*), coalesce(sum(hashtextextended(row({', '.join(cols)})::text, 0)::numeric), 0)"
                f"::text from {quote_ident(schema)}.{quote_ident(table)}"
            ).fetchone()
            out[f"{schema}.{table}"] = (rows, checksum)
    return out


def materialize(select: str, env: dict, log: Path, partition_range: str | None = None) -> subprocess.Popen:
    """`jx-pipeline materialize` as the leader of its own process group (Dagster's processes included)."""
    args = [JX, "materialize", "--select", select]
    if partition_range:
        args += ["--partition-range", partition_range]
    full = {k: v for k, v in {**os.environ, **env}.items() if v is not None}
    with log.open("wb") as out:
        return subprocess.Popen(
            args,
            env=full,
            cwd=settings.PROJECT_ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def wait_for_statement(
    url: str,
    database: str,
    pattern: str,
    proc: subprocess.Popen,
    timeout: float = 240,
    states: tuple[str, ...] = ("active",),
) -> str:
    """Poll pg_stat_activity until a backend of ``database`` in one of ``states`` shows a statement matching
    ``pattern`` (a regex, case-insensitive; for 'idle in transaction' the last statement of the open
    transaction); returns the statement. Fails when ``proc`` ends first."""
    rx = re.compile(pattern, re.I | re.S)
    deadline = time.monotonic() + timeout
    with connect(url, autocommit=True) as conn:
        while time.monotonic() < deadline:
            for (query,) in conn.execute(
                "select query from pg_stat_activity where datname = %s and state = any(%s)"
                " and pid <> pg_backend_pid()",
                (database, list(states)),
            ).fetchall():
                if rx.search(query or ""):
                    return query
            if proc.poll() is not None:
                raise AssertionError(f"the run ended (exit {proc.returncode}) before {pattern!r} was seen")
            time.sleep(0.02)
    raise AssertionError(f"no statement matching {pattern!r} within {timeout} s")


def last_run(dagster_url: str) -> tuple[str, str, dict[tuple[str, str], int]]:
    """(run id, status, {(step, event type): count}) of the newest run in Dagster's storage."""
    with psycopg.connect(dagster_url) as conn:
        run_id, status = conn.execute(
            "select run_id, status from runs order by create_timestamp desc limit 1"
        ).fetchone()
        events = conn.execute(
            "select step_key, dagster_event_type, count(*) from event_logs"
            " where run_id = %s and dagster_event_type is not null group by 1, 2",
            (run_id,),
        ).fetchall()
    return run_id, status, {(step or "", kind): n for step, kind, n in events}


def half_state(url: str) -> list[str]:
    """What a load left half-done: an audit row whose table rows or rejects do not match it, rows / rejects of a
    feed partition without its audit row, a staged load without its expectation results or the other way round.
    Empty when every load is either complete or absent."""
    problems = []
    with connect(url, autocommit=True) as conn:
        audit = {
            (f, p, s): (loaded, rejected)
            for f, p, s, loaded, rejected in conn.execute(
                "select feed_id, partition_key, stage, rows_loaded, rows_rejected from quality.load_audit"
            ).fetchall()
        }
        rejects = dict(
            ((f, p, s), n)
            for f, p, s, n in conn.execute(
                "select feed_id, partition_key, stage,"
                " count(*) filter (where scope = 'row')"
                " from quality.rejects group by 1, 2, 3"
            ).fetchall()
        )
        checked = {
            (f, p, "staged")
            for f, p in conn.execute("select distinct feed_id, partition_key from quality.expectation_result")
        }
        rows = {}
        for schema in ("raw", "staged"):
            for (table,) in conn.execute(
                "select c.relname from pg_class c join pg_namespace n on n.oid = c.relnamespace"
                " where n.nspname = %s and c.relkind = 'p'",
                (schema,),
            ).fetchall():
                for p, n in conn.execute(
                    f"select _partition, count(*) from {schema}.{quote_ident(table)} group by 1"
                ).fetchall():
                    rows[(table, p, schema)] = n
    for key, (loaded, rejected) in audit.items():
        if rows.get(key, 0) != loaded or rejects.get(key, 0) != rejected:
            problems.append(
                f"audit {key}: {loaded} loaded / {rejected} rejected, found {rows.get(key, 0)} / {rejects.get(key, 0)}"
            )
    staged = {k for k in audit if k[2] == "staged"}
    problems += [f"staged {k} without its expectation results" for k in staged - checked]
    problems += [f"expectation results of {k} without a staged load" for k in checked - staged]
    problems += [f"rows of {k} without an audit row" for k in rows.keys() - audit.keys()]
    problems += [f"rejects of {k} without an audit row" for k in rejects.keys() - audit.keys()]
    return problems


@contextmanager
def held_first_row(url: str, table: str, seconds: float = 3.0):
    """A BEFORE ROW trigger on ``table`` (a partitioned parent: new partitions inherit it) that sleeps once per
    transaction at its first row, so that a load's COPY is certainly under way when a test looks for it. A day
    table made apart and attached after its COPY (lib/staging.py) has no trigger of its parent's while it is
    filled: an event trigger gives one to each table created in the parent's schema under its name + ``__``."""
    with psycopg.connect(url, autocommit=True) as conn:
        schema, name = conn.execute(
            "select n.nspname, c.relname from pg_class c join pg_namespace n on n.oid = c.relnamespace"
            " where c.oid = %s::regclass",
            (table,),
        ).fetchone()
        conn.execute(
            "create or replace function public.jx_test_hold() returns trigger language plpgsql as $$ begin"
            " if current_setting('jx_test.held', true) is distinct from '1' then"
            f" perform set_config('jx_test.held', '1', true); perform pg_sleep({float(seconds)}); end if;"
            " return new; end $$"
        )
        conn.execute(
            f"create trigger jx_test_hold before insert on {table} for each row execute function public.jx_test_hold()"
        )
        conn.execute(
            "create or replace function public.jx_test_hold_day() returns event_trigger language plpgsql as $$"
            " declare r record; begin"
            " for r in select c.oid from pg_event_trigger_ddl_commands() d join pg_class c on c.oid = d.objid"
            "  join pg_namespace n on n.oid = c.relnamespace"
            f" where d.command_tag = 'CREATE TABLE' and n.nspname = {sql.Literal(schema).as_string(conn)}"
            f"  and left(c.relname, {len(name) + 2}) = {sql.Literal(name + '__').as_string(conn)} and c.relkind = 'r' loop"
            " execute format('create trigger jx_test_hold_day before insert on %s for each row"
            " execute function public.jx_test_hold()', r.oid::regclass); end loop; end $$"
        )
        conn.execute(
            "create event trigger jx_test_hold_day on ddl_command_end when tag in ('CREATE TABLE')"
            " execute function public.jx_test_hold_day()"
        )
    try:
        yield
    finally:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("drop event trigger if exists jx_test_hold_day")
            conn.execute("drop function if exists public.jx_test_hold_day()")
            conn.execute("drop function if exists public.jx_test_hold() cascade")
