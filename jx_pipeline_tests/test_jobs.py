"""The named jobs: ``ingest_<dept>`` per department, ``link``, ``publish`` and ``daily`` in dependency order.

Each job's assets are compared with what the catalog and the asset groups say independently; one department's
job is run for real on the Postgres instance and must touch exactly that department's feeds.
"""

import dagster as dg
from dagster._core.execution.api import create_execution_plan

from jx_pipeline.catalog import load_catalog
from jx_pipeline.definitions import defs
from jx_pipeline.defs.ingest.assets import feed_key
from jx_pipeline.defs.operations import jobs

SCORECARD = dg.AssetKey(["quality", "scorecard"])
REPO = defs.get_repository_def()


def _keys(name: str) -> set[dg.AssetKey]:
    return set(REPO.get_job(name).asset_layer.executable_asset_keys)


def test_one_ingest_job_per_department_with_exactly_its_feeds():
    catalog = load_catalog()
    for dept in catalog.departments:
        feeds = [f for f in catalog.feeds if f.department == dept.code]
        expected = {feed_key(f, layer) for f in feeds for layer in ("raw", "staged")} | {SCORECARD}
        assert _keys(f"ingest_{dept.code}") == expected, dept.code
        assert REPO.get_job(f"ingest_{dept.code}").partitions_def is not None


def test_link_publish_and_daily_jobs():
    graph = REPO.asset_graph
    by_group: dict[str, set] = {}
    for key in graph.get_all_asset_keys():
        by_group.setdefault(graph.get(key).group_name, set()).add(key)
    assert _keys("link") == by_group["entities"] | by_group["linking"]
    assert {k.to_user_string() for k in _keys("link")} >= {
        "core/geo_entity",
        "core/address_point",
        "core/entity_link",
        "core/person",
        "core/legal_person",
    }
    assert _keys("publish") == by_group.get("mart", set())
    ingest = {k for f in load_catalog().feeds for k in (feed_key(f), feed_key(f, "staged"))} | {SCORECARD}
    assert _keys("daily") == ingest | _keys("link") | _keys("publish")
    assert not _keys("daily") & by_group["reference"]  # the admin hand-over is not a day's work


def test_publish_is_a_selection_that_picks_up_a_new_mart():
    @dg.asset(
        key=["mart", "test_only_profile"], group_name="mart", deps=[dg.AssetKey(["core", "entity_link"])]
    )
    def test_only_profile() -> None: ...

    merged = dg.Definitions.merge(defs, dg.Definitions(assets=[test_only_profile], jobs=jobs._jobs()))
    # the jobs are rebuilt from the same selections over the larger graph: no list to edit
    repo = dg.Definitions(
        assets=list(merged.assets or []), jobs=jobs._jobs(), resources=merged.resources
    ).get_repository_def()
    assert (
        dg.AssetKey(["mart", "test_only_profile"])
        in repo.get_job("publish").asset_layer.executable_asset_keys
    )
    assert (
        dg.AssetKey(["mart", "test_only_profile"]) in repo.get_job("daily").asset_layer.executable_asset_keys
    )


def test_daily_runs_in_dependency_order():
    """raw before staged before the scorecard; entities before links before identities (and marts last)."""
    plan = create_execution_plan(REPO.get_job("daily"), run_config={})
    level = {s.key: i for i, steps in enumerate(plan.get_steps_to_execute_by_level()) for s in steps}
    assert max(level[f"raw_{d.code}"] for d in load_catalog().departments) < min(
        level[f"staged_{d.code}"] for d in load_catalog().departments
    )
    for d in load_catalog().departments:
        assert level[f"staged_{d.code}"] < level["quality__scorecard"]
        assert level[f"staged_{d.code}"] < level["core__entity_link"]
        # its addresses parsed ahead, after it is staged and the gazetteer is built, before linking
        texts = level[f"core__address_texts__{d.code}"]
        assert level[f"staged_{d.code}"] < texts < level["core__entity_link"]
        assert level["core__address_point"] < texts
    assert level["core__geo_entity"] < level["core__address_point"] < level["core__entity_link"]
    assert level["core__entity_link"] < level["core_identity"]
    marts = [k for k in level if k.startswith("mart")]
    assert all(level[m] > level["core__entity_link"] for m in marts)


def test_a_department_job_runs_exactly_its_feeds(warehouse_url):
    dept = "jxj"  # files only: no source database needed
    job = REPO.get_job(f"ingest_{dept}")
    with dg.DagsterInstance.get() as instance:
        result = job.execute_in_process(
            instance=instance,
            partition_key="2026-11-02",
        )
    assert result.success
    done = {e.asset_key for e in result.get_asset_materialization_events()}
    feeds = [f for f in load_catalog().feeds if f.department == dept]
    assert done == {feed_key(f, layer) for f in feeds for layer in ("raw", "staged")} | {SCORECARD}
    assert result.dagster_run.tags["jx/department"] == dept
