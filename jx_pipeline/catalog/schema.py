"""The feed catalog's schema: what a data engineer may write in ``feeds.yaml``, checked before anything runs.

Pydantic models give one clear message per mistake (feed id and field named); ``catalog_json_schema()`` exports
the same rules as JSON Schema for editors and reviewers.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

# Canonical fields a source column can map to; staging (issue 4) types and validates each of them.
CANONICAL_FIELDS = (
    "record_key",
    "person_name",
    "id_number",
    "gender",
    "birth_date",
    "phone",
    "address",
    "org_name",
    "credit_code",
    "legal_rep_name",
    "legal_rep_id",
    "reg_date",
    "reg_capital",
    "industry",
    "event_date",
    "period",
    "amount",
    "lon",
    "lat",
    "entity_name",
    "entity_type",
    "village_name",
    "status",
    "remark",
    "updated_at",
    "deleted",
    "change_type",
)
ARCHETYPES = (
    "person_registry",
    "person_service",
    "org_registry",
    "org_economy",
    "org_permit",
    "place_event",
    "nature_record",
)
# Feed ids and department codes name tables, folders and asset keys: a safe pattern, short enough that
# "<feed>__YYYYMMDD_row" stays within PostgreSQL's 63-byte identifiers.
_ID = re.compile(r"^[a-z][a-z0-9_]{1,40}$")
# Source column names come from the departments' files (Chinese, spaces, quotes, SQL words...): any text is
# accepted and always quoted as an identifier, except what cannot be one or would clash with lineage columns.
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
PG_IDENTIFIER_BYTES = 63  # PostgreSQL cuts longer identifiers (NAMEDATALEN - 1)


def pg_column_name(source: str) -> str:
    """The raw column a source column becomes: lower case, cut at 63 bytes on a character boundary as
    PostgreSQL does (two names equal after that are the same column)."""
    return source.lower().encode()[:PG_IDENTIFIER_BYTES].decode("utf-8", "ignore")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Department(_Strict):
    code: str
    name: str = Field(description="Chinese name, e.g. 公安局")
    name_en: str
    max_concurrent_loads: int = Field(
        default=1,
        ge=1,
        description="raw loads of this department that may run at once (its source database's Dagster pool)",
    )

    @field_validator("code")
    @classmethod
    def _code(cls, v: str) -> str:
        if not _ID.match(v):
            raise ValueError(f"department code {v!r} must be lower-case ASCII (a-z, 0-9, _)")
        return v


class FileSource(_Strict):
    kind: Literal["file"]
    format: Literal["csv", "jsonl", "xlsx", "parquet"]
    encoding: Literal["utf-8", "utf-8-sig", "gbk", "gb18030"] = "utf-8"
    delimiter: str = ","


class DatabaseSource(_Strict):
    kind: Literal["database"]
    table: str
    watermark: str = Field(description="source column that increases on every insert/update")
    deleted_flag: str | None = Field(default=None, description="source column set to 1 for deleted rows")


class Coordinates(_Strict):
    x: str
    y: str
    crs: Literal["cgcs2000", "gcj02", "bd09"]


class Expectation(_Strict):
    """A hand-written Great Expectations 1.x expectation; column names are canonical fields."""

    type: str = Field(pattern=r"^expect_[a-z_]+$", description="e.g. expect_column_values_to_be_between")
    kwargs: dict[str, Any] = Field(default_factory=dict)


class Feed(_Strict):
    id: str
    department: str
    name: str
    name_en: str
    domain: Literal["population", "legal_person", "economy", "other"]
    archetype: str
    source: FileSource | DatabaseSource = Field(discriminator="kind")
    cadence: Literal["daily", "weekly", "monthly"] = "daily"
    records: int = Field(gt=0, description="records at scale 1.0 (the full city)")
    key: list[str]
    columns: dict[str, str] = Field(description="source column -> canonical field")
    date_format: str = "%Y-%m-%d"
    coordinates: Coordinates | None = None
    change_column: str | None = Field(default=None, description="file feeds: I/U/D operation of increments")
    schema_drift: Literal["fail", "accept_extra"] = "fail"
    expectations: list[Expectation] = Field(default_factory=list, description="added to the generated suite")
    completeness: dict[str, float] = Field(
        default_factory=dict, description="field -> share of rows that must keep a usable value (overrides)"
    )

    @field_validator("id")
    @classmethod
    def _id(cls, v: str) -> str:
        if not _ID.match(v):
            raise ValueError(
                f"feed id {v!r} must be 2-41 lower-case ASCII letters, digits or _, starting with a letter"
                " (it names tables, folders and asset keys)"
            )
        return v

    @field_validator("archetype")
    @classmethod
    def _archetype(cls, v: str) -> str:
        if v not in ARCHETYPES:
            raise ValueError(f"archetype {v!r} is not one of {list(ARCHETYPES)}")
        return v

    @field_validator("columns")
    @classmethod
    def _columns(cls, v: dict[str, str]) -> dict[str, str]:
        for src, canon in v.items():
            if not src.strip() or _CONTROL.search(src):
                raise ValueError(f"source column {src!r} is empty or holds control characters")
            if src.startswith("_"):
                raise ValueError(
                    f"source column {src!r}: names starting with _ are reserved for lineage columns"
                )
            if canon not in CANONICAL_FIELDS:
                raise ValueError(f"column {src!r} maps to unknown canonical field {canon!r}")
        same: dict[str, list[str]] = {}
        for src in v:
            same.setdefault(pg_column_name(src), []).append(src)
        clash = [names for names in same.values() if len(names) > 1]
        if clash:
            raise ValueError(
                f"source columns {clash[0]} would be one column in PostgreSQL (names are compared in lower case"
                f" and cut at {PG_IDENTIFIER_BYTES} bytes); shorten or rename them in the catalog"
            )
        targets = list(v.values())
        dup = sorted({t for t in targets if targets.count(t) > 1})
        if dup:
            raise ValueError(f"canonical field(s) {dup} are mapped from more than one source column")
        return v

    @model_validator(mode="after")
    def _consistent(self) -> Feed:
        missing = [k for k in self.key if k not in self.columns]
        if missing:
            raise ValueError(f"key column(s) {missing} are not in columns")
        if "record_key" not in self.columns.values():
            raise ValueError("one source column must map to record_key")
        if self.coordinates:
            for col in (self.coordinates.x, self.coordinates.y):
                if col not in self.columns:
                    raise ValueError(f"coordinate column {col!r} is not in columns")
        if isinstance(self.source, DatabaseSource) and self.source.watermark not in self.columns:
            raise ValueError(f"watermark column {self.source.watermark!r} is not in columns")
        if self.change_column and self.change_column not in self.columns:
            raise ValueError(f"change column {self.change_column!r} is not in columns")
        mapped = set(self.columns.values())
        for f, share in self.completeness.items():
            if f not in mapped or not 0 <= share <= 1:
                raise ValueError(f"completeness {f}: {share} must name a mapped field and lie in [0, 1]")
        for e in self.expectations:
            named = [e.kwargs[k] for k in ("column", "column_A", "column_B") if k in e.kwargs]
            if any(c not in mapped for c in named):
                raise ValueError(
                    f"expectation {e.type} names {named}; this feed's fields are {sorted(mapped)}"
                )
        return self

    def column_for(self, canonical: str) -> str | None:
        return next((src for src, canon in self.columns.items() if canon == canonical), None)


class Catalog(_Strict):
    version: int
    departments: list[Department]
    feeds: list[Feed]

    @model_validator(mode="after")
    def _refs(self) -> Catalog:
        codes = [d.code for d in self.departments]
        if len(set(codes)) != len(codes):
            raise ValueError("department codes must be unique")
        ids = [f.id for f in self.feeds]
        dup = sorted({i for i in ids if ids.count(i) > 1})
        if dup:
            raise ValueError(f"feed ids {dup} occur more than once")
        unknown = sorted({f.department for f in self.feeds} - set(codes))
        if unknown:
            raise ValueError(f"feeds name unknown departments {unknown}")
        return self

    def department(self, code: str) -> Department:
        return next(d for d in self.departments if d.code == code)

    def feed(self, feed_id: str) -> Feed:
        return next(f for f in self.feeds if f.id == feed_id)


def catalog_json_schema() -> dict:
    return Catalog.model_json_schema()
