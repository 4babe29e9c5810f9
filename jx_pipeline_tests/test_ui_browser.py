"""What an operator sees in the Dagster UI, checked in a real browser: dagster-webserver on a Postgres instance of
the test's own, over a small warehouse materialized by real runs, driven by Debian's chromium through Playwright.

Each page is asserted on the text and elements of its DOM against figures counted in SQL (rows, partitions, the
quality scorecard's table recounted from the load, reject and expectation records, link rate and links per method,
the mart's rows and columns, its decoded map PNG), the catalog (a lineage group per department, with its feeds) and
the definitions (schedules, sensors), and saved as a screenshot in .jx/ui-screenshots/ for a human to look at (timings.json: how long the
runs and the browser part took). `make` installs chromium and fonts-noto-cjk (Chinese
department and feed names render as boxes without the fonts).
"""

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import dagster as dg
import pytest
from psycopg import sql

from jx_pipeline.catalog import load_catalog
from jx_pipeline.lib import browser as chromium
from jx_pipeline.lib import settings
from jx_pipeline.lib.pg import connect
from jx_pipeline_tests.conftest import WORLD_DAYS, free_port
from jx_pipeline_tests.dagster_procs import wait_for_http

playwright = pytest.importorskip("playwright.sync_api")
expect = playwright.expect

SHOTS = settings.STATE_DIR / "ui-screenshots"
DEPARTMENTS = ("nyncj", "slj")  # 农业农村局, 水利局: landing-file feeds only
FEED = ("nyncj", "nyncj_tdcb")  # the feed whose pages are opened
DAYS = [f"2026-11-{d:02d}" for d in range(1, WORLD_DAYS + 2)]
MART = "admin_unit_profile"  # residents per village: its map preview
TIMEOUT_MS = 90_000  # the first page of a fresh webserver waits for its code server under load


def _post(url: str, body: bytes) -> bytes:
    req = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as resp:
        return resp.read()


@pytest.fixture(scope="module")
def site(make_scratch_db_module, source_url, tmp_path_factory):
    """A warehouse and a Dagster instance of the module's own, filled by real runs, and the webserver over them."""
    started = time.monotonic()
    state = tmp_path_factory.mktemp("ui")
    home = state / "dagster_home"
    env = {
        "JX_WAREHOUSE_URL": make_scratch_db_module(),
        "JX_DAGSTER_STORAGE_URL": make_scratch_db_module(),
        "JX_SOURCE_DB_URL": source_url,
        "JX_DAGSTER_HOME": str(home),
        "JX_DAGSTER_ARTIFACTS": str(state / "dagster"),
        "DAGSTER_HOME": str(home),
    }
    with pytest.MonkeyPatch.context() as mp:
        for k, v in env.items():
            mp.setenv(k, v)
        settings.dagster_home()  # dagster.yaml (Postgres storage) and workspace.yaml, as `jx-pipeline ui` has
        from jx_pipeline.definitions import defs

        job = defs.resolve_implicit_global_asset_job_def()
        groups: dict[str, list[dg.AssetKey]] = {}
        for spec in defs.resolve_all_asset_specs():
            groups.setdefault(spec.group_name, []).append(spec.key)
        runs = {}
        with dg.DagsterInstance.from_config(str(home)) as instance:

            def run(name: str, selected, **tags):
                result = job.execute_in_process(instance=instance, asset_selection=list(selected), tags=tags)
                assert result.success, name
                runs[name] = result.run_id

            run("reference", groups["reference"])
            run(
                "ingest",
                [*(k for d in DEPARTMENTS for k in groups[d]), *groups["quality"]],
                **{
                    "dagster/asset_partition_range_start": DAYS[0],
                    "dagster/asset_partition_range_end": DAYS[-1],
                },
            )
            run("entities", groups["entities"])
            run("link", groups["linking"])  # links and the person / legal-person indexes the marts count
            if groups.get("mart"):
                run("publish", groups["mart"])
        built = time.monotonic() - started
        port = free_port()
        log_path = state / "webserver.log"
        with log_path.open("w") as log:
            proc = subprocess.Popen(
                [
                    str(Path(sys.executable).with_name("dagster-webserver")),
                    *("-w", str(home / "workspace.yaml"), "-h", "127.0.0.1", "-p", str(port)),
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**os.environ, "PYTHONWARNINGS": "ignore"},
                start_new_session=True,
            )
        base = f"http://127.0.0.1:{port}"
        try:
            wait_for_http(f"{base}/server_info", proc, log_path, 120)
            # a fresh instance shows a "Join the Dagster community" modal over every page: seen, as a user would
            assert b"setNuxSeen" in _post(f"{base}/graphql", b'{"query": "mutation { setNuxSeen }"}')
            shutil.rmtree(SHOTS, ignore_errors=True)
            SHOTS.mkdir(parents=True)
            with playwright.sync_playwright() as pw:
                browser = pw.chromium.launch(executable_path=chromium.executable(), args=chromium.FLAGS)
                page = browser.new_page(viewport={"width": 1600, "height": 1000}, locale="zh-CN")
                page.set_default_timeout(TIMEOUT_MS)
                site = _Site(base, page, env, defs, runs, built)
                yield site
                timings = {  # the runs that fill the warehouse, then the webserver and every page
                    "runs_s": round(built, 1),
                    "webserver_and_browser_s": round(time.monotonic() - started - built, 1),
                }
                (SHOTS / "timings.json").write_text(json.dumps(timings))
                browser.close()
        finally:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)


class _Site:
    def __init__(self, base, page, env, defs, runs, built):
        self.base, self.page, self.env, self.defs, self.runs, self.built = base, page, env, defs, runs, built

    def open(self, path: str, ready: str):
        """Go to a page and wait until the text ``ready`` shows (the UI renders after its GraphQL answers)."""
        self.page.goto(self.base + path)
        self.wait(self.page.get_by_text(ready, exact=True).first, f"{path} showed no {ready!r}")
        return self.page

    def wait(self, locator, what: str):
        try:
            locator.wait_for()
        except playwright.Error:
            self.shot(f"failed_{len(list(SHOTS.glob('failed_*')))}")  # what the page showed instead
            raise AssertionError(what) from None

    def shot(self, name: str) -> Path:
        path = SHOTS / f"{name}.png"
        self.page.screenshot(path=path)
        return path

    def sql(self, query, *params):
        with connect(self.env["JX_WAREHOUSE_URL"]) as conn:
            return conn.execute(query, params).fetchall()

    def metadata_value(self, key: str) -> str:
        row = self.page.locator("tr").filter(has=self.page.get_by_text(key, exact=True)).first
        return row.locator("td").last.inner_text().strip()

    def markdown_of(self, key: str):
        """Open the Markdown metadata entry ``key`` (its '[Show Markdown]' button): the dialog showing it."""
        row = self.page.locator("tr").filter(has=self.page.get_by_text(key, exact=True)).last
        self.wait(row, f"no metadata entry {key!r}")
        row.get_by_text("[Show Markdown]").click()
        return self.page.get_by_role("dialog")


def _count(site, table: str) -> int:
    schema, name = table.split(".")
    return site.sql(sql.SQL("select count(*) from {}").format(sql.Identifier(schema, name)))[0][0]


def test_lineage_shows_department_groups(site):
    """The global asset lineage: one group per department of the catalog, named by its code, holding its feeds'
    raw and staged assets; a loaded department's group opened shows each feed with all its checks passed."""
    catalog = load_catalog()
    feeds = Counter(f.department for f in catalog.feeds)
    groups = {spec.group_name for spec in site.defs.resolve_all_asset_specs()}
    page = site.page
    page.set_viewport_size(
        {"width": 1600, "height": 2800}
    )  # the graph draws only the nodes in view: all of them
    try:
        site.open("/asset-groups", "Global asset lineage")
        nodes = page.locator(
            "foreignObject.group"
        )  # a collapsed group: its name, then its assets' status counts
        expect(nodes).to_have_count(len(groups), timeout=TIMEOUT_MS)
        expect(page.get_by_text("(fetching statuses)")).to_have_count(0, timeout=TIMEOUT_MS)
        shown = {}
        for node in nodes.all():
            name = node.locator("[data-tooltip]").first.inner_text().strip()
            shown[name] = sum(int(n) for n in node.locator(".BaseTag").all_inner_texts())
        assert set(shown) == groups and {d.code for d in catalog.departments} <= set(shown), shown
        for dept in catalog.departments:  # raw and staged per feed of the catalog
            assert shown[dept.code] == 2 * feeds[dept.code], (dept.code, shown[dept.code], feeds[dept.code])
        site.shot("01_asset_lineage")

        dept = FEED[0]
        nodes.filter(has=page.locator(f'[data-tooltip="{dept}"]')).click()  # open the group
        assets = page.locator("foreignObject:not(.group)").filter(has_text="Asset checks")
        expect(assets).to_have_count(2 * feeds[dept], timeout=TIMEOUT_MS)
        texts = [a.text_content() for a in assets.all()]
        graph = site.defs.get_repository_def().asset_graph
        for feed in (f for f in catalog.feeds if f.department == dept):
            name = feed.id.removeprefix(f"{dept}_")
            for layer in ("raw", "staged"):
                checks = len(graph.get_check_keys_for_assets([dg.AssetKey([layer, dept, name])]))
                passed = rf"^{name}(?![a-z0-9_]).*Asset checks{checks} / {checks} Passed"
                assert sum(bool(re.search(passed, t)) for t in texts) == 1, (feed.id, layer, texts)
        site.shot("01_asset_lineage_department")
    finally:
        page.set_viewport_size({"width": 1600, "height": 1000})


def _scorecard(conn) -> list[tuple]:
    """The scorecard per department and landing day, recounted from the loads, rejects and expectation results
    (not from quality.scorecard): (department, day, feeds, rows read, rejected, flagged, pass rate, failed)."""
    department = {f.id: f.department for f in load_catalog().feeds}
    flagged = {
        (feed, day): n
        for feed, day, n in conn.execute(
            "select feed_id, partition_key, count(distinct (source_file, row_number)) from quality.rejects"
            " where stage = 'staged' and scope = 'value' group by 1, 2"
        )
    }
    failed = {
        (feed, day): n
        for feed, day, n in conn.execute(
            "select feed_id, partition_key, count(*) filter (where not success) from quality.expectation_result"
            " group by 1, 2"
        )
    }
    per: dict[tuple, list] = {}
    four = Decimal("0.0001")
    for feed, day, read, loaded, rejected in conn.execute(
        "select feed_id, partition_key, rows_read, rows_loaded, rows_rejected from quality.load_audit"
        " where stage = 'staged'"
    ):
        clean = loaded - flagged.get((feed, day), 0)
        rate = (Decimal(clean) / read).quantize(four, ROUND_HALF_UP) if read else Decimal(1)
        per.setdefault((department[feed], day), []).append(
            (read, rejected, flagged.get((feed, day), 0), rate, failed.get((feed, day), 0))
        )
    rows = []
    for (dept, day), fs in per.items():
        read = sum(f[0] for f in fs)
        rate = (sum(f[3] * f[0] for f in fs) / read).quantize(four, ROUND_HALF_UP) if read else Decimal(1)
        rejected, flagged_, failed_ = (sum(f[i] for f in fs) for i in (1, 2, 4))
        rows.append((dept, day, len(fs), read, rejected, flagged_, rate, failed_))
    return sorted(rows, key=lambda r: (r[1], r[6], r[0]))  # the worst department of each day first


def test_quality_scorecard_table(site):
    """The scorecard asset's page: its row count (feed x day) and its departments table, figure by figure, against
    a recount from the warehouse's quality tables; the recount must see a corrupted reject."""
    page = site.open("/assets/quality/scorecard", "Row count")
    text = page.inner_text("body")
    feed_days = site.sql("select count(*) from quality.load_audit where stage = 'staged'")[0][0]
    assert feed_days > 0 and re.search(rf"Row count\s+{feed_days:,}\s", text), (feed_days, text[:2000])
    with connect(site.env["JX_WAREHOUSE_URL"]) as conn:
        expected = _scorecard(conn)
    assert {r[0] for r in expected} == set(DEPARTMENTS) and {r[1] for r in expected} == set(DAYS)
    assert site.metadata_value("feed_days") == str(len(expected))

    # the UI draws a Markdown entry under 1000 characters in place, a longer one behind '[Show Markdown]'
    row = page.locator("tr").filter(has=page.get_by_text("departments", exact=True)).last
    site.wait(row, "no metadata entry 'departments'")
    # the row shows first, its table or button a moment later (on a loaded machine, seconds): wait for either
    in_place = row.locator("table")
    site.wait(in_place.or_(row.get_by_text("[Show Markdown]")).first, "no table nor button for 'departments'")
    table = in_place if in_place.count() else site.markdown_of("departments").locator("table")
    table = table.first
    table.wait_for()
    table.scroll_into_view_if_needed()
    shown = [
        tuple(td.inner_text().strip() for td in tr.locator("td").all())
        for tr in table.locator("tbody tr").all()
    ]
    site.shot("05_quality_scorecard")
    page.keyboard.press("Escape")
    assert [(*r[:2], *map(int, r[2:6]), Decimal(r[6]), int(r[7])) for r in shown] == expected, shown
    assert any(r[5] for r in expected)  # some values were flagged: the corruption below changes a figure

    with connect(site.env["JX_WAREHOUSE_URL"]) as conn, conn.transaction(force_rollback=True):
        conn.execute(
            "delete from quality.rejects where ctid = (select ctid from quality.rejects"
            " where stage = 'staged' and scope = 'value' limit 1)"
        )
        assert _scorecard(conn) != expected  # the page's figures would no longer match


def test_feed_asset_shows_partitions_rows_and_passed_checks(site):
    dept, feed_id = FEED
    feed = next(f for f in load_catalog().feeds if f.id == feed_id)
    name = feed_id.removeprefix(f"{dept}_")
    page = site.open(f"/assets/staged/{dept}/{name}", "Row count")
    # the description is Markdown, drawn by a component the UI loads lazily after the rest of the page
    site.wait(page.get_by_text(feed.name).first, f"the page of {feed_id} showed no {feed.name!r}")
    text = page.inner_text("body")
    rows = _count(site, f"staged.{feed_id}")
    assert re.search(rf"Row count\s+{rows:,}\s", text), (rows, text[:2000])
    assert feed.name in text and load_catalog().department(dept).name in text  # Chinese names in the DOM
    site.shot("02_feed_asset_overview")

    page = site.open(f"/assets/raw/{dept}/{name}?view=partitions", "Partitions")
    page.get_by_text(re.compile(r"^Materialized \(\d+\)$")).first.wait_for()
    text = page.inner_text("body")
    loaded = {p for (p,) in site.sql(f"select distinct _partition from raw.{feed_id}")}
    assert loaded and re.search(rf"Materialized \({len(DAYS)}\)", text) and "Failed (0)" in text
    # the list draws only the rows in view, newest first, and grows by a day each Beijing midnight: the operator
    # leaves the missing days out (their status filter) and sees the days loaded
    page.get_by_text(re.compile(r"^Missing \(\d+\)$")).first.click()
    page.get_by_text(DAYS[0], exact=True).first.wait_for()
    text = page.inner_text("body")
    assert all(day in text for day in DAYS), text[:3000]
    site.shot("03_feed_asset_partitions")

    page = site.open(f"/assets/staged/{dept}/{name}?view=checks", "rows_reconcile")
    page.get_by_text("Passed").first.wait_for()
    checks = page.locator("body").inner_text()
    assert checks.count("Succeeded") >= 2 and "expectations" in checks  # both blocking checks passed
    assert "Failed" not in checks
    site.shot("04_feed_asset_checks")


def test_entity_link_shows_link_rates(site):
    site.open("/assets/core/entity_link", "link_rate")
    total, unlinked = site.sql(
        "select count(*), count(*) filter (where method in ('unmatched', 'outside_city')) from core.entity_link"
    )[0]
    assert total > 0
    assert float(site.metadata_value("link_rate")) == pytest.approx(round(1 - unlinked / total, 4))
    by_method = site.metadata_value("by_method")
    for method, n in site.sql("select method, count(*) from core.entity_link group by 1"):
        assert re.search(rf'"{method}":\s*{n}\b', by_method), (method, n, by_method)
    site.shot("06_entity_link_rates")


def test_mart_page_shows_rows_schema_and_map_preview(site):
    if not site.runs.get("publish"):
        pytest.skip("no mart assets in the definitions yet")
    page = site.open(f"/assets/mart/{MART}", "Row count")
    text = page.inner_text("body")
    assert re.search(rf"Row count\s+{_count(site, f'mart.{MART}'):,}\s", text)
    columns = site.sql(
        "select column_name from information_schema.columns where table_schema = 'mart' and table_name = %s",
        MART,
    )
    assert columns and all(re.search(rf"^{c}$", text, re.M) for (c,) in columns)  # the column schema
    dialog = site.markdown_of("preview")
    img = dialog.locator("img[src^='data:image/png']")
    img.wait_for()
    width = img.evaluate("i => i.complete ? i.naturalWidth : 0")
    assert width > 100  # a PNG the browser decoded and drew, not a broken image
    site.shot("07_mart_map_preview")
    page.keyboard.press("Escape")


def test_runs_list(site):
    page = site.open("/runs", "Runs")
    for run_id in site.runs.values():
        page.get_by_text(run_id[:8]).first.wait_for()
    text = page.inner_text("body")
    assert text.count("Success") >= len(set(site.runs.values()))
    site.shot("08_runs")


def test_automation_page_lists_schedules_and_sensors(site):
    repo = site.defs.get_repository_def()
    names = [s.name for s in repo.schedule_defs] + [s.name for s in repo.sensor_defs]
    assert any(s.name.startswith("ingest") for s in repo.schedule_defs)
    page = site.open("/automation", names[0])
    text = page.inner_text("body")
    for name in names:
        assert re.search(rf"^{name}$", text, re.M), name
    site.shot("09_automation")
