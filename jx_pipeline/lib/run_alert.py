"""A failed run becomes one row of ``quality.run_alert`` and, when ``JX_ALERT_WEBHOOK`` is set, one JSON post.

The row is what an operator (or a report) queries; the post is what wakes someone up. Both carry the run id, the
job, the first failed step, the error's class and message: the error is taken from inside Dagster's wrapper
(the user's exception, e.g. JxError naming feed, file and row), with passwords and the project's secrets masked.
A run is recorded once (its id is the key): a sensor tick repeated after a crash posts nothing twice.
"""

from __future__ import annotations

import contextlib
import json
import os
import urllib.request
from dataclasses import asdict, dataclass

from jx_pipeline.lib.errors import mask_url

MAX_MESSAGE = 2000
WEBHOOK_ENV = "JX_ALERT_WEBHOOK"
# environment values that must never leave the machine in an alert (the pseudonym key, passwords in URLs)
SECRET_ENV = ("JX_PSEUDONYM_SECRET", "JX_PG_PASSWORD", "JX_READER_PASSWORD", "JX_ENGINEER_PASSWORD")


@dataclass(frozen=True)
class Alert:
    run_id: str
    job_name: str
    step_key: str | None
    error_class: str | None
    message: str
    partition_key: str | None
    failed_at: str  # ISO 8601, UTC


def _secrets() -> list[str]:
    values = [os.environ.get(name) for name in SECRET_ENV]
    from jx_pipeline.lib import settings

    try:
        paths = (settings.local_cluster().password_file, settings.pseudonym_key_file())
    except Exception:  # an invalid JX_DB_PREFIX: the variables are all there is
        paths = ()
    for path in paths:
        with contextlib.suppress(OSError, ValueError):
            values.append(path.read_text().strip())
    return [v for v in values if v and len(v) >= 6]


def scrub(text: str) -> str:
    """Passwords in URLs / DSNs and the value of every secret (variables, key files) replaced with ***."""
    text = mask_url(text)
    for value in _secrets():
        text = text.replace(value, "***")
    return text[:MAX_MESSAGE]


def innermost(error) -> tuple[str | None, str]:
    """(class name, message) of the user's error inside Dagster's step-execution wrapper (e.g. JxError)."""
    if error is None:
        return None, ""
    # Dagster's step wrapper, and the Failure that lib/retry.py raises from a data error so it is not retried
    while error.cause is not None and (error.cls_name.startswith("Dagster") or error.cls_name == "Failure"):
        error = error.cause
    return error.cls_name, error.message.strip()


def record(conn, alert: Alert) -> bool:
    """Insert the alert; False when this run was recorded before (nothing to post again)."""
    with conn.transaction():
        row = conn.execute(
            """insert into quality.run_alert
                   (run_id, job_name, step_key, error_class, message, partition_key, failed_at)
               values (%s, %s, %s, %s, %s, %s, %s)
               on conflict (run_id) do nothing returning run_id""",
            (
                alert.run_id,
                alert.job_name,
                alert.step_key,
                alert.error_class,
                alert.message,
                alert.partition_key,
                alert.failed_at,
            ),
        ).fetchone()
    return row is not None


def post(alert: Alert, url: str | None = None, timeout: float = 10.0) -> str:
    """POST the alert as JSON to the webhook; returns the HTTP status or the error (never raises)."""
    url = url or os.environ.get(WEBHOOK_ENV)
    if not url:
        return "not configured"
    body = json.dumps({"source": "jx-pipeline", "kind": "run_failure", **asdict(alert)}, ensure_ascii=False)
    req = urllib.request.Request(
        url, data=body.encode(), headers={"Content-Type": "application/json; charset=utf-8"}, method="POST"
    )
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return str(resp.status)
    except Exception as exc:  # a webhook that is down must not fail the sensor: the row is already there
        return scrub(f"{type(exc).__name__}: {exc}")[:200]


def set_status(conn, run_id: str, status: str) -> None:
    with conn.transaction():
        conn.execute("update quality.run_alert set webhook_status = %s where run_id = %s", (status, run_id))
