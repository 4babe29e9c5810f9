"""Reading the vendored NBS division files (or a user's own in the same layout) into uniform rows.

Each bad row stops the load with the file, row and column named: this is reference data every later link
depends on, so a silent fix-up would be worse than a stop.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from jx_pipeline.lib import settings
from jx_pipeline.lib.errors import JxError

CITY_CODE, CITY_NAME = "330400", "嘉兴市"


@dataclass(frozen=True)
class DivisionFile:
    name: str
    level: str
    code_digits: int
    parent_column: str


FILES = (
    DivisionFile("jiaxing_areas.csv", "county", 6, "city_code"),
    DivisionFile("jiaxing_towns.csv", "town", 9, "area_code"),
    DivisionFile("jiaxing_villages.csv", "village", 12, "town_code"),
)


def source_dir() -> Path:
    return Path(os.environ.get("JX_ADMIN_DIVISIONS_DIR", settings.DATA_DIR / "admin_divisions"))


def read_rows(folder: Path | None = None) -> Iterator[tuple[str, int, str, str, str, str]]:
    """Yield (source_file, row_number, level, code, name, parent_code); row 1 is the header."""
    folder = folder or source_dir()
    for spec in FILES:
        path = folder / spec.name
        if not path.exists():
            raise JxError(
                f"admin divisions: file {path} is missing", fix="restore it or unset JX_ADMIN_DIVISIONS_DIR"
            )
        with path.open(encoding="utf-8-sig", newline="") as fh:
            reader = csv.reader(fh)
            header = next(reader, [])
            wanted = ("code", "name", spec.parent_column)
            absent = [c for c in wanted if c not in header]
            if absent:
                raise JxError(
                    f"admin divisions: {path.name} row 1: column(s) {absent} missing from header {header}",
                    fix=f"give {path} the header columns {list(wanted)}",
                )
            idx = [header.index(c) for c in wanted]
            for rownum, row in enumerate(reader, start=2):
                if len(row) != len(header):
                    raise JxError(
                        f"admin divisions: {path.name} row {rownum}: {len(row)} fields, header has "
                        f"{len(header)}",
                        fix=f"correct row {rownum} of {path}",
                    )
                code, name, parent = (row[i].strip() for i in idx)
                if not (code.isdigit() and len(code) == spec.code_digits and code.startswith(CITY_CODE[:4])):
                    raise JxError(
                        f"admin divisions: {path.name} row {rownum} column code: {code!r} is not a "
                        f"{spec.code_digits}-digit Jiaxing (3304…) code",
                        fix=f"correct row {rownum} of {path}",
                    )
                if not name:
                    raise JxError(
                        f"admin divisions: {path.name} row {rownum} column name: empty",
                        fix=f"correct row {rownum} of {path}",
                    )
                yield spec.name, rownum, spec.level, code, name, parent
