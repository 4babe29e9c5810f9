"""`jx-pipeline materialize` shows its progress as the run goes: a line per finished step in the terminal and a
'progress:' line per department step in the run's events, with figures that match the run and the warehouse.

A real run of two departments (raw + staged, 4 steps) on a warehouse and a Dagster instance of its own; the
expected figures are counted independently: steps in Dagster's event_logs table, rows with count(*) per table.
"""

import json
import re

import pytest
from psycopg import sql

from jx_pipeline.catalog import load_catalog
from jx_pipeline.lib.pg import connect
from jx_pipeline_tests.conftest import run_cli

DEPARTMENTS = ("nyncj", "slj")  # 农业农村局, 水利局: 6 landing-file feeds each
LINE = re.compile(
    r"progress: steps (?P<done>\d+)/(?P<total>\d+), departments (?P<depts>\d+)/(?P<depts_total>\d+),"
    r" rows (?P<rows>.*?), \d+:\d\d elapsed(?: \| (?P<step>\S+) done)?$"
)
FIGURES = ("done", "total", "depts", "depts_total", "rows")


def _rows(text: str) -> dict[str, int]:
    return {layer: int(n.replace(",", "")) for layer, n in (p.split(" ") for p in text.split(", "))}


def _count(conn, layer: str, depts) -> int:
    feeds = [f.id for f in load_catalog().feeds if f.department in depts]
    return sum(
        conn.execute(sql.SQL("select count(*) from {}").format(sql.Identifier(layer, f))).fetchone()[0]
        for f in feeds
    )


@pytest.fixture(scope="module")
def run(make_scratch_db_module, tmp_path_factory):
    state = tmp_path_factory.mktemp("progress")
    env = {
        "JX_WAREHOUSE_URL": make_scratch_db_module(),
        "JX_DAGSTER_STORAGE_URL": make_scratch_db_module(),
        "JX_DAGSTER_HOME": str(state / "dagster_home"),
        "JX_DAGSTER_ARTIFACTS": str(state / "dagster"),
    }
    up = run_cli("db", "up", env=env)
    assert up.returncode == 0, up.stdout + up.stderr
    select = " or ".join(f"group:{d}" for d in DEPARTMENTS)
    done = run_cli("materialize", "--select", select, "--partition-range", "world", env=env, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return env, done.stdout


def test_terminal_prints_a_progress_line_per_step(run):
    env, out = run
    lines = [m for m in map(LINE.search, out.splitlines()) if m and m["step"]]
    with connect(env["JX_DAGSTER_STORAGE_URL"]) as conn:
        steps = [
            s
            for (s,) in conn.execute(
                "select step_key from event_logs where dagster_event_type = 'STEP_SUCCESS' order by id"
            ).fetchall()
        ]
    assert len(steps) == 2 * len(DEPARTMENTS)  # raw_<dept>, staged_<dept>
    assert [m["step"] for m in lines] == steps  # one line per finished step, in the order they finished
    finished: list[str] = []
    for i, m in enumerate(lines, start=1):
        finished.append(m["step"])
        assert (int(m["done"]), int(m["total"])) == (i, len(steps))
        both = sum(f"raw_{d}" in finished and f"staged_{d}" in finished for d in DEPARTMENTS)
        assert (int(m["depts"]), int(m["depts_total"])) == (both, len(DEPARTMENTS))
    with connect(env["JX_WAREHOUSE_URL"]) as wh:
        assert lines[0]["step"].startswith("raw_")  # a raw step runs before its department's staged step
        dept = lines[0]["step"].removeprefix("raw_")
        assert _rows(lines[0]["rows"]) == {
            "raw": _count(wh, "raw", [dept])
        }  # rows so far, after the first step
        expected = {layer: _count(wh, layer, DEPARTMENTS) for layer in ("raw", "staged")}
    assert expected["raw"] > 0 and expected["staged"] > 0
    assert (
        _rows(lines[-1]["rows"]) == expected
    )  # the last line: every row of the run, as the warehouse counts them
    assert re.search(
        rf"run [0-9a-f-]{{36}}: {len(steps)} steps to go", out
    )  # said before the first step ends


def test_run_events_hold_a_progress_line_per_department_step(run):
    env, out = run
    terminal = [m for m in map(LINE.search, out.splitlines()) if m and m["step"]]
    with connect(env["JX_DAGSTER_STORAGE_URL"]) as conn:
        logged = [
            (json.loads(event)["user_message"], step)
            for event, step in conn.execute(
                "select event, step_key from event_logs where dagster_event_type is null order by id"
            ).fetchall()
        ]
    progress = [(LINE.search(msg), step) for msg, step in logged if msg.startswith("progress:")]
    assert [step for _, step in progress] == [m["step"] for m in terminal]  # every department step logged one
    for (m, _), t in zip(progress, terminal, strict=True):
        assert [m[k] for k in FIGURES] == [
            t[k] for k in FIGURES
        ]  # the same steps, departments and rows as the terminal showed
