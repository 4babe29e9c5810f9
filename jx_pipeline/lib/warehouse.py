"""The PostGIS warehouse as a Dagster resource: connections, SQL files from ``sql/``, table metadata.

Writes go through this resource and SQL kept in ``sql/`` rather than an I/O manager, so every load is an
explicit, transactional statement that can be read and reviewed on its own.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import dagster as dg
import psycopg
from psycopg import sql

from jx_pipeline.lib import retry, settings, storage_pool
from jx_pipeline.lib.migrations import migrate
from jx_pipeline.lib.pg import STEP_WAIT_S, connect

_migrated: set[str] = set()


def sql_file(relpath: str) -> str:
    return (settings.SQL_DIR / relpath).read_text(encoding="utf-8")


def session_memory(conn: psycopg.Connection) -> None:
    """Memory for a rebuild's sorts and hashes (marts, links, identities) and for its few temporary tables (its
    working tables are in shared buffers, lib/work_schema.py); local buffers can only grow before a session
    first touches a temporary table: a connection that already did keeps its own."""
    conn.commit()
    for setting in ("work_mem = '128MB'", "temp_buffers = '256MB'"):
        try:
            with conn.transaction():
                conn.execute(f"set {setting}")
        except psycopg.errors.InvalidParameterValue:
            pass


def run_sql(conn: psycopg.Connection, relpath: str, params: dict | None = None) -> None:
    """Run a multi-statement file from ``sql/``; parameters are bound client-side (simple query protocol)."""
    psycopg.ClientCursor(conn).execute(sql_file(relpath), params)


class WarehouseResource(dg.ConfigurableResource):
    """Connection to the warehouse database; the schema is migrated on first use in each process."""

    url: str

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        if context.instance is not None:  # the run's events: one pooled connection, not one per event
            storage_pool.pool_connections(context.instance)

    @contextmanager
    def connect(self) -> Iterator[psycopg.Connection]:
        """A connection for one asset body; its errors are sorted for the step's retry policy: a dropped
        connection or a deadlock is retried, a data error fails the step at once (lib/retry.py)."""
        with (
            retry.data_errors_final(),
            connect(self.url, what="warehouse", wait=STEP_WAIT_S) as conn,
        ):
            if self.url not in _migrated:
                migrate(conn)
                _migrated.add(self.url)
            yield conn


def replace_rows(conn: psycopg.Connection, table: str, columns: list[str], rows) -> None:
    """Replace a table's rows with ``rows`` by COPY, inside the caller's transaction (atomic with it)."""
    name = sql.Identifier(*table.split("."))  # "schema.table" or a temporary table's bare name
    conn.execute(sql.SQL("delete from {}").format(name))
    cols = sql.SQL(", ").join(sql.Identifier(c) for c in columns)
    with conn.cursor().copy(sql.SQL("copy {} ({}) from stdin").format(name, cols)) as copy:
        for row in rows:
            copy.write_row(row)


def table_metadata(conn: psycopg.Connection, schema: str, table: str, rows: int | None = None) -> dict:
    """The standard Dagster table metadata: row count, qualified name and column schema with comments.
    ``rows``: the count, when the caller has just counted the table (a count of 9M rows is ~0.6 s)."""
    db = conn.execute("select current_database()").fetchone()[0]
    name = sql.Identifier(schema, table)
    if rows is None:
        rows = conn.execute(sql.SQL("select count(*) from {}").format(name)).fetchone()[0]
    cols = conn.execute(
        """select a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull,
                  col_description(a.attrelid, a.attnum)
             from pg_attribute a
            where a.attrelid = %s::regclass and a.attnum > 0 and not a.attisdropped
            order by a.attnum""",
        (f'"{schema}"."{table}"',),
    ).fetchall()
    schema_value = dg.TableSchema(
        columns=[
            dg.TableColumn(
                name, type_, description=desc, constraints=dg.TableColumnConstraints(nullable=not notnull)
            )
            for name, type_, notnull, desc in cols
        ]
    )
    return {
        "dagster/row_count": dg.MetadataValue.int(rows),
        "dagster/table_name": f"{db}.{schema}.{table}",
        "dagster/column_schema": schema_value,
    }
