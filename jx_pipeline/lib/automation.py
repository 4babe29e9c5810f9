"""How the pipeline keeps itself fresh without a human: one automation condition, one freshness policy, and
whether schedules and sensors start running.

Ingestion is driven by the landing sensor and the cadence schedules (it must know which day landed). Linking
and publishing rebuild from all current data, so they follow ingestion by Dagster's declarative automation:
``after_ingestion`` requests them once the day's upstream runs are over and their blocking checks passed, at
most once per ``JX_AUTOMATION_CRON`` window (a Beijing day by default). One freshness policy on every
materializable asset makes a table not rebuilt for a day and a half show as stale (failed) in the UI.

``JX_AUTOMATION=off`` starts schedules and sensors stopped (the test suite sets it; an operator can also stop
each one in the UI under Automation, or with ``dagster schedule stop`` / ``dagster sensor stop``).
"""

from __future__ import annotations

import os
from datetime import timedelta

import dagster as dg

TIMEZONE = "Asia/Shanghai"
# at most one rebuild per window: the cron's ticks delimit the windows ("none": as soon as ingestion is done)
DEFAULT_CRON = "0 0 * * *"
FRESHNESS = dg.FreshnessPolicy.time_window(fail_window=timedelta(hours=36), warn_window=timedelta(hours=26))


def sensor_interval(default: int) -> int:
    """Seconds between a sensor's ticks: ``default``, or JX_SENSOR_INTERVAL_S (an operations test's seconds)."""
    return int(os.environ.get("JX_SENSOR_INTERVAL_S") or default)


def enabled() -> bool:
    return os.environ.get("JX_AUTOMATION", "on").lower() not in ("off", "0", "false", "no")


def sensor_status() -> dg.DefaultSensorStatus:
    return dg.DefaultSensorStatus.RUNNING if enabled() else dg.DefaultSensorStatus.STOPPED


def schedule_status() -> dg.DefaultScheduleStatus:
    return dg.DefaultScheduleStatus.RUNNING if enabled() else dg.DefaultScheduleStatus.STOPPED


def after_ingestion(daily: dg.AssetSelection, cron: str | None = None) -> dg.AutomationCondition:
    """Requested when an upstream asset was updated since this one last ran, nothing upstream (or this asset) is
    still in progress (nor what the upstream assets wait for), every unpartitioned dependency exists, the
    dependencies' blocking checks passed, and, unless ``cron`` is "none", a tick of ``cron`` (Beijing time) passed
    since this asset was last requested: at most once per window. ``daily`` are the day-partitioned assets: a day
    not landed yet (today, a monthly feed's other days) is missing by nature and must not hold the rebuild back."""
    cron = cron or os.environ.get("JX_AUTOMATION_CRON", DEFAULT_CRON)
    AC = dg.AutomationCondition
    cond = (
        AC.any_deps_updated().since_last_handled().with_label("upstream updated since last run")
        & ~AC.any_deps_in_progress()
        # nor two levels up: the marts wait while linking waits for a run over the feeds (one updated the
        # scorecard, another is still seen running), else they publish before the links catch up
        & ~AC.any_deps_match(AC.any_deps_in_progress()).with_label("no dependency waiting for a run")
        & ~AC.in_progress()
        & ~AC.any_deps_missing().ignore(daily)
        & AC.all_deps_blocking_checks_passed()
    )
    if cron != "none":
        cond = cond & AC.cron_tick_passed(cron, TIMEZONE).since_last_handled().with_label(
            f"new window ({cron}, {TIMEZONE})"
        )
    return cond.with_label("after_ingestion")


def with_freshness(spec: dg.AssetSpec) -> dg.AssetSpec:
    return spec.replace_attributes(freshness_policy=FRESHNESS)


def with_condition(condition: dg.AutomationCondition):
    def apply(spec: dg.AssetSpec) -> dg.AssetSpec:
        return spec.replace_attributes(automation_condition=condition)

    return apply
