"""Two runs at once: loads of one feed partition, linking while loads go on, two linking runs.

Overlap is made certain, not left to timing: a third session holds a real PostgreSQL lock that every contender
needs (a table lock on ``quality.rejects`` or ``core.entity_link``, or a staged load left open), and the test
lets go only once the server shows each contender waiting on a lock (``pg_stat_activity``).
"""

import shutil
import threading
import time
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from jx_pipeline.catalog import load_catalog
from jx_pipeline.lib import identity, ingest, link_texts, linking, staging
from jx_pipeline.lib.migrations import migrate
from jx_pipeline.lib.pg import connect
from jx_pipeline_tests.conftest import catalog_with, run_cli

D1, D2 = "2026-11-01", "2026-11-02"


@pytest.fixture
def db(make_scratch_db) -> str:
    url = make_scratch_db()
    with connect(url) as conn:
        migrate(conn)
    return url


def _waiting(url: str, pids: list[int]) -> set[int]:
    """The sessions among ``pids`` that wait on a lock right now."""
    with connect(url, autocommit=True) as conn:
        rows = conn.execute(
            "select pid from pg_stat_activity where pid = any(%s) and wait_event_type = 'Lock'", (pids,)
        ).fetchall()
    return {r[0] for r in rows}


def _until(what: str, test, timeout: float = 120) -> None:
    end = time.monotonic() + timeout
    while not test():
        if time.monotonic() > end:
            raise AssertionError(f"timed out waiting until {what}")
        time.sleep(0.1)


class Worker(threading.Thread):
    """Runs ``fn(conn)`` on its own connection; keeps the result or the error."""

    def __init__(self, url: str, fn):
        super().__init__(daemon=True)
        self.conn = connect(url)
        self.pid = self.conn.info.backend_pid
        self.fn, self.result, self.error = fn, None, None

    def run(self):
        try:
            with self.conn:  # committed as a run's connection is when its step ends
                self.result = self.fn(self.conn)
        except Exception as exc:  # reported by the test
            self.error = exc


def _join(*workers: Worker) -> None:
    for w in workers:
        w.join(timeout=300)
        assert not w.is_alive(), "a worker did not finish"
    errors = [repr(w.error) for w in workers if w.error is not None]
    assert not errors, errors


def _blocker(url: str, statement: str) -> psycopg.Connection:
    conn = connect(url)
    conn.execute(statement)  # held until rollback
    return conn


def _counts(url: str, table: str) -> dict:
    with connect(url) as conn:
        return dict(conn.execute(f"select _partition, count(*) from {table} group by 1").fetchall())


def test_two_runs_of_one_feed_partition_both_succeed_with_one_load_of_rows(db, world, tmp_path):
    """Two `jx-pipeline materialize` processes load raw/gaj/ldrk for the same day at once (its first load:
    both create the feed's table). Before the lock, the second failed on pg_type_typname_nsp_index."""
    hold = _blocker(
        db, "lock table quality.rejects in share mode"
    )  # each load stops at its delete of rejects

    def two_loads(doc):  # gaj's source pool lets both runs in, so that both meet at the warehouse's lock
        next(d for d in doc["departments"] if d["code"] == "gaj")["max_concurrent_loads"] = 2

    env = {
        "JX_WAREHOUSE_URL": db,
        "JX_WORLD_DIR": str(world),
        "JX_CATALOG": str(catalog_with(tmp_path, two_loads)),
    }
    args = ("materialize", "--select", "raw/gaj/ldrk", "--partition-range", f"{D1}...{D1}")
    results: list = [None, None]

    def run(i):
        results[i] = run_cli(*args, env=env, timeout=600)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()

    def both_wait() -> bool:
        with connect(db, autocommit=True) as conn:
            n = conn.execute(
                "select count(*) from pg_stat_activity where datname = current_database()"
                " and wait_event_type = 'Lock' and pid <> %s",
                (hold.info.backend_pid,),
            ).fetchone()[0]
        return n == 2 or any(r is not None for r in results)

    _until("both runs wait", both_wait, timeout=300)
    hold.rollback()
    hold.close()
    for t in threads:
        t.join(timeout=600)
    assert [r.returncode for r in results] == [0, 0], [r.stderr[-2000:] for r in results]
    loaded = _counts(db, 'raw."gaj_ldrk"')
    with connect(db) as conn:
        audit = conn.execute(
            "select rows_read, rows_loaded, rows_rejected from quality.load_audit"
            " where feed_id = 'gaj_ldrk' and stage = 'raw'"
        ).fetchall()
        dup = conn.execute(
            'select count(*) - count(distinct (_source_file, _row_number)) from raw."gaj_ldrk"'
        ).fetchone()[0]
        rows = ingest.load_partition(
            conn, load_catalog().feed("gaj_ldrk"), D1, "alone", world=world
        ).rows_read
    assert loaded == {D1: rows} and rows > 0  # what one load alone gives
    assert audit == [(rows, rows, 0)] and dup == 0


def test_two_staged_loads_of_one_partition_both_succeed(db, world):
    feed = load_catalog().feed("gaj_czfw")
    with connect(db) as conn:
        ingest.load_partition(conn, feed, D1, "raw", world=world)
    hold = _blocker(db, "lock table quality.rejects in share mode")
    a, b = (Worker(db, lambda c, i=i: staging.stage_partition(c, feed, D1, f"s{i}")) for i in range(2))
    a.start()
    b.start()
    _until(
        "both staged loads wait", lambda: _waiting(db, [a.pid, b.pid]) == {a.pid, b.pid} or a.error or b.error
    )
    hold.rollback()
    hold.close()
    _join(a, b)
    assert a.result.rows_staged == b.result.rows_staged
    assert _counts(db, 'staged."gaj_czfw"') == {D1: a.result.rows_staged}
    with connect(db) as conn:
        audit = conn.execute(
            "select rows_read, rows_loaded, rows_rejected from quality.load_audit"
            " where feed_id = 'gaj_czfw' and stage = 'staged'"
        ).fetchall()
        rejects = conn.execute(
            "select count(*) from quality.rejects where feed_id = 'gaj_czfw' and stage = 'staged' and scope = 'row'"
        ).fetchone()[0]
    assert audit == [(a.result.rows_read, a.result.rows_staged, a.result.rows_rejected)]
    assert rejects == a.result.rows_rejected  # one load's rejects, not two


def test_a_raw_reload_during_staging_of_the_same_day_is_staged_whole(db, world, tmp_path):
    """The day's raw load is redone (a re-sent file) while the day is being staged: staging waits for it and
    stages the new raw rows against the new raw audit. Before, staging read the old audit, waited on the raw
    table and then read rows that did not match it."""
    feed = load_catalog().feed("gaj_czfw")
    with connect(db) as conn:
        ingest.load_partition(conn, feed, D1, "first", world=world)
    resent = tmp_path / "w"
    folder = resent / "landing" / feed.department / feed.id / D1
    shutil.copytree(world / "landing" / feed.department / feed.id / D1, folder)
    original = ingest.landing_files(world, feed, D1)[0]
    shutil.copy(original, folder / f"{original.stem}_resend1{original.suffix}")

    hold = connect(db)  # the reload, left open
    tx = hold.transaction()
    tx.__enter__()
    reload = ingest.load_partition(hold, feed, D1, "reload", world=resent)
    stager = Worker(db, lambda c: staging.stage_partition(c, feed, D1, "staged"))
    stager.start()
    _until("staging waits for the reload", lambda: stager.pid in _waiting(db, [stager.pid]) or stager.error)
    tx.__exit__(None, None, None)
    hold.close()
    _join(stager)
    assert stager.result.rows_read == reload.rows_loaded > 0
    assert _counts(db, f'staged."{feed.id}"') == {D1: stager.result.rows_staged}


def _prepare(url: str, world: Path, feeds, staged: list[str], days=(D1,)) -> None:
    with connect(url) as conn:
        for f in feeds:
            for day in (D1, D2):
                ingest.load_partition(conn, f, day, "raw", world=world)
        for f in feeds:
            if f.id in staged:
                for day in days:
                    staging.stage_partition(conn, f, day, "staged")


def _alive(url: str, feed) -> frozenset:
    """The keys of the feed's current records that linking attaches (deleted ones left out)."""
    with connect(url) as conn:
        latest = staging.current(conn, feed)
        if latest is None:
            return frozenset()
        query = sql.SQL("select record_key from {} where {}").format(latest, linking.alive(feed))
        return frozenset(r[0] for r in conn.execute(query).fetchall())


def _links(url: str, feed) -> frozenset:
    with connect(url) as conn:
        rows = conn.execute(
            "select record_key from core.entity_link where feed_id = %s", (feed.id,)
        ).fetchall()
    return frozenset(r[0] for r in rows)


def test_linking_reads_one_point_in_time_while_staged_loads_go_on(db, world):
    """Linking starts while B's next day is being staged (that transaction is open); meanwhile A is staged for
    the first time. What linking saw must be a state the warehouse was in at one moment: A's first records
    can be missing from it only if B's change is missing too, when A's staging committed first. Without the
    snapshot, linking saw A empty (it had looked before A existed) and B changed (it waited for B's staging)."""
    cat = load_catalog()
    a, b = cat.feed("gaj_czfw"), cat.feed("gaj_jsz")  # A is read before B (catalog order)
    assert cat.feeds.index(a) < cat.feeds.index(b)
    _prepare(db, world, [a, b], staged=[b.id])
    b_old = _alive(db, b)

    hold = connect(db)  # B's next day, staged in a transaction left open: B's change is in flight
    tx = hold.transaction()
    tx.__enter__()
    staging.stage_partition(hold, b, D2, "b-new")

    linker = Worker(db, lambda c: linking.link(c, cat))
    linker.start()
    _until("linking waits for B", lambda: linker.pid in _waiting(db, [linker.pid]) or linker.error)

    commits: list[str] = []
    stager = Worker(db, lambda c: (staging.stage_partition(c, a, D1, "a-first"), commits.append("A")))
    stager.start()
    _until("A is staged or waits", lambda: not stager.is_alive() or stager.pid in _waiting(db, [stager.pid]))
    commits.append("B")  # before B commits: A, if it is waiting, can only commit after
    tx.__exit__(None, None, None)
    hold.close()
    _join(linker, stager)

    a_new, b_new = _alive(db, a), _alive(db, b)
    assert a_new and b_new != b_old  # both changes are there in the end (B's day 2 adds and deletes records)
    none = frozenset()
    if commits == ["A", "B"]:
        states = {"before": (none, b_old), "A staged": (a_new, b_old), "both": (a_new, b_new)}
    else:
        states = {"before": (none, b_old), "B staged": (none, b_new), "both": (a_new, b_new)}
    seen = (_links(db, a), _links(db, b))
    assert seen in states.values(), (
        commits,
        [len(k) for k in seen],
        {s: [len(k) for k in v] for s, v in states.items()},
    )


def test_two_linking_runs_at_once_both_succeed_and_core_is_whole(db, world):
    cat = load_catalog()
    feeds = [cat.feed("gaj_czfw"), cat.feed("gaj_jsz")]
    _prepare(db, world, feeds, staged=[f.id for f in feeds])
    hold = _blocker(db, "lock table core.entity_link in share mode")  # each run stops at its delete

    def rebuild(conn):
        linking.link(conn, cat)
        return identity.resolve(conn, cat)

    first, second = Worker(db, rebuild), Worker(db, rebuild)
    first.start()
    second.start()
    pids = [first.pid, second.pid]
    _until("both linking runs wait", lambda: _waiting(db, pids) == set(pids) or first.error or second.error)
    hold.rollback()
    hold.close()
    _join(first, second)
    records = sum(len(_alive(db, f)) for f in feeds)
    with connect(db) as conn:
        links = conn.execute(
            "select count(*), count(distinct (feed_id, record_key)) from core.entity_link"
        ).fetchone()
        members = conn.execute(
            "select count(*), count(distinct master_key) from core.identity_member where kind = 'person'"
        ).fetchone()
        persons = conn.execute("select count(*), sum(records) from core.person").fetchone()
    assert links == (records, records)
    assert persons == (members[1], members[0]) and members[0] > 0


def test_two_departments_parsing_ahead_and_linking_at_once_all_succeed(db, world, monkeypatch):
    """Two departments' steps ahead (lib/link_texts.py) and a linking run meet at the parse cache, which a third
    session holds; all succeed, and the cache holds every text as linking alone parses it."""
    monkeypatch.setattr(link_texts, "AHEAD_MIN", 1)
    cat = load_catalog()
    feeds = [cat.feed("gaj_czfw"), cat.feed("wjw_csyxzm")]
    _prepare(db, world, feeds, staged=[f.id for f in feeds], days=(D1, D2))
    hold = _blocker(db, "lock table staged._parse_cache in share mode")  # conflicts with every writer
    workers = [Worker(db, lambda c, d=d: link_texts.parse_ahead(c, cat, d)) for d in ("gaj", "wjw")]
    for w in workers:  # both parse (the cache is of no parser yet: each reads every text), then wait to write
        w.start()
    _until("both steps wait", lambda: _waiting(db, [w.pid for w in workers]) == {w.pid for w in workers})
    workers.append(Worker(db, lambda c: linking.link(c, cat)))
    workers[-1].start()
    pids = [w.pid for w in workers]
    # the first writer empties the cache for its parser while the others wait to write: none may hold a lock
    # on the cache that emptying it waits for (a step's temporary table made ``like`` the cache did: deadlock)
    _until("all three wait", lambda: _waiting(db, pids) == set(pids) or any(w.error for w in workers))
    hold.rollback()
    hold.close()
    _join(*workers)
    with connect(db) as conn:
        cache = "select text_md5, text, entity_id, fuzzy, outside, village_code from staged._parse_cache"
        together = set(conn.execute(cache).fetchall())
        links = conn.execute("select count(*) from core.entity_link").fetchone()[0]
        linking.link(conn, cat, full=True)  # alone: parses every text its records have again
        conn.commit()
        alone = set(conn.execute(cache).fetchall())
    assert links == sum(len(_alive(db, f)) for f in feeds) > 0
    assert workers[0].result["texts_parsed"] > 0 and workers[1].result["texts_parsed"] > 0
    assert alone <= together and len(alone) > 100
