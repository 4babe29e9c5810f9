"""The marts' blocking checks, computed inside the refresh's transaction after the swap (what would be published):

- ``data_service/catalog_matches_marts``: the tables of schema ``mart`` (read from PostgreSQL's catalog, not from
  the list the builder used) against the service catalog's rows, and each row's row_count against ``count(*)``;
- ``<mart>/no_personal_data``: no value shaped like an ID number or a mobile number, no person's name (PII scan);
- ``small_counts_suppressed``: no published count of 1-4 persons, and each flag says whether its count is null;
- ``geo_entity_profile/one_row_per_entity``: one row per ``core.geo_entity`` entity, counted there;
- ``admin_unit_profile/residents_add_up``: each county's residents summed = the persons with a current population
  record linked to an entity, counted from ``core`` (identity_member, entity_link) without the marts' home rule
  or their kept inputs.
"""

from __future__ import annotations

import dagster as dg
import psycopg
from psycopg import sql

from jx_pipeline.catalog.schema import Catalog
from jx_pipeline.lib import changes, marts, marts_privacy, staging
from jx_pipeline.lib.aside import Aside
from jx_pipeline.lib.pg import settings_for

PRIVACY = ("no_personal_data", "small_counts_suppressed")  # a failure of these is never published


def _key(name: str) -> dg.AssetKey:
    return dg.AssetKey(["mart", name])


def specs() -> list[dg.AssetCheckSpec]:
    out = [
        dg.AssetCheckSpec(
            "catalog_matches_marts",
            asset=_key("data_service"),
            blocking=True,
            description="Every table of schema mart has its mart.data_service row and every row its table; each"
            " row_count equals the table's count(*).",
        )
    ]
    out += [
        dg.AssetCheckSpec(
            "no_personal_data",
            asset=_key(name),
            blocking=True,
            description="PII scan of every text, text[] and jsonb value: nothing shaped like a resident ID or a"
            " mobile number, no name of the person master index.",
        )
        for name in marts.MARTS
    ]
    out += [
        dg.AssetCheckSpec(
            "small_counts_suppressed",
            asset=_key(name),
            blocking=True,
            description=f"No count of 1-{marts.SUPPRESS_BELOW - 1} persons is published; each <col>_suppressed"
            " flag is true exactly when its count is null.",
        )
        for name in marts_privacy.PERSON_COUNTS
    ]
    out += [
        dg.AssetCheckSpec(
            "one_row_per_entity",
            asset=_key("geo_entity_profile"),
            blocking=True,
            description="One row per entity of core.geo_entity (counted there), none missing, none extra.",
        ),
        dg.AssetCheckSpec(
            "residents_add_up",
            asset=_key("admin_unit_profile"),
            blocking=True,
            description="The counties' residents sum to the distinct persons with a population record linked to an"
            " entity, counted from core.identity_member and core.entity_link.",
        ),
    ]
    return out


def catalog_problems(conn: psycopg.Connection) -> dict[str, list]:
    """What disagrees between schema mart and mart.data_service (empty lists when they agree)."""
    tables = {
        n
        for (n,) in conn.execute(
            "select c.relname from pg_class c join pg_namespace n on n.oid = c.relnamespace"
            " where n.nspname = 'mart' and c.relkind in ('r', 'p', 'v', 'm') and not c.relispartition"
        ).fetchall()
    }
    rows = dict(conn.execute("select service_id, row_count from mart.data_service").fetchall())
    wrong = []
    for name in sorted(tables & set(rows)):
        n = conn.execute(sql.SQL("select count(*) from {}").format(sql.Identifier("mart", name))).fetchone()[
            0
        ]
        if n != rows[name]:
            wrong.append(f"{name}: catalog {rows[name]}, table {n}")
    return {
        "tables_without_catalog_row": sorted(tables - set(rows)),
        "catalog_rows_without_table": sorted(set(rows) - tables),
        "row_count_wrong": wrong,
    }


def _result(name: str, check: str, passed: bool, **metadata) -> dg.AssetCheckResult:
    return dg.AssetCheckResult(
        asset_key=_key(name),
        check_name=check,
        passed=passed,
        metadata={
            k: dg.MetadataValue.json(v) if isinstance(v, dict | list) else v for k, v in metadata.items()
        },
    )


def population_persons(
    conn: psycopg.Connection, catalog: Catalog, from_links: bool | None = None
) -> tuple[int, str]:
    """Distinct persons with a current population record linked to an entity, from core and the staged feeds'
    current versions (quarantined partitions left out), without the marts' tables or home rule; and where the
    current records were taken from. When linking's last run read every good population partition there is now
    (lib/changes.py), its link rows are those records (its blocking check ``one_row_per_record`` counts them),
    and the current versions need not be found again (15 s of a day's refresh at scale 0.1). ``from_links``
    forces the way (None: as above)."""
    population = [f for f in catalog.feeds if f.domain == "population"]
    # grouped, not count(distinct): hashed, not sorted (7.2 s -> 6.0 s at scale 0.1 with parallel workers; counted
    # aside, in one process: lib/aside.py)
    persons = sql.SQL(
        """select count(*) from (select m.master_key from core.identity_member m
             join core.entity_link l on l.feed_id = m.feed_id and l.record_key = m.record_key
            where m.kind = 'person' and l.entity_id is not null and l.feed_id = any({}) group by 1) p"""
    ).format(sql.Literal([f.id for f in population]))
    if from_links is None:
        from_links = changes.read_all(conn, "link", catalog, {f.id for f in population})
    if from_links:
        return conn.execute(persons).fetchone()[0], "core.entity_link (linking read every partition)"
    current = [
        sql.SQL("select {} as feed_id, record_key from {}").format(sql.Literal(f.id), latest)
        for f in population
        if (latest := staging.current(conn, f, read=())) is not None
    ]
    if not current:
        return 0, "staged"
    # hash joins: the planner guesses 200 rows per feed's latest versions and would probe entity_link's and
    # identity_member's indexes once per record (with JIT off: 21 s -> 14 s at scale 0.1, 1.5 s -> 1.2 s at 0.01)
    with settings_for(conn, enable_nestloop="off"):
        return conn.execute(
            sql.SQL(
                """select count(*) from (select m.master_key from core.identity_member m
                     join core.entity_link l on l.feed_id = m.feed_id and l.record_key = m.record_key
                     join ({}) c on c.feed_id = m.feed_id and c.record_key = m.record_key
                    where m.kind = 'person' and l.entity_id is not null group by 1) p"""
            ).format(sql.SQL(" union all ").join(current))
        ).fetchone()[0], "staged (current versions)"


def evaluate(
    conn: psycopg.Connection, catalog: Catalog, persons: Aside | None = None
) -> list[dg.AssetCheckResult]:
    """Every check of the marts, on what the connection sees now; ``persons``: ``population_persons`` counted
    aside in the same snapshot (lib/aside.py), else counted here."""
    problems = catalog_problems(conn)
    out = [_result("data_service", "catalog_matches_marts", not any(problems.values()), **problems)]
    findings = marts_privacy.scan(conn, list(marts.MARTS))
    for name in marts.MARTS:
        mine = [str(f) for f in findings if f.table == name]
        out.append(_result(name, "no_personal_data", not mine, findings=mine))
    for name in marts_privacy.PERSON_COUNTS:
        bad = marts_privacy.small_counts(conn, name, marts.SUPPRESS_BELOW)
        suppressed = {
            col: conn.execute(
                sql.SQL("select count(*) filter (where {}) from {}").format(
                    sql.Identifier(f"{col}_suppressed"), sql.Identifier("mart", name)
                )
            ).fetchone()[0]
            for col in bad
        }
        out.append(
            _result(
                name, "small_counts_suppressed", not any(bad.values()), violations=bad, suppressed=suppressed
            )
        )
    entities, rows, missing = conn.execute(
        """select (select count(*) from core.geo_entity), (select count(*) from mart.geo_entity_profile),
                  (select count(*) from core.geo_entity e
                    where not exists (select 1 from mart.geo_entity_profile p where p.entity_id = e.entity_id))"""
    ).fetchone()
    out.append(
        _result(
            "geo_entity_profile",
            "one_row_per_entity",
            entities == rows and not missing,
            core_entities=entities,
            rows=rows,
            missing=missing,
        )
    )
    if persons is None:
        (persons_in_core, counted_from), counted = population_persons(conn, catalog), "in the step"
    else:
        (persons_in_core, counted_from), counted = persons.result(conn), persons.counted
    counties = conn.execute(
        "select coalesce(sum(residents), 0), count(*) filter (where residents_suppressed)"
        " from mart.admin_unit_profile where level = 'county'"
    ).fetchone()
    out.append(
        _result(
            "admin_unit_profile",
            "residents_add_up",
            int(counties[0]) == persons_in_core and not counties[1],
            persons_in_core=persons_in_core,
            county_residents=int(counties[0]),
            current_records_from=counted_from,
            persons_counted=counted,
        )
    )
    return out
