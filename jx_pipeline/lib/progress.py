"""Progress of a long run (168 feeds load for minutes), read from the run's own event log on the Postgres instance.

One tally serves both places an operator looks: each department step logs it into the run's events (the UI's run
page), and ``jx-pipeline materialize`` follows the run it started and prints it after every finished step. The
figures come from what Dagster recorded (steps succeeded of the run's plan, the last row count of each asset
materialized), never from a counter of our own that could drift from the run.
"""

from __future__ import annotations

import contextlib
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import dagster as dg

from jx_pipeline.lib import cli_runs, storage_pool

DEPARTMENT_TAG = "jx/department"
_FINISHED = {dg.DagsterEventType.STEP_SUCCESS, dg.DagsterEventType.STEP_FAILURE}


@dataclass
class Progress:
    steps_total: int
    steps_done: int = 0
    steps_failed: int = 0
    departments_total: int = 0
    departments_done: int = 0
    rows: dict[str, int] = field(default_factory=dict)  # rows of the assets materialized so far, per layer
    elapsed: float = 0.0

    def line(self) -> str:
        rows = ", ".join(f"{layer} {n:,}" for layer, n in sorted(self.rows.items())) or "none yet"
        minutes, seconds = divmod(int(self.elapsed), 60)
        failed = f" ({self.steps_failed} failed)" if self.steps_failed else ""
        depts = (
            f", departments {self.departments_done}/{self.departments_total}"
            if self.departments_total
            else ""
        )
        return (
            f"progress: steps {self.steps_done}/{self.steps_total}{failed}{depts}, rows {rows},"
            f" {minutes}:{seconds:02d} elapsed"
        )


@dataclass
class _Fold:
    """A run's events read so far (one per run and process): each tally reads only the events after them."""

    planned: dict
    cursor: str | None = None
    last_id: int = 0
    pending: list = field(default_factory=list)  # read, but after the ``upto`` asked last
    started: float | None = None
    succeeded: set = field(default_factory=set)
    failed: set = field(default_factory=set)
    row_count: dict = field(default_factory=dict)
    last_ts: float | None = None

    def add(self, record) -> None:
        entry = record.event_log_entry
        self.last_id, self.last_ts = record.storage_id, entry.timestamp
        kind = entry.dagster_event_type
        if kind == dg.DagsterEventType.RUN_START:
            self.started = entry.timestamp
        elif kind == dg.DagsterEventType.STEP_SUCCESS:
            self.succeeded.add(entry.step_key)
        elif kind == dg.DagsterEventType.STEP_FAILURE:
            self.failed.add(entry.step_key)
        else:  # one event per partition of a range, all with the asset's count over the run's partitions
            mat = entry.dagster_event.materialization
            count = mat.metadata.get("dagster/row_count")
            if count is not None:
                self.row_count[mat.asset_key] = count.value


_FOLDS: dict[str, _Fold] = {}
_OF_TYPE = {*_FINISHED, dg.DagsterEventType.RUN_START, dg.DagsterEventType.ASSET_MATERIALIZATION}


def _fold(instance: dg.DagsterInstance, run_id: str, upto: int | None) -> _Fold:
    fold = _FOLDS.get(run_id)
    if fold is None or (upto is not None and upto < fold.last_id):  # asked about an earlier moment: read anew
        run = instance.get_run_by_id(run_id)
        plan = instance.get_execution_plan_snapshot(run.execution_plan_snapshot_id)
        planned = {s.key: s for s in plan.steps}
        if plan.step_keys_to_execute:
            planned = {k: planned[k] for k in plan.step_keys_to_execute if k in planned}
        fold = _FOLDS[run_id] = _Fold(planned)
    if upto is None or not any(r.storage_id >= upto for r in fold.pending):
        batch = instance.get_records_for_run(run_id, cursor=fold.cursor, of_type=_OF_TYPE)
        fold.cursor = batch.cursor
        fold.pending += batch.records
    keep = []
    for record in fold.pending:
        if upto is None or record.storage_id <= upto:
            fold.add(record)
        else:
            keep.append(record)
    fold.pending = keep
    return fold


def tally(
    instance: dg.DagsterInstance, run_id: str, finishing: str | None = None, upto: int | None = None
) -> Progress:
    """The run's progress now, or as of its event ``upto`` (a storage id). ``finishing``: the step that asks,
    at its end (counted as done)."""
    fold = _fold(instance, run_id, upto)
    planned = fold.planned
    now = fold.last_ts if upto is not None and fold.last_id == upto else time.time()
    succeeded = fold.succeeded | ({finishing} if finishing else set())
    depts: dict[str, list[str]] = {}
    for key, step in planned.items():
        if dept := (step.tags or {}).get(DEPARTMENT_TAG):
            depts.setdefault(dept, []).append(key)
    rows: dict[str, int] = {}
    for key, n in fold.row_count.items():
        rows[key.path[0]] = rows.get(key.path[0], 0) + n
    return Progress(
        steps_total=len(planned),
        steps_done=len(succeeded & planned.keys()),
        steps_failed=len(fold.failed & planned.keys()),
        departments_total=len(depts),
        departments_done=sum(all(k in succeeded for k in keys) for keys in depts.values()),
        rows=rows,
        elapsed=now - fold.started if fold.started else 0.0,
    )


def log_step(context: dg.AssetExecutionContext) -> None:
    """At the end of a step: one 'progress:' line in the run's events (shown on the run's page in the UI)."""
    step = context.get_step_execution_context().step.key
    context.log.info(tally(context.instance, context.run.run_id, finishing=step).line())


def follow(proc: subprocess.Popen, print_line: Callable[[str], None], every: float = 1.0) -> int:
    """Wait for ``proc`` (a ``dagster asset materialize``), printing a progress line whenever steps of its run
    finish: '<step> done' (or failed) and the tally. Returns the process's exit code."""
    since, run_id, cursor = time.time(), None, None
    # before anything slow: a kill from now on leaves a run that the next CLI call releases
    cli_runs.started(proc.pid, since)
    with dg.DagsterInstance.get() as instance:
        storage_pool.pool_connections(instance)  # it polls every second: one connection, not three a second
        while True:
            exited = proc.poll() is not None
            if run_id is None and (run_id := cli_runs.run_of(instance, proc.pid, since)):
                cli_runs.remember(run_id, proc.pid, since)
                print_line(f"run {run_id}: {tally(instance, run_id).steps_total} steps to go")
            if run_id:
                batch = instance.get_records_for_run(run_id, cursor=cursor, of_type=_FINISHED)
                cursor = batch.cursor
                for record in batch.records:
                    entry = record.event_log_entry
                    ok = entry.dagster_event_type == dg.DagsterEventType.STEP_SUCCESS
                    done = tally(instance, run_id, upto=record.storage_id)
                    print_line(f"{done.line()} | {entry.step_key} {'done' if ok else 'FAILED'}")
            if exited:  # a run its killed process left unfinished is marked failed and its slots freed now
                for killed in cli_runs.release_dead(instance):
                    print_line(f"run {killed}: its process ended without finishing it; marked failed")
                return proc.returncode
            # wakes as soon as the process ends: a second's sleep was paid by every materialize
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=every)
