"""The warehouse's roles for people and systems other than the pipeline, so that nobody downstream connects as
the owner and reaches the resident IDs in ``raw`` / ``staged``.

- ``jx_platform_reader``: the platform, GIS clients, the OGC API server: ``SELECT`` on ``mart`` only.
- ``jx_engineer``: ``quality``, ``core`` and ``mart`` (counts, links, pseudonymous master indexes), not the PII
  layers.
- the owner (the warehouse URL's user) runs the pipeline and writes everything.

Roles are per server and grants per database, so ``jx-pipeline db up`` does both: it creates the roles once
(passwords from ``JX_READER_PASSWORD`` / ``JX_ENGINEER_PASSWORD``, else generated into the state dir, mode 600)
and grants in the warehouse it was pointed at (the demo's, a test session's, or an external server's). Default
privileges make every table the owner creates later in those schemas readable — including the marts that are
rebuilt aside and swapped in — without a grant by hand.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from urllib.parse import quote, urlsplit, urlunsplit

import psycopg
from psycopg import sql

from jx_pipeline.lib import settings
from jx_pipeline.lib.errors import JxError

# a session left idle inside a transaction keeps its lock on a mart and would hold up the swap of a refresh
IDLE_IN_TRANSACTION = "10min"
_LOCK_KEY = 0x4A58_524F  # "JXRO": one grant at a time per database (concurrent GRANTs collide)
# schemas nobody but the owner should be given by default (an administrator's GRANT ... TO PUBLIC is undone)
PRIVATE = ("raw", "staged", "quality", "core")


@dataclass(frozen=True)
class Role:
    name: str
    password_env: str
    schemas: tuple[str, ...]  # SELECT on every table, now and later
    functions: tuple[str, ...] = ()  # EXECUTE on these (PUBLIC may not run them), once a migration made them

    @property
    def password_file(self):
        return settings.STATE_DIR / "roles" / f"{self.name}.password"

    def password(self) -> str:
        return os.environ.get(self.password_env) or settings.generated_secret(self.password_file, 24)


READER = Role("jx_platform_reader", "JX_READER_PASSWORD", ("mart",))
ENGINEER = Role(
    "jx_engineer",
    "JX_ENGINEER_PASSWORD",
    ("quality", "core", "mart"),
    functions=("core.entity_provenance(text)",),  # lineage to raw/staged rows, without reading them (0015)
)
ROLES = (READER, ENGINEER)


def url(role: Role, owner_url: str | None = None) -> str:
    """The owner's warehouse URL (same server and database) with the role's name and password."""
    parts = urlsplit(owner_url or settings.resolve_urls()[0])
    host = parts.hostname or ""
    host = f"[{host}]" if ":" in host else host
    netloc = f"{role.name}:{quote(role.password(), safe='')}@{host}" + (
        f":{parts.port}" if parts.port else ""
    )
    return urlunsplit(parts._replace(netloc=netloc))


def _can_log_in(role: Role, owner_url: str) -> bool:
    try:
        psycopg.connect(url(role, owner_url), connect_timeout=10).close()
        return True
    except psycopg.OperationalError:
        return False


def _may_create_roles(conn: psycopg.Connection) -> bool:
    return conn.execute(
        "select rolsuper or rolcreaterole from pg_roles where rolname = current_user"
    ).fetchone()[0]


def _verifier(conn: psycopg.Connection, role: Role) -> str:
    """The SCRAM verifier of the role's password, made by libpq: the password itself never reaches the server
    (nor its statement log)."""
    return conn.pgconn.encrypt_password(
        role.password().encode(), role.name.encode(), b"scram-sha-256"
    ).decode()


def ensure_roles(conn: psycopg.Connection, owner_url: str, log=print) -> list[str]:
    """Create the missing roles, and set a role's password when one is chosen in the environment and differs;
    a generated one never replaces a password another deployment made. Returns what was done. Without the right to create roles (an external server), says what to ask an admin for."""
    done = []
    for role in ROLES:
        exists = conn.execute("select 1 from pg_roles where rolname = %s", (role.name,)).fetchone()
        if exists and _can_log_in(role, owner_url):
            continue
        if exists and not os.environ.get(role.password_env):
            # another deployment (state dir) made it: its readers keep their password unless one is chosen
            log(
                f"note: {role.name} exists on this server with a password this state dir does not know, so it was "
                f"left as it is: set {role.password_env} to its password (or to a new one, to change it) and run "
                "jx-pipeline db up again"
            )
            continue
        if not _may_create_roles(conn):
            log(
                f"note: {conn.info.user} may not create roles, so {role.name} was not "
                f"{'updated' if exists else 'created'}: ask an administrator to run "
                f"CREATE ROLE {role.name} LOGIN PASSWORD '...' (the password in {role.password_env}), "
                "then run jx-pipeline db up again"
            )
            continue
        verb = "alter" if exists else "create"
        stmt = sql.SQL(verb + " role {} with login nosuperuser nocreatedb nocreaterole password {}").format(
            sql.Identifier(role.name), sql.Literal(_verifier(conn, role))
        )
        try:
            with conn.transaction():
                conn.execute(stmt)
                conn.execute(
                    sql.SQL("alter role {} set idle_in_transaction_session_timeout = {}").format(
                        sql.Identifier(role.name), sql.Literal(IDLE_IN_TRANSACTION)
                    )
                )
        except (psycopg.errors.DuplicateObject, psycopg.errors.UniqueViolation):
            continue  # another `db up` created it at the same moment, with the same password source
        done.append(f"{'altered' if exists else 'created'} role {role.name}")
    return done


def grant(conn: psycopg.Connection) -> list[str]:
    """Grants and default privileges of every existing role in this database (idempotent)."""
    granted = []
    with conn.transaction():
        conn.execute("select pg_advisory_xact_lock(%s)", (_LOCK_KEY,))
        for schema in PRIVATE:
            conn.execute(sql.SQL("revoke all on schema {} from public").format(sql.Identifier(schema)))
        for role in ROLES:
            if not conn.execute("select 1 from pg_roles where rolname = %s", (role.name,)).fetchone():
                continue
            who = sql.Identifier(role.name)
            conn.execute(
                sql.SQL("grant connect, temporary on database {} to {}").format(
                    sql.Identifier(conn.info.dbname), who
                )
            )
            for schema in role.schemas:
                s = sql.Identifier(schema)
                conn.execute(sql.SQL("grant usage on schema {} to {}").format(s, who))
                conn.execute(sql.SQL("grant select on all tables in schema {} to {}").format(s, who))
                # tables the owner (this connection's user) creates later: new marts, marts swapped in
                conn.execute(
                    sql.SQL("alter default privileges in schema {} grant select on tables to {}").format(
                        s, who
                    )
                )
            for fn in role.functions:
                if conn.execute("select to_regprocedure(%s)", (fn,)).fetchone()[0]:
                    conn.execute(sql.SQL("grant execute on function {} to {}").format(sql.SQL(fn), who))
            granted.append(f"{role.name}: {', '.join(role.schemas)}")
    return granted


def check_fences(conn: psycopg.Connection) -> None:
    """Raise when a role was given more than its schemas (e.g. by hand): what it can read, schema by schema."""
    for role in ROLES:
        if not conn.execute("select 1 from pg_roles where rolname = %s", (role.name,)).fetchone():
            continue
        extra = [
            s
            for s in PRIVATE
            if s not in role.schemas
            and conn.execute("select has_schema_privilege(%s, %s, 'usage')", (role.name, s)).fetchone()[0]
        ]
        if extra:
            raise JxError(
                f"role {role.name} may enter schema(s) {', '.join(extra)}, which hold data it must not read",
                fix=f"REVOKE ALL ON SCHEMA {', '.join(extra)} FROM {role.name}; then jx-pipeline db up",
            )
