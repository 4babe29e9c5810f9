"""`jx-pipeline ui` serves the real Dagster webserver on loopback, on the same Postgres-backed instance."""

import json
import os
import signal
import subprocess
import urllib.request

import dagster as dg

from jx_pipeline.defs.admin import assets
from jx_pipeline.lib import settings
from jx_pipeline.lib.warehouse import WarehouseResource
from jx_pipeline_tests.conftest import JX, free_port
from jx_pipeline_tests.dagster_procs import wait_for_http

QUERY = """{ assetNodes { assetKey { path } groupName }
             runsOrError(limit: 5) { ... on Runs { results { runId status } } } }"""


def _post(url: str, query: str) -> dict:
    req = urllib.request.Request(
        url, data=json.dumps({"query": query}).encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(req, timeout=30) as resp:
        return json.load(resp)


def test_ui_serves_asset_graph_and_runs_from_postgres(tmp_path, warehouse_url):
    with dg.DagsterInstance.get() as instance:  # DAGSTER_HOME's dagster.yaml: Postgres storage
        run = dg.materialize(
            [assets.raw_admin_division],
            instance=instance,
            resources={"warehouse": WarehouseResource(url=warehouse_url)},
        )
    port = free_port()
    log = (tmp_path / "ui.log").open("w")
    proc = subprocess.Popen(
        [JX, "ui", "--port", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=settings.PROJECT_ROOT,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for_http(f"{base}/server_info", proc, tmp_path / "ui.log", 120)
        with urllib.request.urlopen(f"{base}/server_info", timeout=5) as resp:
            info = json.load(resp)
        assert info["dagster_webserver_version"]
        data = _post(f"{base}/graphql", QUERY)["data"]
        keys = {"/".join(n["assetKey"]["path"]): n["groupName"] for n in data["assetNodes"]}
        assert keys["core/admin_unit"] == "reference"
        runs = {r["runId"]: r["status"] for r in data["runsOrError"]["results"]}
        assert runs[run.run_id] == "SUCCESS"  # the UI reads the run that was recorded in Postgres
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
        log.close()
