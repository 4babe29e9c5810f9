"""Where the warehouse, Dagster's storage and the local state live: the environment first, else defaults.

Every entry point (CLI, Dagster code location, tests) resolves connection URLs and folders here, so a user who
sets ``JX_WAREHOUSE_URL`` and ``JX_DAGSTER_STORAGE_URL`` points the whole project at an existing PostgreSQL.
Nothing here needs a source checkout: a wheel install keeps its state in ``./.jx`` of the folder it runs in
(or ``JX_STATE_DIR``), and Dagster's instance file ships inside the package.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parents[1]


def _checkout_root() -> Path | None:
    """The source checkout the package runs from (an editable install), or None for a wheel install."""
    root = PACKAGE_DIR.parent
    return root if (root / "pyproject.toml").is_file() and (root / "jx_pipeline_tests").is_dir() else None


# the checkout (so make targets and the tests find .jx wherever they run), else the current folder
PROJECT_ROOT = Path(os.environ.get("JX_PROJECT_ROOT") or _checkout_root() or Path.cwd()).resolve()
SQL_DIR = Path(os.environ.get("JX_SQL_DIR", PACKAGE_DIR / "sql"))
STATE_DIR = Path(os.environ.get("JX_STATE_DIR") or PROJECT_ROOT / ".jx").resolve()
DATA_DIR = PACKAGE_DIR / "data"

# the local cluster's databases are <prefix>_warehouse, _dagster, _sources: the test suite uses its own prefix
DB_PREFIX = os.environ.get("JX_DB_PREFIX") or "jx"
WAREHOUSE_DB = f"{DB_PREFIX}_warehouse"
DAGSTER_DB = f"{DB_PREFIX}_dagster"
SOURCES_DB = f"{DB_PREFIX}_sources"
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
    if not re.fullmatch(r"[a-z][a-z0-9_]{0,40}", DB_PREFIX):
        from jx_pipeline.lib.errors import JxError

        raise JxError(
            f"JX_DB_PREFIX={DB_PREFIX!r} is not a plain database name prefix",
            fix="use lower-case letters, digits and _ (e.g. JX_DB_PREFIX=jx_mine), or unset it for jx",
        )
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


WORKSPACE = """load_from:
  - python_module:
      module_name: jx_pipeline.definitions
      location_name: jx_pipeline
"""


def _write_if_changed(path: Path, text: str) -> None:
    if path.exists() and path.read_text(encoding="utf-8") == text:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}")  # concurrent processes never see half a file
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def dagster_home() -> Path:
    """DAGSTER_HOME: JX_DAGSTER_HOME as the user keeps it (a dagster.yaml of theirs is left alone), else a
    folder under the state dir holding the dagster.yaml that ships in the package; both get workspace.yaml."""
    own = os.environ.get("JX_DAGSTER_HOME")
    home = Path(own or STATE_DIR / "dagster_home").resolve()
    shipped = (PACKAGE_DIR / "dagster.yaml").read_text(encoding="utf-8")
    if not (own and (home / "dagster.yaml").exists()):
        _write_if_changed(home / "dagster.yaml", shipped)
    _write_if_changed(home / "workspace.yaml", WORKSPACE)
    return home


def dagster_env() -> dict[str, str]:
    """Environment for a Dagster process: URLs read by dagster.yaml and the resources, DAGSTER_HOME, and the
    state dir (absolute, so that every step process finds the same one whatever its working folder)."""
    wh, dg = resolve_urls()
    local = external_urls() is None
    return {
        "JX_WAREHOUSE_URL": wh,
        "JX_SOURCE_DB_URL": os.environ.get("JX_SOURCE_DB_URL")
        or (local_cluster().url(SOURCES_DB) if local else ""),
        "JX_DAGSTER_STORAGE_URL": dg,
        "DAGSTER_HOME": str(dagster_home()),
        "JX_DAGSTER_ARTIFACTS": os.environ.get("JX_DAGSTER_ARTIFACTS") or str(STATE_DIR / "dagster"),
        "JX_STATE_DIR": str(STATE_DIR),
    }


PSEUDONYM_ENV = "JX_PSEUDONYM_SECRET"


def pseudonym_key_file() -> Path:
    return STATE_DIR / "pseudonym.key"


def pseudonym_secret() -> bytes:
    """The key of pseudonymous master keys. Every process and machine of one deployment must share it:
    JX_PSEUDONYM_SECRET; without it a key generated once into the state dir (never in git) serves one machine."""
    if os.environ.get(PSEUDONYM_ENV):
        return os.environ[PSEUDONYM_ENV].encode()
    return generated_secret(pseudonym_key_file()).encode()


def generated_secret(path: Path, nbytes: int = 32) -> str:
    """The secret kept in ``path`` (mode 600, in the state dir, never in git), generated on first use."""
    if not path.exists():
        import secrets

        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}")
        tmp.write_text(secrets.token_urlsafe(nbytes))
        tmp.chmod(0o600)
        try:  # the first process to link its secret wins; processes starting together all read that one
            os.link(tmp, path)
        except FileExistsError:
            pass
        finally:
            tmp.unlink()
    return path.read_text().strip()


def pseudonym_fingerprint() -> tuple[str, str | None]:
    """(where the secret comes from, a short fingerprint that machines can compare; never the secret)."""
    path = pseudonym_key_file()
    if os.environ.get(PSEUDONYM_ENV):
        where = PSEUDONYM_ENV
    elif path.exists():
        where = f"{path} (this machine only: set {PSEUDONYM_ENV} for several)"
    else:
        return f"not made yet ({PSEUDONYM_ENV}, else {path} at the first identity run)", None
    import hashlib
    import hmac

    return where, hmac.new(pseudonym_secret(), b"jx-pseudonym-fingerprint", hashlib.sha256).hexdigest()[:12]
