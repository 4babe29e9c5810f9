"""The run-failure sensor: a real failed run on the Postgres instance becomes one quality.run_alert row and one
JSON post to a real HTTP server on 127.0.0.1, with no secret in either; a second tick posts nothing again.

The failing run is the pipeline's own: a department's raw step reading a landing file with a column the catalog
does not know (schema drift, which the feed refuses), in a landing zone of its own.
"""

import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import ClassVar

import dagster as dg
import pytest

from jx_pipeline.catalog import load_catalog
from jx_pipeline.definitions import defs
from jx_pipeline.defs.ingest.assets import feed_key
from jx_pipeline.defs.operations import sensors
from jx_pipeline.lib import run_alert
from jx_pipeline.lib.warehouse import WarehouseResource
from jx_pipeline_tests.conftest import free_port

DAY = "2026-11-02"
FEED = "jxj_zjtx"  # CSV, UTF-8, a file-only department


class _Hook(BaseHTTPRequestHandler):
    received: ClassVar[list] = []

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).received.append((self.headers["Content-Type"], json.loads(body)))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def webhook():
    _Hook.received = []
    server = HTTPServer(("127.0.0.1", free_port()), _Hook)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/hooks/jx", _Hook.received
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def failed_run(tmp_path_factory, warehouse_url):
    """A raw load of FEED on DAY that fails on a file with an unknown column; the run, from Postgres storage."""
    feed = load_catalog().feed(FEED)
    world = tmp_path_factory.mktemp("alert_world")
    folder = world / "landing" / feed.department / feed.id / DAY
    folder.mkdir(parents=True)
    cols = [*feed.columns, "EXTRA_COL"]
    (folder / f"{feed.id}_{DAY.replace('-', '')}.csv").write_text(
        ",".join(cols) + "\n" + ",".join("x" for _ in cols) + "\n", encoding="utf-8"
    )
    mp = pytest.MonkeyPatch()
    mp.setenv("JX_WORLD_DIR", str(world))
    try:
        job = defs.get_repository_def().get_job(f"ingest_{feed.department}")
        with dg.DagsterInstance.get() as instance:
            result = job.execute_in_process(
                instance=instance,
                asset_selection=[feed_key(feed)],
                partition_key=DAY,
                raise_on_error=False,
            )
            assert not result.success
            run = instance.get_run_by_id(result.run_id)
            failure = next(
                r.event_log_entry.dagster_event
                for r in instance.get_records_for_run(
                    result.run_id, of_type=dg.DagsterEventType.RUN_FAILURE
                ).records
            )
    finally:
        mp.undo()
    return run, failure


def _tick(run, failure, warehouse_url):
    with dg.DagsterInstance.get() as instance:
        ctx = dg.build_run_status_sensor_context(
            sensor_name="run_failure_alert",
            dagster_event=failure,
            dagster_instance=instance,
            dagster_run=run,
            resources={"warehouse": WarehouseResource(url=warehouse_url)},
        ).for_run_failure()
        return sensors.run_failure_alert(ctx)


def test_failed_run_is_recorded_and_posted_once_without_secrets(
    failed_run, webhook, wh, warehouse_url, monkeypatch
):
    url, received = webhook
    run, failure = failed_run
    wh.execute(
        "delete from quality.run_alert where run_id = %s", (run.run_id,)
    )  # the module's run: this test's own
    wh.commit()
    monkeypatch.setenv(run_alert.WEBHOOK_ENV, url)
    earlier = len(received)  # the webhook serves the module's other tests too
    _tick(run, failure, warehouse_url)
    row = wh.execute(
        "select job_name, step_key, error_class, message, partition_key, webhook_status, failed_at"
        " from quality.run_alert where run_id = %s",
        (run.run_id,),
    ).fetchone()
    assert row is not None, "no quality.run_alert row for the failed run"
    job, step, cls, message, partition, status, failed_at = row
    dept = load_catalog().feed(FEED).department
    assert (job, step, cls, partition, status) == (f"ingest_{dept}", f"raw_{dept}", "JxError", DAY, "204")
    assert FEED in message and "EXTRA_COL" in message.upper(), message  # the pipeline's own clear error
    assert failed_at is not None
    assert len(received) == earlier + 1
    ctype, body = received[-1]
    assert ctype.startswith("application/json")
    assert body["run_id"] == run.run_id and body["step_key"] == f"raw_{dept}"
    assert body["error_class"] == "JxError" and body["message"] == message
    # the same failure seen again (a repeated tick, a daemon restart): no second row, no second post
    skipped = _tick(run, failure, warehouse_url)
    assert isinstance(skipped, dg.SkipReason)
    assert len(received) == earlier + 1
    assert (
        wh.execute("select count(*) from quality.run_alert where run_id = %s", (run.run_id,)).fetchone()[0]
        == 1
    )


def test_secrets_never_leave_in_an_alert(webhook, wh, warehouse_url, monkeypatch):
    """A run whose error quotes the warehouse URL (with its password) and the pseudonym secret."""
    url, received = webhook
    monkeypatch.setenv(run_alert.WEBHOOK_ENV, url)
    password = warehouse_url.split("://", 1)[1].split("@", 1)[0].split(":", 1)[1]
    secret = run_alert.os.environ["JX_PSEUDONYM_SECRET"]

    @dg.op
    def leaky():
        raise RuntimeError(f"could not reach {warehouse_url} with key {secret}")

    @dg.job
    def leaky_job():
        leaky()

    with dg.DagsterInstance.get() as instance:
        result = leaky_job.execute_in_process(instance=instance, raise_on_error=False)
        run = instance.get_run_by_id(result.run_id)
        failure = next(
            r.event_log_entry.dagster_event
            for r in instance.get_records_for_run(run.run_id, of_type=dg.DagsterEventType.RUN_FAILURE).records
        )
    before = len(received)
    _tick(run, failure, warehouse_url)
    cls, message = wh.execute(
        "select error_class, message from quality.run_alert where run_id = %s", (run.run_id,)
    ).fetchone()
    assert cls == "RuntimeError" and "could not reach" in message
    posted = json.dumps(received[before:], ensure_ascii=False)
    for text in (message, posted):
        assert password not in text and secret not in text, text
    assert "***" in message


def test_a_webhook_that_is_down_leaves_the_row_and_its_error(failed_run, wh, warehouse_url, monkeypatch):
    run, failure = failed_run
    wh.execute("delete from quality.run_alert where run_id = %s", (run.run_id,))
    wh.commit()
    monkeypatch.setenv(run_alert.WEBHOOK_ENV, f"http://127.0.0.1:{free_port()}/nobody")
    _tick(run, failure, warehouse_url)
    status = wh.execute(
        "select webhook_status from quality.run_alert where run_id = %s", (run.run_id,)
    ).fetchone()
    assert status is not None and status[0].startswith("URLError"), status
