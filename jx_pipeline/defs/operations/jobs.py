"""Jobs an engineer can name in the UI, the CLI (``dagster job launch -j link``) or a ticket.

Each job is a selection, not a list: a feed added to the catalog, or a mart added to the ``mart`` group,
joins its job without an edit here. ``daily`` is everything one landing day needs, in dependency order
(raw -> staged -> scorecard -> entities -> links and identities -> marts); the reference (admin units) is a
hand-over loaded once by ``make demo`` and is not part of any day.
"""

import dagster as dg

from jx_pipeline.catalog import load_catalog
from jx_pipeline.defs.ingest.assets import DAILY, by_department
from jx_pipeline.defs.ingest.schedules import INGEST, SCORECARD

LINK = dg.AssetSelection.groups("entities", "linking")
PUBLISH = dg.AssetSelection.groups("mart")


def department_selection(code: str) -> dg.AssetSelection:
    """A department's raw and staged feeds (its asset group) and the scorecard that summarises them."""
    return (
        dg.AssetSelection.tag("jx/ingest", "feed") | dg.AssetSelection.tag("jx/staged", "feed")
    ) & dg.AssetSelection.groups(code) | dg.AssetSelection.assets(SCORECARD)


def _jobs() -> list:
    catalog = load_catalog()
    jobs = [
        dg.define_asset_job(
            f"ingest_{code}",
            selection=department_selection(code),
            partitions_def=DAILY,
            description=f"{catalog.department(code).name} ({catalog.department(code).name_en}): its "
            f"{len(feeds)} feeds loaded, staged and checked for a landing day, then the quality scorecard.",
            tags={"jx/department": code},
        )
        for code, feeds in by_department(catalog).items()
    ]
    jobs += [
        dg.define_asset_job(
            "link",
            selection=LINK,
            description="Geographic entities and door plates, every staged record linked to its entity, and the"
            " person / legal-person master indexes (rebuilt from all current staged data).",
        ),
        dg.define_asset_job(
            "publish",
            selection=PUBLISH,
            description="The marts of the spatial information platform and the data-service catalog (group mart).",
        ),
        dg.define_asset_job(
            "daily",
            selection=INGEST | LINK | PUBLISH,
            partitions_def=DAILY,
            description="Everything for one landing day, in order: every feed's raw load, staging and checks,"
            " the scorecard, then entities, links, identities and the marts.",
        ),
    ]
    return jobs


defs = dg.Definitions(jobs=_jobs())
