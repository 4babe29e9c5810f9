"""Where the warehouse and Dagster's storage live: the environment first, else the local cluster.

Every entry point (CLI, Dagster code location, tests) resolves connection URLs here, so a user who sets
``JX_WAREHOUSE_URL`` and ``JX_DAGSTER_STORAGE_URL`` points the whole project at an existing PostgreSQL.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

PROJECT_ROOT = Path(os.environ.get("JX_PROJECT_ROOT", Path(__file__).resolve().parents[2]))
SQL_DIR = Path(os.environ.get("JX_SQL_DIR", Path(__file__).resolve().parents[1] / "sql"))
STATE_DIR = Path(os.environ.get("JX_STATE_DIR", PROJECT_ROOT / ".jx"))
DATA_DIR = Path(__file__).resolve().parents[1] / "data"

WAREHOUSE_DB = "jx_warehouse"
DAGSTER_DB = "jx_dagster"
SOURCES_DB = "jx_sources"
DEFAULT_PORT = 55432


@dataclass(frozen=True)
class LocalCluster:
    """The PostgreSQL cluster the project keeps under ``.jx/pg`` when no external URL is given."""

    root: Path
    port: int
    host: str = "127.0.0.1"
    user: str = "jx"

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def log_file(self) -> Path:
        return self.root / "postgres.log"

    @property
    def password_file(self) -> Path:
        return self.root / "password"

    def password(self) -> str:
        return self.password_file.read_text().strip()

    def url(self, db: str) -> str:
        return f"postgresql://{self.user}:{self.password()}@{self.host}:{self.port}/{db}"


def local_cluster() -> LocalCluster:
    return LocalCluster(root=STATE_DIR / "pg", port=int(os.environ.get("JX_PG_PORT", DEFAULT_PORT)))


def external_urls() -> tuple[str, str] | None:
    """The (warehouse, dagster storage) URLs from the environment, or None when the local cluster is used."""
    from jx_pipeline.lib.errors import JxError

    wh, dg = os.environ.get("JX_WAREHOUSE_URL"), os.environ.get("JX_DAGSTER_STORAGE_URL")
    if not wh and not dg:
        return None
    if not (wh and dg):
        missing = "JX_DAGSTER_STORAGE_URL" if wh else "JX_WAREHOUSE_URL"
        raise JxError(
            f"{missing} is not set: an existing PostgreSQL needs both JX_WAREHOUSE_URL and JX_DAGSTER_STORAGE_URL",
            fix=f"export {missing}=postgresql://USER:PASSWORD@HOST:PORT/DB  (or unset both to use the local cluster)",
        )
    return wh, dg


def resolve_urls() -> tuple[str, str]:
    """(warehouse URL, Dagster storage URL) for whichever PostgreSQL this project uses."""
    ext = external_urls()
    if ext:
        return ext
    cluster = local_cluster()
    if not cluster.password_file.exists():
        from jx_pipeline.lib.errors import JxError

        raise JxError(f"the local cluster under {cluster.root} has not been created", fix="jx-pipeline db up")
    return cluster.url(WAREHOUSE_DB), cluster.url(DAGSTER_DB)


def dagster_env() -> dict[str, str]:
    """Environment for a Dagster process: URLs read by dagster.yaml and the resources, and DAGSTER_HOME."""
    wh, dg = resolve_urls()
    local = external_urls() is None
    return {
        "JX_WAREHOUSE_URL": wh,
        "JX_SOURCE_DB_URL": os.environ.get("JX_SOURCE_DB_URL")
        or (local_cluster().url(SOURCES_DB) if local else ""),
        "JX_DAGSTER_STORAGE_URL": dg,
        "DAGSTER_HOME": str(PROJECT_ROOT),
        "JX_DAGSTER_ARTIFACTS": str(STATE_DIR / "dagster"),
    }


def pseudonym_secret() -> bytes:
    """The key of pseudonymous master keys: JX_PSEUDONYM_SECRET, or one generated once into .jx (never in git)."""
    if os.environ.get("JX_PSEUDONYM_SECRET"):
        return os.environ["JX_PSEUDONYM_SECRET"].encode()
    path = STATE_DIR / "pseudonym.key"
    if not path.exists():
        import secrets

        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(32))
        path.chmod(0o600)
    return path.read_text().strip().encode()
