"""`jx-pipeline serve`: an OGC API - Features server over the `mart` schema, connected as jx_platform_reader,
so that QGIS, GDAL's OAPIF driver and any OGC client read the published layers without a database account.

tipg (Development Seed) rather than pygeoapi: tipg discovers every PostGIS table of a schema by itself (a new
mart is served without configuration; pygeoapi needs a provider block per collection), it is FastAPI/Starlette
like dagster-webserver and installs with our pinned set unchanged (pygeoapi 0.24 needs Python 3.12).
"""

from __future__ import annotations

import json
import os

from jx_pipeline.lib.errors import JxError, mask_url

DEFAULT_PORT = 8081
HOST = "127.0.0.1"  # loopback only: a deployment puts its own reverse proxy (TLS, auth) in front
CATALOG_TTL_S = 60  # a mart added by a later refresh appears within a minute


def tipg_env(reader_url: str) -> dict[str, str]:
    """tipg's settings (read from the environment when tipg.main is imported)."""
    return {
        "DATABASE_URL": reader_url,
        "TIPG_NAME": "jx-pipeline marts (嘉兴 Jiaxing spatial platform)",
        "TIPG_DB_SCHEMAS": json.dumps(["mart"]),
        "TIPG_CATALOG_TTL": str(CATALOG_TTL_S),
        "TIPG_CACHECONTROL": f"public, max-age={CATALOG_TTL_S}",
    }


def check_reader(reader_url: str) -> list[str]:
    """The spatial marts the reader sees; a clear error when it cannot connect or sees none."""
    import psycopg

    try:
        with psycopg.connect(reader_url, connect_timeout=10) as conn:
            tables = [
                f"{s}.{t}"
                for s, t in conn.execute(
                    "select f_table_schema, f_table_name from geometry_columns"
                    " where f_table_schema = 'mart' order by 2"
                ).fetchall()
            ]
    except psycopg.OperationalError as exc:
        reason = (str(exc).strip().splitlines() or ["unknown error"])[-1]
        raise JxError(
            f"the OGC API server cannot connect as jx_platform_reader to {mask_url(reader_url)}: {mask_url(reason)}",
            fix="jx-pipeline db up   (creates the role and its grants)",
        ) from None
    if not tables:
        raise JxError(
            "jx_platform_reader sees no spatial table in schema mart: nothing to serve",
            fix="make demo   (builds the marts), then jx-pipeline serve",
        )
    return tables


def serve(reader_url: str, port: int = DEFAULT_PORT, log=print) -> None:
    """Run the server in this process until it is stopped (Ctrl-C, SIGTERM)."""
    tables = check_reader(reader_url)
    os.environ.update(tipg_env(reader_url))
    import uvicorn

    log(f"OGC API Features over {len(tables)} spatial marts ({', '.join(tables)}) as jx_platform_reader")
    log(f"serving on http://{HOST}:{port}/  (collections: /collections, QGIS: add a WFS / OGC API layer)")
    uvicorn.run("tipg.main:app", host=HOST, port=port, log_level="warning")
