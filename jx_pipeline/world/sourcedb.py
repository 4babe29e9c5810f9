"""Department source databases: the generated tables loaded into PostgreSQL (schema per department).

In production these are the departments' own databases reached by any SQLAlchemy URL; here they live in a
``jx_sources`` database on the local cluster so that incremental pulls by watermark can be exercised for real.
"""

from __future__ import annotations

import os
from pathlib import Path

import pyarrow.parquet as pq

from jx_pipeline.catalog import Catalog
from jx_pipeline.catalog.schema import DatabaseSource
from jx_pipeline.lib import settings
from jx_pipeline.lib.errors import JxError
from jx_pipeline.lib.pg import connect, quote_ident


def source_db_url(explicit: str | None = None) -> str:
    url = explicit or os.environ.get("JX_SOURCE_DB_URL")
    if url:
        return url
    if settings.external_urls():
        raise JxError(
            "no source database: JX_WAREHOUSE_URL is set but JX_SOURCE_DB_URL is not",
            fix="export JX_SOURCE_DB_URL=postgresql://USER:PASSWORD@HOST:PORT/jx_sources  (or --source-db none)",
        )
    cluster = settings.local_cluster()
    if not cluster.password_file.exists():
        raise JxError("no source database: the local cluster has not been created", fix="jx-pipeline db up")
    return cluster.url(settings.SOURCES_DB)


def load(world: Path, url: str, catalog: Catalog) -> dict[str, int]:
    """(Re)create every database feed's table from ``world/sources``; returns rows per schema.table."""
    counts = {}
    with connect(url, what="source database") as conn:
        for feed in catalog.feeds:
            if not isinstance(feed.source, DatabaseSource):
                continue
            path = world / "sources" / feed.department / f"{feed.source.table}.parquet"
            if not path.exists():
                raise JxError(
                    f"world {world}: {path.relative_to(world)} is missing for feed {feed.id}",
                    fix=f"jx-pipeline world generate --out {world} ...",
                )
            table = pq.read_table(path)
            schema, name = quote_ident(feed.department), quote_ident(feed.source.table)
            cols = ", ".join(
                f"{quote_ident(c)} {'timestamp' if c == feed.source.watermark else 'text'}"
                for c in table.column_names
            )
            with conn.transaction():
                conn.execute(f"create schema if not exists {schema}")
                conn.execute(f"drop table if exists {schema}.{name}")
                conn.execute(f"create table {schema}.{name} ({cols})")
                with conn.cursor().copy(f"copy {schema}.{name} from stdin") as copy:
                    for row in zip(*(table.column(c).to_pylist() for c in table.column_names), strict=True):
                        copy.write_row(row)
                conn.execute(f"create index on {schema}.{name} ({quote_ident(feed.source.watermark)})")
            counts[f"{feed.department}.{feed.source.table}"] = table.num_rows
    return counts
