"""Sensors that watch the pipeline itself: failed runs become alerts, and automation conditions get evaluated.

The landing-zone sensor and the cadence schedules (defs/ingest/schedules.py) start ingestion; linking and
publishing carry automation conditions (set in definitions.py) that only this automation-condition sensor
evaluates. Both sensors here start RUNNING unless JX_AUTOMATION=off (lib/automation.py).
"""

import dagster as dg

from jx_pipeline.lib import automation, run_alert
from jx_pipeline.lib.warehouse import WarehouseResource


@dg.run_failure_sensor(
    name="run_failure_alert",
    monitor_all_code_locations=True,
    minimum_interval_seconds=automation.sensor_interval(15),
    default_status=automation.sensor_status(),
    description="Every failed run: a row in quality.run_alert (run, job, step, error class, message) and a"
    " JSON post to JX_ALERT_WEBHOOK when it is set.",
)
def run_failure_alert(context: dg.RunFailureSensorContext, warehouse: WarehouseResource):
    run = context.dagster_run
    steps = context.get_step_failure_events()
    first = steps[0] if steps else None
    error = first.event_specific_data.error if first else None
    cls, message = run_alert.innermost(error)
    if not message:
        message = context.failure_event.message or "run failed"
    alert = run_alert.Alert(
        run_id=run.run_id,
        job_name=run.job_name,
        step_key=first.step_key if first else None,
        error_class=cls,
        message=run_alert.scrub(message),
        partition_key=run.tags.get("dagster/partition"),
        failed_at=_failed_at(context.instance, run.run_id),
    )
    with warehouse.connect() as conn:
        if not run_alert.record(conn, alert):
            return dg.SkipReason(f"run {run.run_id} was recorded before")
        status = run_alert.post(alert)
        run_alert.set_status(conn, run.run_id, status)
    context.log.info(
        f"run {run.run_id} ({run.job_name}) failed at {alert.step_key}: alert recorded, webhook {status}"
    )


def _failed_at(instance: dg.DagsterInstance, run_id: str) -> str:
    from datetime import UTC, datetime

    record = instance.get_run_record_by_id(run_id)
    when = record.end_time if record and record.end_time else datetime.now(UTC).timestamp()
    return datetime.fromtimestamp(when, UTC).isoformat()


automation_sensor = dg.AutomationConditionSensorDefinition(
    "automation_condition_sensor",
    target=dg.AssetSelection.all(),
    default_status=automation.sensor_status(),
    minimum_interval_seconds=automation.sensor_interval(30),
    description="Evaluates the automation conditions of linking and publishing (after the day's ingestion).",
)

defs = dg.Definitions(sensors=[run_failure_alert, automation_sensor])
