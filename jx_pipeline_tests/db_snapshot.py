"""Per-table row counts and checksums of a database (and the files of a state folder), to prove that the test
suite leaves the demo alone.

The checksum of a table is the sum of a 64-bit hash of every row's text: one sequential scan, no sort, and it
changes when any row is changed, added, removed or repeated. A table that appears or disappears shows too.
"""

from __future__ import annotations

from pathlib import Path

from jx_pipeline.lib.pg import connect, quote_ident

Snapshot = dict[str, tuple[int, str]]


def database_exists(admin_url: str, name: str) -> bool:
    with connect(admin_url, autocommit=True) as conn:
        return conn.execute("select 1 from pg_database where datname = %s", (name,)).fetchone() is not None


def snapshot(url: str) -> Snapshot:
    """{schema.table: (rows, checksum)} of every ordinary table of the database at ``url``."""
    out = {}
    with connect(url, autocommit=True) as conn:
        tables = conn.execute(
            """select n.nspname, c.relname from pg_class c join pg_namespace n on n.oid = c.relnamespace
                where c.relkind in ('r', 'p') and not c.relispartition
                  and n.nspname not in ('pg_catalog', 'information_schema') and n.nspname not like 'pg_toast%'
                order by 1, 2"""
        ).fetchall()
        for schema, table in tables:
            name = f"{quote_ident(schema)}.{quote_ident(table)}"
            rows, checksum = conn.execute(
                f"select count(*), coalesce(sum(hashtextextended(t::text, 0)::numeric), 0)::text from {name} t"
            ).fetchone()
            out[f"{schema}.{table}"] = (rows, checksum)
    return out


def files(root: Path, parts: tuple[str, ...]) -> Snapshot:
    """{path: (size, mtime in ns)} of every file under ``root``/part (a folder or a single file)."""
    found = [p for part in parts for p in [root / part, *(root / part).rglob("*")] if p.is_file()]
    return {str(p.relative_to(root)): (p.stat().st_size, str(p.stat().st_mtime_ns)) for p in found}


def differences(before: Snapshot, after: Snapshot) -> list[str]:
    """One line per table (or file) whose rows changed, or that was created or dropped."""
    lines = []
    for table in sorted(before.keys() | after.keys()):
        was, now = before.get(table), after.get(table)
        if was == now:
            continue
        if was is None:
            lines.append(f"{table}: created ({now[0]} rows)")
        elif now is None:
            lines.append(f"{table}: dropped (had {was[0]} rows)")
        else:
            lines.append(f"{table}: {was[0]} -> {now[0]} rows, checksum {was[1]} -> {now[1]}")
    return lines
