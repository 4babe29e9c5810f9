"""Versioned migrations on a scratch database of the real server: idempotent, upgrade in place, guarded."""

import shutil

import pytest

from jx_pipeline.lib import settings
from jx_pipeline.lib.errors import JxError
from jx_pipeline.lib.migrations import applied, discover, migrate
from jx_pipeline.lib.pg import connect


def test_fresh_warehouse_gets_every_layer_and_extension(scratch_db):
    with connect(scratch_db) as conn:
        ran = migrate(conn)
        assert ran == [m.version for m in discover()]
        schemas = {s for (s,) in conn.execute("select nspname from pg_namespace").fetchall()}
        assert {"raw", "staged", "quality", "core", "mart"} <= schemas
        exts = {e for (e,) in conn.execute("select extname from pg_extension").fetchall()}
        assert {"postgis", "pg_trgm", "pgcrypto"} <= exts
        assert migrate(conn) == []  # idempotent: a second run applies nothing


def test_later_migration_upgrades_existing_data_in_place(scratch_db):
    with connect(scratch_db) as conn:
        assert migrate(conn, target=2) == [1, 2]
        conn.execute(
            "insert into core.admin_unit (code, name, level, parent_code) values"
            " ('330400', '嘉兴市', 'city', null),"
            " ('330402007024', '百福弄社区居委会', 'village', '330400')"
        )
        conn.commit()
        cols = {
            c
            for (c,) in conn.execute(
                "select column_name from information_schema.columns"
                " where table_schema = 'core' and table_name = 'admin_unit'"
            )
        }
        assert "geom" not in cols

        assert migrate(conn) == [m.version for m in discover()][2:]  # 3 and every later one
        rows = conn.execute(
            "select code, name, short_name, geom from core.admin_unit order by code"
        ).fetchall()
        assert rows == [
            ("330400", "嘉兴市", "嘉兴市", None),
            ("330402007024", "百福弄社区居委会", "百福弄社区", None),
        ]
        assert sorted(applied(conn)) == [m.version for m in discover()]


def test_an_edited_applied_migration_is_refused(scratch_db, tmp_path):
    folder = tmp_path / "migrations"
    shutil.copytree(settings.SQL_DIR / "migrations", folder)
    with connect(scratch_db) as conn:
        migrate(conn, folder=folder)
        (folder / "0002_admin_division.sql").write_text("-- edited\n", encoding="utf-8")
        with pytest.raises(JxError, match=r"0002_admin_division\.sql was changed after it was applied"):
            migrate(conn, folder=folder)


def test_a_failing_migration_rolls_back_and_names_its_file(scratch_db, tmp_path):
    folder = tmp_path / "migrations"
    shutil.copytree(settings.SQL_DIR / "migrations", folder)
    (folder / "0099_broken.sql").write_text("create table core.ok (id int);\nselect * from no_such_table;\n")
    with connect(scratch_db) as conn:
        with pytest.raises(JxError, match=r"0099_broken.sql failed: .*no_such_table") as err:
            migrate(conn, folder=folder)
        assert "has not been applied" in err.value.fix
        conn.rollback()
        assert applied(conn) == {}  # the whole batch rolled back, nothing half-applied
        assert conn.execute("select to_regclass('core.ok')").fetchone()[0] is None


def test_a_warehouse_newer_than_the_checkout_is_refused(scratch_db, tmp_path):
    folder = tmp_path / "migrations"
    shutil.copytree(settings.SQL_DIR / "migrations", folder)
    (folder / "0099_future.sql").write_text("select 1;\n")
    with connect(scratch_db) as conn:
        migrate(conn, folder=folder)
        with pytest.raises(JxError, match=r"migrations \[99\] that this checkout does not know"):
            migrate(conn)
