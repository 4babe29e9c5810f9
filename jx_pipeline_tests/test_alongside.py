"""A check's count made on a second connection in the rebuild's snapshot (lib/alongside.py), on the real server:
it sees what the rebuild's snapshot sees and not a row committed after it; a lock it cannot get soon (a writer
queued behind the rebuild) sends the count back to the rebuild's connection instead of a deadlock; its error is
the check's."""

import threading

import psycopg
import pytest

from jx_pipeline.lib.alongside import Alongside
from jx_pipeline.lib.pg import connect


@pytest.fixture
def table(scratch_db) -> str:
    with connect(scratch_db) as conn:
        conn.execute("create table t (n int)")
        conn.execute("insert into t select generate_series(1, 100)")
    return scratch_db


def _count(conn: psycopg.Connection) -> tuple[int, int]:
    return conn.execute("select count(*), sum(n) from t").fetchone()


def _snapshot(url: str) -> psycopg.Connection:
    conn = connect(url)
    conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
    conn.execute("select 1")  # the snapshot
    return conn


def test_the_count_sees_the_rebuilds_snapshot_not_a_row_committed_after(table):
    rebuild = _snapshot(table)
    committed = threading.Event()

    def work(conn):
        committed.wait(30)
        return _count(conn), conn.info.backend_pid

    early = Alongside(table, work)
    early.start(rebuild)
    with connect(table) as other:  # committed after the snapshot, before the count reads
        other.execute("insert into t values (1000)")
    committed.set()
    (counted, pid) = early.result(rebuild)
    assert counted == (100, 5050) == _count(rebuild)
    assert pid != rebuild.info.backend_pid and not early.inline  # made on the other connection
    with connect(table) as other:
        assert _count(other) == (101, 6050)  # the row is there for a new snapshot
    rebuild.rollback()
    rebuild.close()


def test_a_lock_it_cannot_get_sends_the_count_back_to_the_rebuilds_connection(table):
    rebuild = _snapshot(table)
    _count(rebuild)  # the rebuild holds ACCESS SHARE on t, as a rebuild holds the tables it read
    swapper = connect(table)
    queued = threading.Thread(
        target=lambda: swapper.execute("lock table t in access exclusive mode"), daemon=True
    )
    queued.start()  # waits for the rebuild; a reader of t now queues behind it
    with connect(table, autocommit=True) as watch:
        for _ in range(300):
            if watch.execute(
                "select 1 from pg_stat_activity where pid = %s and wait_event_type = 'Lock'",
                (swapper.info.backend_pid,),
            ).fetchone():
                break
            threading.Event().wait(0.1)
        else:
            raise AssertionError("the swapper never queued")
    seen = []

    def work(conn):
        seen.append(conn.info.backend_pid)
        return _count(conn)

    early = Alongside(table, work)
    early.start(rebuild)
    assert early.result(rebuild) == (100, 5050)
    assert (
        early.inline and seen[-1] == rebuild.info.backend_pid
    )  # the second try: the rebuild's own connection
    rebuild.rollback()  # the swapper gets its lock
    queued.join(30)
    swapper.rollback()
    swapper.close()
    rebuild.close()


def test_its_error_is_the_checks(table):
    rebuild = _snapshot(table)

    def work(conn):
        return conn.execute("select count(*) from no_such_table").fetchone()

    early = Alongside(table, work)
    early.start(rebuild)
    with pytest.raises(psycopg.errors.UndefinedTable):
        early.result(rebuild)
    rebuild.rollback()
    rebuild.close()


def test_never_started_it_counts_on_the_rebuilds_connection(table):
    with connect(table) as conn:
        early = Alongside(table, lambda c: (_count(c), c.info.backend_pid))
        assert early.result(conn) == ((100, 5050), conn.info.backend_pid)
