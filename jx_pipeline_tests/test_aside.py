"""lib/aside.py on a table of a scratch database: a read started aside sees the step's snapshot (not what was
committed since, not the step's own writes), and when it cannot run (a lock the step holds) the step reads
itself, with the same answer."""

import time

import psycopg
import pytest

from jx_pipeline.lib.aside import Aside
from jx_pipeline.lib.pg import connect


def _count(conn: psycopg.Connection) -> int:
    return conn.execute("select count(*) from probe").fetchone()[0]


@pytest.fixture
def db(scratch_db):
    with connect(scratch_db, autocommit=True) as conn:
        conn.execute("create table probe (id int primary key)")
        conn.execute("insert into probe select generate_series(1, 1000)")
    return scratch_db


def test_an_aside_sees_the_steps_snapshot_not_later_commits_nor_the_steps_own_writes(db):
    with connect(db) as step, connect(db, autocommit=True) as other:
        step.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        with step.transaction():
            assert _count(step) == 1000  # the snapshot
            other.execute("insert into probe select generate_series(1001, 1500)")  # committed after it
            step.execute("delete from probe where id <= 10")  # the step's own, uncommitted
            aside = Aside(step, _count)
            assert aside.result(step) == 1000
            assert aside.error is None and aside.counted.startswith("aside")
            assert _count(step) == 990  # the step sees its own delete; the aside did not
        assert _count(other) == 1490


def test_an_aside_that_would_wait_for_the_steps_lock_gives_way_to_the_step(db):
    with connect(db) as step:
        step.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        with step.transaction():
            step.execute("lock table probe in access exclusive mode")
            started = time.monotonic()
            aside = Aside(step, _count)
            assert aside.result(step) == 1000  # counted by the step itself
            assert "lock" in aside.error and aside.counted.startswith("in the step")
            assert time.monotonic() - started < 30  # gave up after LOCK_WAIT, did not hang


def test_an_aside_needs_a_snapshot_to_share(db):
    """Outside a REPEATABLE READ transaction there is no snapshot to export: the step's code must fail loudly,
    not count at another moment."""
    with connect(db, autocommit=True) as step, pytest.raises(ValueError, match="autocommit"):
        Aside(step, _count)
    with connect(db) as step, pytest.raises(ValueError, match="read committed"):
        Aside(step, _count)


def test_an_aside_runs_in_one_process_beside_the_step(db):
    """The aside reads whole tables on one core while the step goes on on the other: parallel workers would
    take the step's core too. The step's own connection keeps the server's setting."""
    setting = "select current_setting('max_parallel_workers_per_gather')"
    with connect(db) as step:
        step.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        with step.transaction():
            server = step.execute(setting).fetchone()[0]
            if server == "0":
                pytest.skip("the server gives no parallel workers: nothing to tell apart")
            aside = Aside(step, lambda c: c.execute(setting).fetchone()[0])
            assert (aside.result(step), aside.error) == ("0", None)
            assert step.execute(setting).fetchone()[0] == server != "0"
