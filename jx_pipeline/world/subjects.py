"""Where each resident lives and each organisation sits, as ground truth for scoring the marts.

The marts count residents and organisations per village; the world knows the true counts: every person lives in
a household at one door plate (门牌), every organisation is registered at one. Evaluation only — the pipeline
never reads the truth.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pyarrow as pa

from jx_pipeline.world import people, writers

RESIDENTS = "truth/residents.parquet"
ORGANISATIONS = "truth/organisations.parquet"
RESIDENTS_SCHEMA = pa.schema(
    [(c, pa.string()) for c in ("person_id", "household_id", "entity_id", "village_code")]
    + [("migrant", pa.bool_())]
)
ORGANISATIONS_SCHEMA = pa.schema([(c, pa.string()) for c in ("org_id", "kind", "entity_id", "village_code")])


def write(out: Path, pop: people.Population) -> list[str]:
    """truth/residents.parquet (person -> home door plate and village) and truth/organisations.parquet."""
    village = pop.address_points.set_index("entity_id").village_code
    per = pop.persons
    residents = pd.DataFrame(
        {
            "person_id": per.person_id,
            "household_id": per.household_id,
            "entity_id": per.address_point,
            "village_code": village.reindex(per.address_point).to_numpy(),
            "migrant": per.migrant.astype(bool),
        }
    )
    orgs = pop.orgs
    organisations = pd.DataFrame(
        {
            "org_id": orgs.org_id,
            "kind": orgs.kind,
            "entity_id": orgs.address_point,
            "village_code": village.reindex(orgs.address_point).to_numpy(),
        }
    )
    writers.write_parquet(residents, out / RESIDENTS, schema=RESIDENTS_SCHEMA)
    writers.write_parquet(organisations, out / ORGANISATIONS, schema=ORGANISATIONS_SCHEMA)
    return [RESIDENTS, ORGANISATIONS]
