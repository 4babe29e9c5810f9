"""Linking and identity resolution on the test world, measured against its ground truth (evaluation only)."""

import json
import subprocess

import dagster as dg
import pytest

from jx_pipeline.catalog import load_catalog
from jx_pipeline.defs.admin import assets as admin
from jx_pipeline.defs.entities import assets as entities
from jx_pipeline.lib import evaluate, identity, ingest, linking, staging
from jx_pipeline.lib.warehouse import WarehouseResource
from jx_pipeline_tests.conftest import JX, WORLD_DAYS

DAYS = [f"2026-11-{d:02d}" for d in range(1, WORLD_DAYS + 2)]


@pytest.fixture(scope="module")
def linked(world, warehouse_url, source_url):
    """Every feed loaded and staged for every day, the gazetteer, then links and identities."""
    from jx_pipeline.lib.pg import connect

    catalog = load_catalog()  # every feed: identity links borrow across all departments
    assets = [admin.raw_admin_division, admin.raw_admin_boundary, admin.core_admin_unit]
    assets += [entities.core_geo_entity, entities.core_address_point]
    assert dg.materialize(assets, resources={"warehouse": WarehouseResource(url=warehouse_url)}).success
    with connect(warehouse_url) as conn:
        for feed in catalog.feeds:
            for day in DAYS:
                ingest.load_partition(
                    conn, feed, day, "t", world=world, source_url=source_url, first_partition=DAYS[0]
                )
                staging.stage_partition(conn, feed, day, "t")
        methods = linking.link(conn, catalog)
        identities = identity.resolve(conn, catalog)
        figures = evaluate.evaluate(conn, world / "truth")
    return catalog, methods, identities, figures


def test_every_current_record_has_one_link_row(linked, wh):
    _catalog, methods, _, _ = linked
    n = wh.execute("select count(*), count(distinct (feed_id, record_key)) from core.entity_link").fetchone()
    assert n[0] == n[1] == sum(methods.values()) > 1000
    assert {"address_exact", "coordinate_polygon", "name_in_village"} <= set(methods)
    assert (
        wh.execute(
            "select count(*) from core.entity_link"
            " where (entity_id is null) <> (method in ('unmatched', 'outside_city'))"
        ).fetchone()[0]
        == 0
    )


def test_links_meet_the_targets_against_truth(linked):
    _, _, _, figures = linked
    links = figures["links"]
    assert links["precision"] >= 0.995 and links["recall"] >= 0.98, links
    assert figures["links_by_difficulty"]["easy"]["recall"] >= 0.99


def test_addresses_outside_the_city_are_kept_apart(linked, wh):
    """The world writes addresses that lie outside Jiaxing (truth: no entity): they are `outside_city`, and
    neither they nor other undeterminable records are forced onto a local entity."""
    _, methods, _, figures = linked
    assert methods["outside_city"] > 0
    rows = wh.execute(
        "select count(*) from core.entity_link where method = 'outside_city' and entity_id is null"
    ).fetchone()[0]
    assert rows == methods["outside_city"]
    assert figures["linked_without_truth_entity"] <= 0.001 * figures["links"]["records"], figures


def test_identity_resolution_meets_the_target(linked, wh):
    _, _, counts, figures = linked
    assert figures["identity_person"]["f1"] >= 0.99, figures["identity_person"]
    assert figures["identity_legal_person"]["f1"] >= 0.99, figures["identity_legal_person"]
    assert counts["person"]["id_number"] > 0 and counts["person"]["name_birth"] > 0
    # the master indexes carry pseudonymous keys, never the ID number itself
    keys = [k for (k,) in wh.execute("select person_key from core.person limit 50").fetchall()]
    assert keys and all(k.startswith("P") and len(k) == 21 for k in keys)
    assert (
        wh.execute(
            "select count(*) from core.person where person_key like '%' || id_number || '%'"
        ).fetchone()[0]
        == 0
    )


def test_evaluate_cli_prints_the_figures(linked, world):
    done = subprocess.run(
        [JX, "evaluate", "--truth", str(world / "truth")], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    figures = json.loads(done.stdout)
    assert figures["links"] == linked[3]["links"]
    assert "precision" in done.stderr and "F1" in done.stderr


def test_pairwise_scores_count_pairs():
    import pandas as pd

    df = pd.DataFrame({"pred": ["a", "a", "b", "c"], "true": [1, 1, 1, 2]})
    assert evaluate.pairwise(df, "pred", "true") == {"precision": 1.0, "recall": round(1 / 3, 4), "f1": 0.5}


def test_linking_assets_show_the_evaluation_in_their_metadata(linked, world, warehouse_url, monkeypatch):
    from jx_pipeline.defs.linking import assets as linking_assets
    from jx_pipeline.lib.warehouse import WarehouseResource as Warehouse

    monkeypatch.setenv("JX_EVALUATE_TRUTH", str(world / "truth"))
    defs = linking_assets.build_defs()
    res = dg.materialize(list(defs.assets), resources={"warehouse": Warehouse(url=warehouse_url)})
    assert res.success
    mats = {
        e.asset_key.to_user_string(): e.materialization.metadata
        for e in res.get_asset_materialization_events()
    }
    assert mats["core/entity_link"]["evaluation/links"].value["precision"] >= 0.995
    assert "evaluation/identity_person" in mats["core/person"]
    assert "evaluation/identity_legal_person" in mats["core/legal_person"]
    assert {
        (e.asset_key.to_user_string(), e.check_name): e.passed for e in res.get_asset_check_evaluations()
    } == {
        ("core/entity_link", "one_row_per_record"): True,
        ("core/person", "one_membership_per_record"): True,
        ("core/legal_person", "one_membership_per_record"): True,
    }
