"""The linking assets: ``core.entity_link`` (every current staged record -> its geographic entity) and the
master indexes ``core.person`` / ``core.legal_person`` with each record's membership.

Both rebuild from the current staged state (not per day): a late correction in any feed can change a link made
from another feed. When ``JX_EVALUATE_TRUTH`` names a world's truth folder (evaluation runs only), the figures of
``jx-pipeline evaluate`` are added to the metadata; linking itself never reads the truth.
"""

import os
from pathlib import Path

import dagster as dg

from jx_pipeline.catalog import load_catalog
from jx_pipeline.defs.ingest.assets import OWNERS, by_department, feed_key
from jx_pipeline.lib import identity, link_texts, linking, quarantine, reconcile, retry
from jx_pipeline.lib.aside import Aside
from jx_pipeline.lib.executor import run_executor
from jx_pipeline.lib.pools import WAREHOUSE
from jx_pipeline.lib.warehouse import WarehouseResource, table_metadata


class LinkConfig(dg.Config):
    """``full``: link every record and parse every address again instead of only what changed (a rebuild from
    scratch; the result is the same, the fingerprints and the cache only save the work)."""

    full: bool = False


def _evaluation(conn, keys: tuple[str, ...]) -> dict:
    truth = os.environ.get("JX_EVALUATE_TRUTH")
    if not truth:
        return {}
    from jx_pipeline.lib import evaluate  # imports pandas (~0.3 s): only in evaluation runs

    figures = evaluate.evaluate(conn, Path(truth))
    return {f"evaluation/{k}": dg.MetadataValue.json(figures[k]) for k in keys}


def _texts_asset(code: str, feeds: list, catalog) -> dg.AssetsDefinition:
    """A department's addresses parsed ahead of linking (lib/link_texts.py): one step per department, so the
    parsing spreads over the workers and machines there are."""

    @dg.asset(
        retry_policy=retry.POLICY,
        key=["core", "address_texts", code],
        # no pool: the warehouse pool's two slots would cap the parsing at two workers whatever their number
        deps=[*(feed_key(f, "staged") for f in feeds), dg.AssetKey(["core", "address_point"])],
        group_name="linking",
        owners=OWNERS,
        kinds={"postgres"},
        tags={"layer": "core", "jx/texts": "department"},
        op_tags={"jx/department": code},
        description=f"The addresses and village names of {code}'s staged partitions loaded since, parsed into "
        "staged._parse_cache ahead of core/entity_link (which parses whatever is left).",
    )
    def address_texts(
        context: dg.AssetExecutionContext, warehouse: WarehouseResource
    ) -> dg.MaterializeResult:
        kind = run_executor(context.run.run_config)
        if not link_texts.ahead(kind):
            return dg.MaterializeResult(metadata={"parsed_here": False, "executor": kind})
        with warehouse.connect() as conn:
            figures = link_texts.parse_ahead(conn, catalog, code)
        # partitions read (loaded since the last run), texts the cache lacked, texts parsed here (fewer than
        # link_texts.AHEAD_MIN new ones are left to linking)
        return dg.MaterializeResult(metadata={"parsed_here": True, "executor": kind, **figures})

    return address_texts


def build_defs() -> dg.Definitions:
    catalog = load_catalog()
    staged = [feed_key(f, "staged") for f in catalog.feeds]
    texts = [_texts_asset(code, feeds, catalog) for code, feeds in by_department(catalog).items()]

    @dg.asset(
        retry_policy=retry.POLICY,
        key=["core", "entity_link"],
        pool=WAREHOUSE,
        deps=[*staged, dg.AssetKey(["core", "address_point"]), *(t.key for t in texts)],
        group_name="linking",
        owners=OWNERS,
        kinds={"postgres", "postgis"},
        tags={"layer": "core"},
        check_specs=[
            dg.AssetCheckSpec(
                "one_row_per_record",
                asset=["core", "entity_link"],
                blocking=True,
                description="The current, not deleted records of every staged feed, counted in SQL = link rows;"
                " every record has its link row (unmatched ones included) and every link row its record.",
            )
        ],
        description="Every current staged record attached to a geographic entity: by address (exact or a typo "
        "fixed), name in village, coordinates (polygon / nearest door plate) or identity; method and score.",
    )
    def entity_link(config: LinkConfig, warehouse: WarehouseResource) -> dg.MaterializeResult:
        with warehouse.connect() as conn:
            # the check counts inside the rebuild's snapshot, before it commits: the current records aside
            found, stats, aside = {}, {}, {}
            counts = linking.link(
                conn,
                catalog,
                lambda c: found.update(
                    tally=reconcile.links(c, catalog, aside["current"].result(c)),
                    left_out=quarantine.listing(c),
                ),
                full=config.full,
                stats=stats,
                at_snapshot=lambda c: aside.update(current=Aside(c, reconcile.current_tally(catalog))),
            )
            total = sum(counts.values())
            tally = found["tally"]
            meta = table_metadata(conn, "core", "entity_link", rows=total)  # counted by method
            figures = _evaluation(conn, ("links", "links_by_method", "links_by_difficulty"))
        return dg.MaterializeResult(
            metadata={
                **meta,
                "by_method": dg.MetadataValue.json(dict(counts.most_common())),
                "link_rate": round(1 - (counts["unmatched"] + counts["outside_city"]) / total, 4)
                if total
                else 0.0,
                **figures,
                # the work this run did: records linked again (new, changed, gone and those of their identities
                # that follow its vote, unless full), addresses parsed (new ones only, unless full), rows written
                "records_relinked": stats["records_relinked"],
                # records read from staged: those of partitions loaded, replaced or quarantined since the last
                # run and the changed ones' old versions (every current record when full); a record following
                # its identity's vote is linked again from what linking remembers of it, not read
                "records_read": stats["records_read"],
                "texts_parsed": stats["texts_parsed"],
                "rows_written": dg.MetadataValue.json({k: stats[k] for k in ("mode", "deleted", "inserted")}),
                # quarantined feed partitions whose records were left out (their previous good versions count)
                "quarantined": dg.MetadataValue.json(found["left_out"]),
            },
            check_results=[
                tally.check(
                    "one_row_per_record", records_linked=total, current_counted=aside["current"].counted
                )
            ],
        )

    @dg.multi_asset(
        retry_policy=retry.POLICY,
        specs=[
            dg.AssetSpec(
                ["core", name],
                deps=[*staged, dg.AssetKey(["core", "entity_link"])],
                group_name="linking",
                owners=OWNERS,
                kinds={"postgres"},
                tags={"layer": "core"},
                description=text,
            )
            for name, text in (
                (
                    "person",
                    "Master index of persons: resident ID (15->18 upgraded) first, then name + birth date "
                    "or name + phone for records without one; membership in core.identity_member.",
                ),
                (
                    "legal_person",
                    "Master index of legal persons: credit code first, then the standardized name; "
                    "membership in core.identity_member.",
                ),
            )
        ],
        check_specs=[
            dg.AssetCheckSpec(
                "one_membership_per_record",
                asset=["core", kind],
                blocking=True,
                description=f"Every current record of a feed that maps {field}, counted in SQL, has one {kind}"
                " membership and every membership its record; every membership's master exists and each master's"
                " record count equals its members.",
            )
            for kind, field in reconcile.MEMBER_FIELD.items()
        ],
        name="core_identity",
        pool=WAREHOUSE,
    )
    def identities(warehouse: WarehouseResource):
        def currents(conn) -> dict[str, tuple[int, int]]:  # both kinds' current records, one after the other
            return {k: reconcile.current_tally(catalog, k)(conn) for k in reconcile.MEMBER_FIELD}

        with warehouse.connect() as conn:
            # the checks count inside the rebuild's snapshot, before it commits: the current records aside
            found, stats, aside = {}, {}, {}
            counts = identity.resolve(
                conn,
                catalog,
                lambda c: found.update(
                    {
                        k: reconcile.memberships(c, catalog, k, t)
                        for k, t in aside["current"].result(c).items()
                    }
                ),
                stats=stats,
                at_snapshot=lambda c: aside.update(current=Aside(c, currents)),
            )
            figures = _evaluation(conn, ("identity_person", "identity_legal_person"))
            for kind, table in (("person", "person"), ("legal_person", "legal_person")):
                yield dg.MaterializeResult(
                    asset_key=["core", kind],
                    metadata={
                        **table_metadata(conn, "core", table),
                        "records_by_method": dg.MetadataValue.json(dict(counts[kind].most_common())),
                        # records resolved again this run (new, changed, gone, and those without an ID
                        # sharing a name with one)
                        "records_resolved": stats["records_resolved"],
                        # records read from staged (those of partitions changed since, and of changed links)
                        "records_read": stats["records_read"],
                        **{k: v for k, v in figures.items() if k.endswith(f"identity_{kind}")},
                    },
                )
                yield found[kind].check(
                    "one_membership_per_record",
                    dg.AssetKey(["core", kind]),
                    current_counted=aside["current"].counted,
                )

    return dg.Definitions(assets=[*texts, entity_link, identities])


@dg.definitions
def defs() -> dg.Definitions:
    """Found by definitions.py's discovery over defs/ (dg.components.load_defs)."""
    return build_defs()
