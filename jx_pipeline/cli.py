"""``jx-pipeline``: the one command behind the Makefile — local database, materializing, the UI.

Every subcommand resolves connections through ``lib.settings``; problems the user can fix end as one
``error:`` line plus the command that fixes it (set JX_DEBUG=1 for the traceback).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from jx_pipeline.lib import dagster_run, executor_config, localpg, settings
from jx_pipeline.lib.errors import JxError, mask_url


# psycopg (~0.2 s to import) loads only in the commands that reach the database, not in `address parse`
def connect(*args, **kwargs):
    from jx_pipeline.lib.pg import connect

    return connect(*args, **kwargs)


def migrate(*args, **kwargs):
    from jx_pipeline.lib.migrations import migrate

    return migrate(*args, **kwargs)


def _log(msg: str, file=None) -> None:
    print(f"jx-pipeline: {msg}", file=file or sys.stdout, flush=True)


def _ensure_database(admin_url: str, name: str) -> bool:
    with connect(admin_url, autocommit=True, what="local cluster") as conn:
        if conn.execute("select 1 from pg_database where datname = %s", (name,)).fetchone():
            return False
        from psycopg import sql

        conn.execute(sql.SQL("create database {}").format(sql.Identifier(name)))
        return True


def db_up(args: argparse.Namespace) -> int:
    external = settings.external_urls()
    if external is None:
        cluster = settings.local_cluster()
        localpg.ensure_postgres(install=os.environ.get("JX_NO_INSTALL") != "1", log=_log)
        localpg.init(cluster, log=_log)
        localpg.start(cluster, log=_log)
        for db in (settings.WAREHOUSE_DB, settings.DAGSTER_DB, settings.SOURCES_DB):
            if _ensure_database(cluster.url("postgres"), db):
                _log(f"created database {db}")
    wh_url, dg_url = settings.resolve_urls()
    with connect(dg_url, what="Dagster storage database") as conn:
        fresh = conn.execute("select to_regclass('runs') is null").fetchone()[0]
    if fresh and _dagster(["dagster", "instance", "migrate"], quiet=True) != 0:
        raise JxError(
            f"could not create Dagster's storage tables in {mask_url(dg_url)}",
            fix='eval "$(jx-pipeline db env)" && .venv/bin/dagster instance migrate',
        )
    from jx_pipeline.lib import roles

    # roles first: a migration may grant to them
    with connect(wh_url, what="warehouse", autocommit=True) as conn:
        for done in roles.ensure_roles(conn, wh_url, log=_log):
            _log(done)
    with connect(wh_url, what="warehouse") as conn:
        ran = migrate(conn)
    _log(f"warehouse migrations applied: {ran or 'none pending'}")
    _sync_pools()
    with connect(wh_url, what="warehouse", autocommit=True) as conn:  # roles per server, grants per database
        roles.grant(conn)
        roles.check_fences(conn)
    return db_status(args)


def db_down(args: argparse.Namespace) -> int:
    if settings.external_urls():
        _log("JX_WAREHOUSE_URL is set: the database is external, nothing to stop")
        return 0
    stopped = localpg.stop(settings.local_cluster())
    _log("local cluster stopped" if stopped else "local cluster was not running")
    return 0


def db_status(args: argparse.Namespace) -> int:
    external = settings.external_urls()
    if external is None:
        cluster = settings.local_cluster()
        port = localpg.running_port(cluster)
        state = f"running on {cluster.host}:{port}" if port else "stopped"
        print(f"local cluster : {cluster.data_dir} ({state})")
        if not port:
            return 3
    wh_url, dg_url = settings.resolve_urls()
    print(f"warehouse     : {mask_url(wh_url)}")
    print(f"dagster store : {mask_url(dg_url)}")
    with connect(wh_url, what="warehouse") as conn:
        versions = (
            [
                v
                for (v,) in conn.execute(
                    "select version from jx_meta.schema_migration order by version"
                ).fetchall()
            ]
            if conn.execute("select to_regclass('jx_meta.schema_migration')").fetchone()[0]
            else []
        )
        postgis = conn.execute("select extversion from pg_extension where extname = 'postgis'").fetchone()
    print(f"migrations    : {versions or 'none'}")
    print(f"postgis       : {postgis[0] if postgis else 'not installed'}")
    where, fingerprint = settings.pseudonym_fingerprint()  # equal on every machine of one deployment
    print(f"pseudonyms    : {where}" + (f", fingerprint {fingerprint}" if fingerprint else ""))
    return 0


def db_url(args: argparse.Namespace) -> int:
    wh_url, dg_url = settings.resolve_urls()
    if args.reader or args.engineer:
        from jx_pipeline.lib import roles

        print(roles.url(roles.READER if args.reader else roles.ENGINEER, wh_url))
        return 0
    print(dg_url if args.dagster else wh_url)
    return 0


def db_env(args: argparse.Namespace) -> int:
    for key, value in settings.dagster_env().items():
        print(f"export {key}='{value}'")
    return 0


def db_migrate(args: argparse.Namespace) -> int:
    wh_url, _ = settings.resolve_urls()
    with connect(wh_url, what="warehouse") as conn:
        ran = migrate(conn, target=args.target)
    _log(f"applied migrations: {ran or 'none pending'}")
    return 0


def world_generate(args: argparse.Namespace) -> int:
    from jx_pipeline.world import generate, sourcedb

    opts = generate.Options(
        out=Path(args.out),
        scale=args.scale,
        seed=args.seed,
        days=args.days,
        start=args.start_date,
        noise_file=Path(args.noise) if args.noise else None,
        workers=args.workers,
        progress=not args.quiet,
    )
    foreign_world = (opts.out / "entities").is_dir() and not (opts.out / generate.MANIFEST).exists()
    if args.reuse and foreign_world:
        _log(f"using the world in {opts.out} as it is (not written by the generator)")
        return 0
    if args.reuse and generate.up_to_date(opts):
        _log(f"world in {opts.out} is up to date (seed {opts.seed}, scale {opts.scale}, days {opts.days})")
    else:
        started = time.monotonic()
        manifest = generate.generate(opts, log=_log)
        counts = manifest["counts"]
        _log(
            f"wrote {counts['records']:,} records of {counts['feeds']} feeds to {opts.out} "
            f"in {time.monotonic() - started:.1f} s"
        )
    if args.source_db != "none":
        from jx_pipeline.catalog import load_catalog

        url = sourcedb.source_db_url(args.source_db)
        loaded = sourcedb.load(opts.out, url, load_catalog())
        _log(
            f"loaded {len(loaded)} source-database tables ({sum(loaded.values()):,} rows) into {mask_url(url)}"
        )
    return 0


def _dagster(argv: list[str], quiet: bool = False, progress: bool = False, pools: bool = False) -> int:
    """Dagster's CLI in a process of its own; ``pools``: the catalog's pool limits written first, in that process
    (lib/dagster_run.py)."""
    # Dagster's deprecation/beta warnings are noise for a user of the pipeline; PYTHONWARNINGS overrides.
    env = {"PYTHONWARNINGS": "ignore", **os.environ, **settings.dagster_env()}
    os.makedirs(env["JX_DAGSTER_ARTIFACTS"], exist_ok=True)
    exe = os.path.join(os.path.dirname(sys.executable), argv[0])
    cmd = [sys.executable, "-m", "jx_pipeline.lib.dagster_run", *argv[1:]] if pools else [exe, *argv[1:]]
    out = subprocess.DEVNULL if quiet else None
    if not progress:
        return subprocess.call(cmd, env=env, stdout=out)
    from jx_pipeline.lib import progress as run_progress  # imports dagster (~2 s): only when following a run

    os.environ.update(settings.dagster_env())  # the run's events are read from the same instance
    return run_progress.follow(subprocess.Popen(cmd, env=env, stdout=out), _log)


def _world_days() -> str:
    """The landing days of the current world as a partition range START...END."""
    from jx_pipeline.lib.world import world_dir

    days = sorted(p.name for p in (world_dir() / "landing").glob("*/*/*") if p.is_dir())
    sources = world_dir() / "manifest.json"
    if sources.exists():  # a generated world: its start date and increments also cover the source tables
        import json
        from datetime import date, timedelta

        m = json.loads(sources.read_text(encoding="utf-8"))
        start = date.fromisoformat(m["start_date"])
        days += [str(start), str(start + timedelta(days=m["days"]))]
    if not days:
        raise JxError(f"the world at {world_dir()} has no landing days", fix="jx-pipeline world generate ...")
    return f"{min(days)}...{max(days)}"


LINK_OP = "core__entity_link"  # the op of asset core/entity_link


def materialize(args: argparse.Namespace) -> int:
    started = time.monotonic()
    # Dagster's storage answers (one clear error here, not the retries and tracebacks of both processes)
    connect(settings.resolve_urls()[1], what="Dagster storage").close()
    if args.executor == "celery":  # before the run: a stale worker or none at all is an error now, not later
        from jx_pipeline.lib import workers

        _log(f"steps go to the Celery workers ({workers.check()} answering on the broker)")
    level = "WARNING" if args.progress else "INFO"
    partition = ["--partition", args.partition] if args.partition else []
    if args.partition_range:
        partition = [
            "--partition-range",
            _world_days() if args.partition_range == "world" else args.partition_range,
        ]
    rc = _dagster(
        [
            "dagster",
            "asset",
            "materialize",
            "-m",
            "jx_pipeline.definitions",
            "--select",
            args.select,
            *partition,
            "--config-json",
            json.dumps(
                {
                    # the progress lines replace the step's own 'progress:' log lines on the console
                    "loggers": {"console": {"config": {"log_level": args.log_level or level}}},
                    "execution": {"config": executor_config.run_config(args.executor)},
                    # core/entity_link's LinkConfig (the UI's Launchpad sets the same)
                    **({"ops": {LINK_OP: {"config": {"full": True}}}} if args.full else {}),
                }
            ),
        ],
        progress=args.progress,
        pools=True,
    )
    if rc == dagster_run.BEFORE_RUN:  # no run was created; the child printed why
        return rc
    _quarantine_report()  # checks that failed as warnings: the run went on without those partitions
    if rc != 0:
        raise JxError(
            f"materializing '{args.select}' failed (exit {rc}); the run's events are in the UI",
            fix="jx-pipeline ui   (then open Runs)",
        )
    _log(f"materialized '{args.select}' in {time.monotonic() - started:.1f} s")
    if args.summary:
        _summary()
    return 0


def _quarantine_report() -> None:
    """Print the feed partitions quarantined now (a blocking check failed, in this run or an earlier one)."""
    from jx_pipeline.lib import quarantine

    wh_url, _ = settings.resolve_urls()
    try:
        with connect(wh_url, what="warehouse") as conn:
            if conn.execute("select to_regclass('quality.quarantine_active')").fetchone()[0] is None:
                return
            rows = quarantine.listing(conn)
    except JxError:  # the warehouse is gone: the run's own error says more
        return
    if not rows:
        return
    print(f"\nquarantined feed partitions ({len(rows)}), left out of linking and the marts:")
    for r in rows:
        d, p, name = r["department"], r["partition"], r["feed_id"].removeprefix(f"{r['department']}_")
        print(f"  {r['feed_id']} {p} (since {r['since']}): {r['reason']}")
        print(
            f"    fix the files, then: jx-pipeline materialize --select 'key:raw/{d}/{name} or key:staged/{d}/{name}'"
            f" --partition-range {p}...{p}"
        )
    print(
        "  (a later run of the partition that passes clears it; everything else goes on to linking and the marts)"
    )


def _summary() -> None:
    from psycopg import sql

    wh_url, _ = settings.resolve_urls()
    count = sql.SQL("select count(*) from {}")
    with connect(wh_url, what="warehouse") as conn:
        rows = conn.execute(
            """select n.nspname, c.relname
                 from pg_class c join pg_namespace n on n.oid = c.relnamespace
                where c.relkind in ('r', 'p') and not c.relispartition
                  and n.nspname in ('raw','staged','quality','core','mart')
                order by 1"""
        ).fetchall()
        tables = [
            (f"{schema}.{name}", conn.execute(count.format(sql.Identifier(schema, name))).fetchone()[0])
            for schema, name in rows
        ]
        services = []
        if conn.execute("select to_regclass('mart.data_service')").fetchone()[0]:
            services = conn.execute(
                "select service_id, title_zh, coalesce(geometry_type, '-'), srid, row_count, data_day"
                " from mart.data_service order by service_id"
            ).fetchall()
    print("\nwarehouse tables:")
    for name, n in tables:
        print(f"  {name:<40} {n:>12,} rows")
    if services:
        print("\ndata services published for the platform (mart.data_service):")
        for sid, title, geom, srid, n, day in services:
            where = f"{geom}/EPSG:{srid}" if srid else geom
            print(f"  {sid:<26} {title:<8} {where:<20} {n:>10,} rows   data day {day or '-'}")
    print(f'\nwarehouse : {mask_url(wh_url)}   (psql "$(jx-pipeline db url)")')
    print(
        "runs      : stored in Dagster's PostgreSQL storage; browse them with `make ui` -> http://127.0.0.1:3000"
    )


def _address_parser(source: str, city: str = "3304"):
    from jx_pipeline.lib import address

    if not (len(city) == 4 and city.isdigit()):
        raise JxError(f"--city {city!r} is not a 4-digit NBS city code", fix="e.g. --city 3304 (Jiaxing)")
    if source == "none" or city != "3304":  # the door plates are Jiaxing's
        try:
            return address.AddressParser(city=city)
        except ValueError as e:
            raise JxError(str(e), fix="give a city code of data/china_divisions/cities.csv") from None
    if source.endswith(".parquet"):
        path = Path(source)
        if not path.is_file():
            raise JxError(
                f"gazetteer file {path} not found", fix="pass a world's entities/geo_entities.parquet"
            )
        from jx_pipeline.lib.address_cache import gazetteer_parser

        def points():  # read only when the parser is not on disk yet
            import pyarrow.parquet as pq

            # one file read column by column: read_table's dataset layer and a list of row dicts cost ten times more
            t = pq.ParquetFile(path).read(columns=["entity_id", "entity_type", "village_code", "address"])
            cols = [t.column(c).to_pylist() for c in ("entity_type", "entity_id", "village_code", "address")]
            return [(e, v, a) for kind, e, v, a in zip(*cols, strict=True) if kind == "address_point"]

        return gazetteer_parser(path, points)
    wh_url, _ = settings.resolve_urls()
    try:
        with connect(wh_url) as conn:
            return address.from_warehouse(conn)
    except JxError:
        if source == "warehouse":
            raise
        print(
            "jx-pipeline: warehouse not reachable: parsing with the divisions only (no door plates)",
            file=sys.stderr,
        )
        return address.AddressParser()


def address_parse(args: argparse.Namespace) -> int:
    """UTF-8 lines on stdin -> one JSON object per line on stdout, in order."""
    import gc

    from jx_pipeline.lib.address_json import JsonLines

    parser = _address_parser(args.gazetteer, args.city)
    gc.freeze()  # the index's millions of objects live to the end: collections need not walk them
    # the caches of cores and their JSON grow to the end too: full collections walking them (8 on 231k distinct
    # lines, a quarter of the time) are made rare; young objects are still collected as usual
    gc.set_threshold(700, 10, 1000)
    out = sys.stdout
    line_of = JsonLines(parser).line
    if sys.stdin.isatty():  # someone typing: answer each line at once
        for line in sys.stdin:
            print(line_of(line.rstrip("\r\n")), flush=True)
        return 0
    while chunk := sys.stdin.readlines(1 << 16):  # ~64 KB of lines at a time: one write each, not one a line
        out.write("\n".join([line_of(line.rstrip("\r\n")) for line in chunk]) + "\n")
    out.flush()
    return 0


def evaluate_cmd(args: argparse.Namespace) -> int:
    """Compare the warehouse's links and identities with a world's ground truth; print JSON (and a summary)."""
    from jx_pipeline.lib import evaluate

    truth = Path(args.truth)
    if not (truth / "records.parquet").is_file():
        raise JxError(
            f"{truth} holds no records.parquet",
            fix="pass a generated world's truth folder: --truth DIR/truth",
        )
    wh_url, _ = settings.resolve_urls()
    figures: dict = {}
    with connect(wh_url, what="warehouse") as conn:
        if not args.marts_only:
            if not conn.execute("select count(*) from core.entity_link").fetchone()[0]:
                raise JxError(
                    "core.entity_link is empty: nothing to evaluate",
                    fix="jx-pipeline materialize --select 'group:entities or group:linking'",
                )
            figures = evaluate.evaluate(conn, truth)
            if not args.all_feeds:
                figures.pop("links_by_feed")
        figures["marts"] = _evaluate_marts(conn, truth, args)
    if not args.marts_only:
        links, person, org = figures["links"], figures["identity_person"], figures["identity_legal_person"]
        print(
            f"links: precision {links['precision']}, recall {links['recall']} over {links['records']:,} records"
            f" with a true entity; identity F1 persons {person.get('f1')}, legal persons {org.get('f1')}",
            file=sys.stderr,
        )
    print(json.dumps(figures, ensure_ascii=False, indent=1))
    return 0


def _evaluate_marts(conn, truth: Path, args: argparse.Namespace) -> dict | None:
    """Residents and organisations per village in the marts against the truth (None, said, when absent)."""
    from jx_pipeline.catalog import load_catalog
    from jx_pipeline.lib import evaluate

    if not (truth / "residents.parquet").is_file():
        _log(
            f"marts not scored: {truth} has no residents.parquet (a world generated before it was written)",
            sys.stderr,
        )
        return None
    if conn.execute("select to_regclass(%s)", (evaluate.MART,)).fetchone()[0] is None:
        if args.marts_only:
            raise JxError(
                f"{evaluate.MART} does not exist", fix="jx-pipeline materialize --select 'group:mart'"
            )
        _log(
            f"marts not scored: {evaluate.MART} does not exist (jx-pipeline materialize --select 'group:mart')",
            sys.stderr,  # stdout is the JSON
        )
        return None
    villages = Path(args.villages) if args.villages else None
    marts = evaluate.marts(conn, truth, load_catalog(), villages_csv=villages)
    for col in evaluate.MEASURES:
        if col in marts:
            m = marts[col]
            print(
                f"marts: {col} per village: mean relative error {m['mae_relative']:.2%} over {m['published']:,}"
                f" villages with a published count (goal <= {m['goal']:.0%}: {'met' if m['goal_met'] else 'NOT met'});"
                f" {m['suppressed']} suppressed",
                file=sys.stderr,
            )
    return marts


def _sync_pools() -> None:
    """The catalog's pool limits (max_concurrent_loads per department) into Dagster's storage (lib/pools.py)."""
    from jx_pipeline.lib import pools

    changed = pools.sync_from_env(_log)
    if changed:
        _log(f"Dagster pool limits set from the catalog: {changed}")


def browser_cmd(args: argparse.Namespace) -> int:
    from jx_pipeline.lib import browser

    done = browser.ensure(install=os.environ.get("JX_NO_INSTALL") != "1", log=_log)
    _log(f"installed {' '.join(done)}" if done else f"{' '.join(browser.PACKAGES)}: installed")
    return 0


def ui(args: argparse.Namespace) -> int:
    _sync_pools()
    workspace = settings.dagster_home() / "workspace.yaml"
    return _dagster(["dagster", "dev", "-w", str(workspace), "-h", "127.0.0.1", "-p", str(args.port)])


def redis_cmd(args: argparse.Namespace) -> int:
    """The local Redis under .jx/redis (the Celery workers' broker)."""
    from jx_pipeline.lib import localredis

    redis = localredis.local_redis()
    if args.redis_command == "up":
        localredis.up(redis, install=os.environ.get("JX_NO_INSTALL") != "1", log=_log)
    elif args.redis_command == "down":
        _log("local Redis stopped" if localredis.down(redis) else "local Redis was not running")
        return 0
    state = f"running on {redis.host}:{redis.port}" if localredis.running(redis) else "stopped"
    print(f"local Redis   : {redis.root} ({state})")
    return 0 if state != "stopped" else 3


def workers_cmd(args: argparse.Namespace) -> int:
    """The Celery workers of this machine (broker: JX_CELERY_BROKER_URL, else the local Redis, started here)."""
    from jx_pipeline.lib import executor, localredis, workers

    if args.workers_command == "up":
        if not os.environ.get(executor.BROKER_ENV):
            localredis.up(localredis.local_redis(), install=os.environ.get("JX_NO_INSTALL") != "1", log=_log)
        started = time.monotonic()
        ready = workers.up(args.count, concurrency=args.concurrency, log=_log)
        _log(f"{len(ready)} Celery workers ready in {time.monotonic() - started:.1f} s")
    elif args.workers_command == "down":
        stopped = workers.down()
        _log(f"stopped {len(stopped)} Celery workers" if stopped else "no Celery worker was running")
        return 0
    for w in workers.local_workers():
        print(f"{w.name:<40} pid {w.pid() or '-':<8} log {w.file('log')}")
    return 0


def serve(args: argparse.Namespace) -> int:
    """The OGC API Features server over schema mart, connected as jx_platform_reader (lib/ogcapi.py)."""
    from jx_pipeline.lib import ogcapi, roles

    ogcapi.serve(roles.url(roles.READER), port=args.port, log=_log)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="jx-pipeline", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    db = sub.add_parser("db", help="the warehouse and Dagster storage databases").add_subparsers(
        dest="db_command", required=True
    )
    db.add_parser("up", help="install (if missing), start and migrate the local cluster").set_defaults(
        func=db_up
    )
    db.add_parser("down", help="stop the local cluster").set_defaults(func=db_down)
    db.add_parser("status", help="where the databases are and their state").set_defaults(func=db_status)
    url = db.add_parser("url", help="print the warehouse URL (the owner's; or of another role, or Dagster's)")
    which = url.add_mutually_exclusive_group()
    which.add_argument("--dagster", action="store_true", help="Dagster's storage database")
    which.add_argument("--reader", action="store_true", help="as jx_platform_reader (mart only)")
    which.add_argument("--engineer", action="store_true", help="as jx_engineer (quality, core, mart)")
    url.set_defaults(func=db_url)
    db.add_parser("env", help="print export lines for a shell running dagster by hand").set_defaults(
        func=db_env
    )
    mig = db.add_parser("migrate", help="apply pending warehouse migrations")
    mig.add_argument("--target", type=int, default=None, help="stop after this version")
    mig.set_defaults(func=db_migrate)

    mat = sub.add_parser("materialize", help="materialize assets through Dagster (runs recorded in Postgres)")
    mat.add_argument("--select", default="*", help="Dagster asset selection (default: everything)")
    mat.add_argument("--summary", action="store_true", help="print the warehouse tables afterwards")
    mat.add_argument(
        "--executor",
        choices=["in_process", "multiprocess", "celery"],
        default=os.environ.get("JX_EXECUTOR") or "in_process",
        help="in_process (default, or JX_EXECUTOR): one process, no per-step start-up; multiprocess: steps in"
        " parallel; celery: steps on the Celery workers (jx-pipeline workers up)",
    )
    days = mat.add_mutually_exclusive_group()
    days.add_argument(
        "--partition-range", help="START...END of daily partitions, or 'world' for the world's landing days"
    )
    days.add_argument(
        "--partition",
        help="one landing day (YYYY-MM-DD); unlike a range, the selection may also hold unpartitioned assets"
        " (entities, links, marts): the whole day in one run, as the daily job runs it",
    )
    mat.add_argument(
        "--log-level",
        help="console log level of the run (DEBUG shows every event; default WARNING, INFO with --no-progress)",
    )
    mat.add_argument(
        "--full",
        action="store_true",
        help="linking parses every address again (default: only texts it has not parsed before); the selection"
        " must include core/entity_link",
    )
    mat.add_argument(
        "--no-progress",
        dest="progress",
        action="store_false",
        help="do not print a progress line (steps, departments, rows, elapsed) as each step finishes",
    )
    mat.set_defaults(func=materialize)

    redis = sub.add_parser("redis", help="the local Redis (the Celery workers' broker)").add_subparsers(
        dest="redis_command", required=True
    )
    redis.add_parser("up", help="install (if missing), start under .jx/redis").set_defaults(func=redis_cmd)
    redis.add_parser("down", help="stop it").set_defaults(func=redis_cmd)
    redis.add_parser("status", help="whether it runs").set_defaults(func=redis_cmd)

    wk = sub.add_parser("workers", help="Celery workers of this machine").add_subparsers(
        dest="workers_command", required=True
    )
    wup = wk.add_parser("up", help="start (or restart, after a change) N workers; the local Redis too")
    wup.add_argument("--count", type=int, default=int(os.environ.get("JX_WORKERS", "2")))
    wup.add_argument("--concurrency", type=int, default=1, help="steps at once per worker")
    wup.set_defaults(func=workers_cmd)
    wk.add_parser("down", help="stop them (a step under way finishes first)").set_defaults(func=workers_cmd)
    wk.add_parser("status", help="list them").set_defaults(func=workers_cmd)

    world = sub.add_parser("world", help="the synthetic Jiaxing world").add_subparsers(
        dest="world_command", required=True
    )
    gen = world.add_parser("generate", help="generate geography, people, 168 feeds and ground truth")
    gen.add_argument(
        "--scale", type=float, required=True, help="1.0 = the whole city (~90M records); 0.001 for tests"
    )
    gen.add_argument("--seed", type=int, required=True)
    gen.add_argument("--days", type=int, default=0, help="daily increments after the initial extract")
    gen.add_argument(
        "--out", required=True, help="output folder (new, empty, or written by this command before)"
    )
    gen.add_argument("--start-date", default="2026-11-01", help="landing date of the initial extract")
    gen.add_argument("--noise", help="YAML overriding noise rates (see jx_pipeline/world/noise.yaml)")
    gen.add_argument("--workers", type=int, default=2, help="processes writing feeds")
    gen.add_argument(
        "--source-db",
        default=None,
        help="URL of the department source database, or 'none' (default: JX_SOURCE_DB_URL or the local cluster)",
    )
    gen.add_argument(
        "--reuse", action="store_true", help="keep an existing world made with the same settings"
    )
    gen.add_argument("--quiet", action="store_true", help="no progress bar")
    gen.set_defaults(func=world_generate)

    addr = sub.add_parser("address", help="the address parser (any city; Jiaxing by default)").add_subparsers(
        dest="address_command", required=True
    )
    parse = addr.add_parser(
        "parse", help="read addresses (UTF-8 lines) on stdin, write one JSON object per line on stdout"
    )
    parse.add_argument(
        "--gazetteer",
        default="auto",
        help="door plates from 'warehouse' (core.geo_entity), a geo_entities.parquet file, or 'none'"
        " (default auto: the warehouse when it answers, else none); used for Jiaxing only",
    )
    parse.add_argument(
        "--city",
        default="3304",
        help="4-digit NBS code of the city the addresses are in (default 3304, Jiaxing); any Zhejiang city"
        " resolves to village, other cities to county; places elsewhere come back outside=true",
    )
    parse.set_defaults(func=address_parse)

    ev = sub.add_parser(
        "evaluate",
        help="compare links, identities and the marts' residents / organisations per village with a world's truth",
    )
    ev.add_argument("--truth", required=True, help="the world's truth folder (DIR/truth)")
    ev.add_argument("--all-feeds", action="store_true", help="include the figures of every feed")
    ev.add_argument(
        "--marts-only", action="store_true", help="only score mart.admin_unit_profile against the truth"
    )
    ev.add_argument("--villages", help="write the per-village comparison of the marts to this CSV file")
    ev.set_defaults(func=evaluate_cmd)

    sub.add_parser(
        "browser", help="install chromium and fonts-noto-cjk when missing (the browser test of the UI)"
    ).set_defaults(func=browser_cmd)
    ui_p = sub.add_parser("ui", help="start the Dagster UI and daemon on 127.0.0.1")
    ui_p.add_argument("--port", type=int, default=int(os.environ.get("JX_UI_PORT", 3000)))
    ui_p.set_defaults(func=ui)

    serve_p = sub.add_parser("serve", help="OGC API Features over the marts, as jx_platform_reader")
    serve_p.add_argument("--port", type=int, default=int(os.environ.get("JX_SERVE_PORT", 8081)))
    serve_p.set_defaults(func=serve)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except JxError as exc:
        if os.environ.get("JX_DEBUG") == "1":
            raise
        print(exc.render(), file=sys.stderr)
        return 2


def run() -> None:
    """The ``jx-pipeline`` command: ``main``, then the process ends without tearing its modules down."""
    dagster_run.exit_now(main() or 0)


if __name__ == "__main__":
    run()
