import dagster as dg

from jx_pipeline.definitions import defs


def test_definitions_load_with_admin_chain():
    repo = defs.get_repository_def()
    keys = {k.to_user_string() for k in repo.asset_graph.get_all_asset_keys()}
    assert {"raw/reference/admin_division", "raw/reference/admin_boundary", "core/admin_unit"} <= keys
    assert "warehouse" in repo.get_top_level_resources()


def test_every_asset_is_documented_for_the_ui():
    graph = defs.get_repository_def().asset_graph
    for key in graph.get_all_asset_keys():
        node = graph.get(key)
        assert node.description, key
        assert node.owners, key
        assert node.group_name, key
        assert node.tags.get("layer") == key.path[0], key


def test_admin_unit_checks_are_blocking():
    specs = list(defs.get_repository_def().asset_graph.get(dg.AssetKey(["core", "admin_unit"])).check_keys)
    names = {k.name for k in specs}
    assert names == {"level_counts", "parent_tree", "boundaries"}
    graph = defs.get_repository_def().asset_graph
    assert all(graph.get_check_spec(k).blocking for k in specs)


def test_the_code_location_loads_without_the_heavy_libraries():
    """Every Dagster process (the CLI's run, each step of a multiprocess run, the UI's code server) imports the
    definitions: Great Expectations (~6 s) and pandas (~0.3 s) are imported only by the steps that use them."""
    import subprocess
    import sys

    probe = "import sys, jx_pipeline.definitions; print(sorted({'great_expectations', 'pandas'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]", out
    # the probe sees a module that is imported: pandas through the one module that needs it
    probe = probe.replace("jx_pipeline.definitions", "jx_pipeline.definitions, jx_pipeline.lib.evaluate")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "['pandas']", out
