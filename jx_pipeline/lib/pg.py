"""Connections to PostgreSQL with errors a user can act on (URL shown with the password masked)."""

from __future__ import annotations

import re

import psycopg

from jx_pipeline.lib.errors import JxError, mask_url

_DRIVER = re.compile(r"^postgres(ql)?\+[a-z0-9_]+://", re.I)


def libpq_url(url: str) -> str:
    """SQLAlchemy-style URLs (``postgresql+psycopg2://``) as libpq accepts them."""
    return _DRIVER.sub("postgresql://", url)


def connect(url: str, *, autocommit: bool = False, what: str = "database") -> psycopg.Connection:
    try:
        return psycopg.connect(libpq_url(url), autocommit=autocommit, connect_timeout=10)
    except psycopg.OperationalError as exc:
        reason = (str(exc).strip().splitlines() or ["unknown error"])[-1]
        raise JxError(
            f"cannot connect to the {what} at {mask_url(url)}: {mask_url(reason)}",
            fix="jx-pipeline db up   (starts the local cluster; or check JX_WAREHOUSE_URL / JX_DAGSTER_STORAGE_URL)",
        ) from None


def quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'
