"""PIPL guard of the published layer: no person's name, ID number or mobile phone in any mart, and no small count.

The marts are built to carry persons only as counts; these scans prove it on what was actually published, as
blocking checks of the mart assets. Every text value is read — text and text[] columns, the keys and string
values of jsonb — and matched against the shape of a resident ID (18 digits with a valid birth date, or the old
15-digit form), a mainland mobile number, and the exact names of the person master index (public place names
that happen to equal a person's name are not names of persons).
"""

from __future__ import annotations

from dataclasses import dataclass

import psycopg
from psycopg import sql

_D = "(^|[^0-9])"  # not inside a longer number
_E = "($|[^0-9])"
_DAY = "(0[1-9]|1[0-2])(0[1-9]|[12][0-9]|3[01])"
PATTERNS = {
    "id_number": f"{_D}[1-9][0-9]{{5}}(18|19|20)[0-9]{{2}}{_DAY}[0-9]{{3}}[0-9Xx]{_E}",
    "id_number_15": f"{_D}[1-9][0-9]{{7}}{_DAY}[0-9]{{3}}{_E}",
    "mobile_phone": f"{_D}1[3-9][0-9]{{9}}{_E}",
}
# columns that count persons: published as null (with <col>_suppressed) below the threshold
PERSON_COUNTS = {
    "geo_entity_profile": ("residents", "households", "records_population"),
    "admin_unit_profile": ("residents", "households"),
}


@dataclass(frozen=True)
class Finding:
    table: str
    column: str
    kind: str
    rows: int

    def __str__(self) -> str:
        return f"mart.{self.table}.{self.column}: {self.rows} value(s) shaped like a {self.kind}"


def _text_columns(conn: psycopg.Connection, schema: str, table: str) -> list[tuple[str, str]]:
    return conn.execute(
        """select a.attname, t.typname
             from pg_attribute a join pg_type t on t.oid = a.atttypid
            where a.attrelid = %s::regclass and a.attnum > 0 and not a.attisdropped
              and t.typname in ('text', 'varchar', 'bpchar', '_text', '_varchar', 'jsonb', 'json')
            order by a.attnum""",
        (f'"{schema}"."{table}"',),
    ).fetchall()


def _values(schema: str, table: str, column: str, typ: str) -> sql.Composed:
    """A query of every text value in the column (array elements, jsonb keys and string values)."""
    t, c = sql.Identifier(schema, table), sql.Identifier(column)
    if typ in ("_text", "_varchar"):
        return sql.SQL("select unnest({c})::text as v from {t}").format(c=c, t=t)
    if typ in ("jsonb", "json"):
        return sql.SQL(
            "select k.key as v from {t}, jsonb_each({c}::jsonb) k where jsonb_typeof({c}::jsonb) = 'object'"
            " union all select k.value #>> '{{}}' from {t}, jsonb_each({c}::jsonb) k"
            "  where jsonb_typeof({c}::jsonb) = 'object' and jsonb_typeof(k.value) = 'string'"
            " union all select {c} #>> '{{}}' from {t} where jsonb_typeof({c}::jsonb) = 'string'"
        ).format(c=c, t=t)
    return sql.SQL("select {c}::text as v from {t}").format(c=c, t=t)


def scan(conn: psycopg.Connection, tables: list[str] | None = None, schema: str = "mart") -> list[Finding]:
    """Every text value of the given marts (default: every table of the schema) matching a personal pattern."""
    if tables is None:
        tables = [
            n
            for (n,) in conn.execute(
                "select c.relname from pg_class c join pg_namespace n on n.oid = c.relnamespace"
                " where n.nspname = %s and c.relkind in ('r', 'p', 'v', 'm') order by 1",
                (schema,),
            ).fetchall()
        ]
    with conn.transaction():  # privacy_names lives for the scan (a connection in autocommit too)
        return _scan(conn, tables, schema)


def _scan(conn: psycopg.Connection, tables: list[str], schema: str) -> list[Finding]:
    names = conn.execute("select to_regclass('core.person')").fetchone()[0] is not None
    if names:
        # persons' names that are not also a place's or an entity's, gathered once for every column's query
        # (each column's query hashed every name of core.person again: 47 columns, ~1 s at scale 0.01)
        conn.execute("drop table if exists pg_temp.privacy_names")
        conn.execute(
            "create temp table privacy_names on commit drop as"
            " select name from core.person where length(name) >= 2"
            " except select name from core.admin_unit where name is not null"
            " except select short_name from core.admin_unit where short_name is not null"
            " except select name from core.geo_entity where name is not null"
        )
    found = []
    for table in tables:
        for column, typ in _text_columns(conn, schema, table):
            values = _values(schema, table, column, typ)
            # every pattern needs 11 characters or more: shorter values skip the regular expressions
            tests = [
                (k, sql.SQL("length(v) >= 11 and v ~ {}").format(sql.Literal(p))) for k, p in PATTERNS.items()
            ]
            if names:
                tests.append(("person_name", sql.SQL("v in (select name from privacy_names)")))
            counts = sql.SQL(", ").join(
                sql.SQL("count(*) filter (where {})").format(cond) for _, cond in tests
            )
            row = conn.execute(sql.SQL("select {} from ({}) x").format(counts, values)).fetchone()
            found += [Finding(table, column, kind, n) for (kind, _), n in zip(tests, row, strict=True) if n]
    return found


def small_counts(conn: psycopg.Connection, table: str, below: int, schema: str = "mart") -> dict[str, int]:
    """Per person-count column: rows that publish a count of 1..below-1, or whose flag disagrees with the null."""
    out = {}
    for col in PERSON_COUNTS.get(table, ()):
        c, flag = sql.Identifier(col), sql.Identifier(f"{col}_suppressed")
        q = sql.SQL(
            "select count(*) filter (where {c} between 1 and {b} - 1 or ({c} is null) <> {flag}) from {t}"
        ).format(c=c, flag=flag, b=sql.Literal(below), t=sql.Identifier(schema, table))
        out[col] = conn.execute(q).fetchone()[0]
    return out
