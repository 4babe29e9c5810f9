"""The catalog's expectations counted in SQL give what Great Expectations gives on the same partition: GE is the
oracle. Real staged partitions of the world, then the same partitions corrupted (values nulled past the allowance,
events dated before birth, a partition emptied), each compared result by result."""

import pytest

from jx_pipeline.catalog import load_catalog
from jx_pipeline.lib import expectations, ingest, migrations, staging
from jx_pipeline.lib.pg import connect

DAY = "2026-11-01"
FEEDS = ("gaj_ldrk", "wjw_csyxzm", "scjgj_qydj", "zrzyj_gdbh")  # the pair rule, a catalog override, own rules


@pytest.fixture(scope="module")
def staged(world, make_scratch_db_module):
    url = make_scratch_db_module()
    catalog = load_catalog()
    with connect(url) as conn:
        migrations.migrate(conn)
        for feed_id in FEEDS:
            feed = catalog.feed(feed_id)
            ingest.load_partition(conn, feed, DAY, "t", world=world, first_partition=DAY)
            staging.stage_partition(conn, feed, DAY, "t")
    return url


def _both(conn, feed):
    ours, expected = expectations.check(conn, feed, DAY)
    df = expectations.frame(conn, feed, DAY)
    theirs = expectations.validate(feed, df, expectations.suite(feed, len(df)))
    return expectations.comparable(ours), expectations.comparable(theirs), expected


@pytest.mark.parametrize("feed_id", FEEDS)
def test_sql_counts_equal_great_expectations_on_real_partitions(staged, feed_id):
    feed = load_catalog().feed(feed_id)
    with connect(staged) as conn:
        ours, theirs, expected = _both(conn, feed)
    assert ours == theirs and len(ours) == len(expected) > 1
    assert ours[0]["element_count"] > 0


def test_sql_counts_equal_great_expectations_on_corrupted_partitions(staged):
    feed = load_catalog().feed("gaj_ldrk")
    table = staging.staged_table(feed, DAY).as_string(None)
    with connect(staged) as conn:
        conn.execute(f"update {table} set phone = null where _row_id % 3 = 0")  # past phone's allowance
        conn.execute(
            f"update {table} set event_date = birth_date - 1 where _row_id % 7 = 1 and birth_date is not null"
        )
        conn.execute(f"update {table} set birth_date = null where _row_id % 11 = 2")  # judged rows change too
        ours, theirs, _ = _both(conn, feed)
        assert ours == theirs
        failed = {r["column"] for r in ours if not r["success"]}
        assert failed == {"phone", "birth_date", "event_date>birth_date"}  # the corruption is seen, by both
        pair = next(r for r in ours if r["column"] == "event_date>birth_date")
        assert pair["unexpected_count"] > 0 and len(pair["sample"]) == expectations.SAMPLE

        conn.execute(f"delete from {table}")  # an empty partition: nothing is judged, nothing fails
        ours, theirs, _ = _both(conn, feed)
        assert ours == theirs and all(r["success"] and r["element_count"] == 0 for r in ours)
        conn.rollback()


def test_the_allowance_boundary_is_judged_as_great_expectations_judges_it(staged):
    """Every address filled, then exactly the allowed number of them nulled, then one more: the check passes,
    then fails, and GE agrees both times."""
    feed = load_catalog().feed("wjw_csyxzm")
    table = staging.staged_table(feed, DAY).as_string(None)
    with connect(staged) as conn:
        conn.execute(f"update {table} set address = 'x' where address is null")
        rows = conn.execute(f"select count(*) from {table}").fetchone()[0]
        mostly = expectations.allowance(expectations.COMPLETENESS["address"], rows)
        allowed = max(k for k in range(rows + 1) if (rows - k) / rows >= mostly)
        assert 0 < allowed < rows
        for nulls, passes in ((allowed, True), (allowed + 1, False)):
            conn.execute(
                f"update {table} set address = case when _row_id in (select _row_id from {table}"
                f" order by _row_id limit {nulls}) then null else 'x' end"
            )
            ours, theirs, _ = _both(conn, feed)
            assert ours == theirs
            address = next(r for r in ours if r["column"] == "address")
            assert (address["unexpected_count"], address["success"]) == (nulls, passes)
        conn.rollback()


def test_a_feeds_own_expectations_counted_in_sql_equal_great_expectations(staged):
    """The feeds' own in-set and between expectations are counted in SQL (GE is not imported for them): values
    put outside the set and the bounds, on the bounds, past ``mostly`` and within it, and nulls (not judged), give
    GE's counts, percentages, verdicts and samples (the first in row order, all distinct here)."""
    catalog = load_catalog()
    qydj, gdbh = catalog.feed("scjgj_qydj"), catalog.feed("zrzyj_gdbh")
    assert expectations.own_in_sql(qydj) and expectations.own_in_sql(gdbh)
    with connect(staged) as conn:
        table = staging.staged_table(qydj, DAY).as_string(None)
        conn.execute(f"update {table} set status = '歇业' || _row_id where _row_id % 5 = 0")  # not in the set
        conn.execute(f"update {table} set status = null where _row_id % 5 = 1")
        conn.execute(f"update {table} set reg_capital = 2000000 + _row_id where _row_id % 400 = 3")
        conn.execute(
            f"update {table} set reg_capital = 1000000 where _row_id % 400 = 4"
        )  # the bounds: expected
        conn.execute(f"update {table} set reg_capital = 0 where _row_id % 400 = 5")
        table = staging.staged_table(gdbh, DAY).as_string(None)
        conn.execute(
            f"update {table} set amount = 0.05 + _row_id / 1e6 where _row_id % 50 = 0"
        )  # 2 %: > 1 - 0.99
        conn.execute(f"update {table} set amount = 0.1 where _row_id % 50 = 2")  # the lower bound: expected
        conn.execute(f"update {table} set amount = null where _row_id % 50 = 1")
        seen = {}
        for feed in (qydj, gdbh):
            ours, theirs, _ = _both(conn, feed)
            assert ours == theirs
            seen |= {(feed.id, r["column"]): r for r in ours if r["expectation"] != expectations.NOT_NULL}
        status, capital = seen["scjgj_qydj", "status"], seen["scjgj_qydj", "reg_capital"]
        amount = seen["zrzyj_gdbh", "amount"]
        assert not status["success"] and len(set(status["sample"])) == expectations.SAMPLE
        assert not amount["success"] and amount["unexpected_count"] > 0 and len(set(amount["sample"])) > 1
        assert capital["unexpected_count"] > 0 and capital["sample"][0].startswith("200")
        conn.rollback()


def test_a_feed_with_an_expectation_sql_does_not_count_goes_to_great_expectations_whole():
    """Another keyword (a strict bound) or kind anywhere in the feed: all of its own expectations go to GE, in
    the order declared; so do bounds GE rejects (min above max)."""
    from jx_pipeline.catalog.schema import Expectation

    feed = load_catalog().feed("scjgj_qydj")
    strict = Expectation(
        type=expectations.BETWEEN, kwargs={"column": "reg_capital", "min_value": 0, "strict_min": True}
    )
    assert not expectations.own_in_sql(feed.model_copy(update={"expectations": [*feed.expectations, strict]}))
    crossed = Expectation(
        type=expectations.BETWEEN, kwargs={"column": "reg_capital", "min_value": 5, "max_value": 1}
    )
    assert not expectations.own_in_sql(feed.model_copy(update={"expectations": [crossed]}))
    assert expectations.own_in_sql(feed) and not expectations.own_in_sql(
        feed.model_copy(update={"expectations": []})
    )
