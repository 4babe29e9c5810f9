"""Places that imply a county or town without naming it (towns merged since, abolished counties), read from
``data/address/implied_places.csv`` — reference data with a source per entry, never rules in code.

Each row maps a name a writer still uses to the NBS 2022 code of the unit that holds the place today: a
9-digit town code or a 6-digit county code. A row without a source stops the load.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from jx_pipeline.lib import settings
from jx_pipeline.lib.errors import JxError

PATH = settings.DATA_DIR / "address" / "implied_places.csv"
COLUMNS = ("name", "code", "kind", "source")


@dataclass(frozen=True)
class Implied:
    name: str
    code: str
    kind: str
    source: str


def load(path: Path = PATH) -> list[Implied]:
    with path.open(encoding="utf-8", newline="") as fh:
        reader = csv.DictReader(fh)
        missing = [c for c in COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise JxError(f"implied places: {path.name} row 1: column(s) {missing} missing")
        out = []
        for n, row in enumerate(reader, start=2):
            for col in COLUMNS:
                if not (row.get(col) or "").strip():
                    raise JxError(f"implied places: {path.name} row {n}: column {col} is empty")
            if len(row["code"]) not in (6, 9) or not row["code"].isdigit():
                raise JxError(
                    f"implied places: {path.name} row {n}: column code {row['code']!r} is not 6 or 9 digits"
                )
            out.append(Implied(row["name"], row["code"], row["kind"], row["source"]))
    return out
