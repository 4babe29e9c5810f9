"""The roles downstream systems connect as, proven by connecting as each of them: jx_platform_reader reads every
table of `mart` (also ones the owner creates after `db up`, and a mart swapped in under its name) and is refused
raw, staged, quality and core; jx_engineer reads quality, core and mart and is refused raw and staged. The
warehouse is a scratch database set up by the real `jx-pipeline db up` (as for an external server); the local
cluster's passwords are checked on a throwaway cluster of this module's own."""

import os
import stat

import psycopg
import pytest
from psycopg import errors, sql

from jx_pipeline.lib import roles
from jx_pipeline.lib.pg import connect
from jx_pipeline_tests.conftest import LOCAL_MODE, free_port, run_cli

PRIVATE = ("raw", "staged", "quality", "core")


def _db_up(env: dict) -> str:
    done = run_cli("db", "up", env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout + done.stderr


def _url(env: dict, *flag: str) -> str:
    done = run_cli("db", "url", *flag, env=env)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


@pytest.fixture(scope="module")
def fenced(make_scratch_db_module):
    """A warehouse made by `db up`, then tables the pipeline creates later in every layer, one mart rebuilt
    aside and swapped in: {owner, reader, engineer} URLs."""
    env = {"JX_WAREHOUSE_URL": make_scratch_db_module()}
    _db_up(env)
    urls = {
        "owner": env["JX_WAREHOUSE_URL"],
        "reader": _url(env, "--reader"),
        "engineer": _url(env, "--engineer"),
    }
    with connect(urls["owner"]) as conn:
        for schema in (*PRIVATE, "mart"):
            conn.execute(f"create table {schema}.made_later (id int, label text)")
            conn.execute(f"insert into {schema}.made_later values (1, 'a'), (2, 'b'), (3, 'c')")
        conn.execute("create table mart.swapped (id int)")
        conn.execute("create table mart.swapped__next as select generate_series(1, 7) as id")
        conn.execute("drop table mart.swapped")
        conn.execute("alter table mart.swapped__next rename to swapped")
    return env, urls


def _tables(owner_url: str, schemas) -> dict[str, int]:
    """Every table of the schemas with its row count, as the owner sees it."""
    with connect(owner_url) as conn:
        names = conn.execute(
            "select schemaname, tablename from pg_tables where schemaname = any(%s) order by 1, 2",
            (list(schemas),),
        ).fetchall()
        return {
            f"{s}.{t}": conn.execute(
                sql.SQL("select count(*) from {}").format(sql.Identifier(s, t))
            ).fetchone()[0]
            for s, t in names
        }


def _reads(url: str, tables: dict[str, int]) -> dict[str, object]:
    """What the role gets from each table: its row count, or the name of the error class."""
    seen = {}
    with psycopg.connect(url, autocommit=True) as conn:
        for name in tables:
            schema, table = name.split(".")
            try:
                query = sql.SQL("select count(*) from {}").format(sql.Identifier(schema, table))
                seen[name] = conn.execute(query).fetchone()[0]
            except psycopg.Error as exc:
                seen[name] = type(exc).__name__
    return seen


def test_reader_reads_every_mart_table_and_no_other_layer(fenced):
    _env, urls = fenced
    with psycopg.connect(urls["reader"]) as conn:
        assert conn.execute("select current_user").fetchone()[0] == "jx_platform_reader"
    marts = _tables(urls["owner"], ["mart"])
    assert {"mart.made_later", "mart.swapped"} <= set(marts)
    assert _reads(urls["reader"], marts) == marts  # the same counts as the owner's, table by table
    assert marts["mart.swapped"] == 7
    private = _tables(urls["owner"], PRIVATE)
    assert {f"{s}.made_later" for s in PRIVATE} <= set(private)
    assert _reads(urls["reader"], private) == dict.fromkeys(private, "InsufficientPrivilege")


def test_reader_cannot_write_or_create(fenced):
    _env, urls = fenced
    with psycopg.connect(urls["reader"], autocommit=True) as conn:
        for statement in (
            "insert into mart.made_later values (9, 'x')",
            "delete from mart.made_later",
            "create table mart.mine (id int)",
            "create table public.mine (id int)",
            "select * from jx_meta.schema_migration",
        ):
            with pytest.raises(errors.InsufficientPrivilege):
                conn.execute(statement)


def test_engineer_reads_quality_core_and_mart_not_raw_or_staged(fenced):
    _env, urls = fenced
    readable = _tables(urls["owner"], ["quality", "core", "mart"])
    assert {f"{s}.made_later" for s in ("quality", "core", "mart")} <= set(readable)
    assert any(
        name.startswith("core.") and name != "core.made_later" for name in readable
    )  # migrations' tables
    assert _reads(urls["engineer"], readable) == readable
    pii = _tables(urls["owner"], ["raw", "staged"])
    assert _reads(urls["engineer"], pii) == dict.fromkeys(pii, "InsufficientPrivilege")
    with (
        psycopg.connect(urls["engineer"], autocommit=True) as conn,
        pytest.raises(errors.InsufficientPrivilege),
    ):
        conn.execute("update core.made_later set label = 'x'")


def test_db_up_refuses_a_role_let_into_a_pii_layer(fenced):
    env, urls = fenced
    with connect(urls["owner"], autocommit=True) as conn:
        conn.execute("grant usage on schema staged to jx_platform_reader")
        try:
            done = run_cli("db", "up", env=env)
            assert done.returncode == 2, done.stdout + done.stderr
            assert "jx_platform_reader may enter schema(s) staged" in done.stderr
            assert "REVOKE ALL ON SCHEMA staged FROM jx_platform_reader" in done.stderr
        finally:
            conn.execute("revoke all on schema staged from jx_platform_reader")
    _db_up(env)


@pytest.fixture(scope="module")
def own_cluster(tmp_path_factory):
    """`db up` of a new local cluster (in a state dir of its own): roles made with generated passwords."""
    state = tmp_path_factory.mktemp("roles_state")
    env = {**LOCAL_MODE, "JX_STATE_DIR": str(state), "JX_READER_PASSWORD": None, "JX_ENGINEER_PASSWORD": None}
    try:
        for _ in range(3):  # a free port can be taken by another process before the cluster listens on it
            env["JX_PG_PORT"] = str(free_port())
            done = run_cli("db", "up", env=env)
            if "is already taken by another process" not in done.stderr:
                break
        assert done.returncode == 0, done.stdout + done.stderr
        yield env, state, done.stdout + done.stderr
    finally:
        run_cli("db", "down", env=env)


def test_local_cluster_passwords_generated_mode_600_or_from_the_environment(own_cluster):
    env, state, first_up = own_cluster
    assert "created role jx_platform_reader" in first_up and "created role jx_engineer" in first_up
    for role in roles.ROLES:
        path = state / "roles" / f"{role.name}.password"
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        secret = path.read_text().strip()
        assert len(secret) >= 24 and secret not in first_up
        url = _url(env, "--reader" if role is roles.READER else "--engineer")
        assert f"{role.name}:{secret}@127.0.0.1:{env['JX_PG_PORT']}/" in url
        with psycopg.connect(url) as conn:
            assert conn.execute("select current_user").fetchone()[0] == role.name
    again = _db_up(env)  # nothing to create or change
    assert "created role" not in again and "altered role" not in again

    old = _url(env, "--reader")
    chosen = {**env, "JX_READER_PASSWORD": "pass word/with:odd@chars" + os.urandom(4).hex()}
    changed = _db_up(chosen)
    assert "altered role jx_platform_reader" in changed and chosen["JX_READER_PASSWORD"] not in changed
    with psycopg.connect(_url(chosen, "--reader")) as conn:
        assert conn.execute("select current_user").fetchone()[0] == "jx_platform_reader"
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        psycopg.connect(old).close()


def test_a_second_deployment_never_changes_the_readers_password(own_cluster, tmp_path):
    """`db up` from another state dir (another deployment on the same server, e.g. a wheel install) has no
    password of its own for the existing roles: it leaves them as they are and says how to set one."""
    env, state, _ = own_cluster
    known = (state / "roles" / "jx_platform_reader.password").read_text().strip()
    _db_up({**env, "JX_READER_PASSWORD": known})  # as generated (another test of the module changes it)
    reader = _url(env, "--reader")
    other = {
        "JX_WAREHOUSE_URL": _url(env),
        "JX_DAGSTER_STORAGE_URL": _url(env, "--dagster"),
        "JX_STATE_DIR": str(tmp_path),
        "JX_PG_PORT": env["JX_PG_PORT"],
        "JX_READER_PASSWORD": None,
        "JX_ENGINEER_PASSWORD": None,
    }
    out = _db_up(other)
    assert "jx_platform_reader exists on this server with a password this state dir does not know" in out
    assert "set JX_READER_PASSWORD" in out and "altered role" not in out
    with psycopg.connect(reader) as conn:  # the first deployment's readers still connect
        assert conn.execute("select current_user").fetchone()[0] == "jx_platform_reader"
