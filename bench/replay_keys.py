"""Benchmark aid: two versions of the code replay the same day's increment on the same saved warehouse.

``bench/end_to_end.py --snapshot save`` keeps the databases after the initial load; ``--snapshot replay`` restores
them and runs the increment. A snapshot's memories carry the key of the code that made them (linking's, identity
resolution's, the marts' inputs'): another version of the SQL or of how records are read is another key, and the
other code would relink, resolve and refresh every record. When two versions differ only in how they work, not in
what they compute (e.g. where their working tables live, lib/work_schema.py), this writes the key of the code it
is run with (``PYTHONPATH``) into the snapshot, so that both replay the same delta and can be compared.

    JX_PSEUDONYM_SECRET=end-to-end-17 PYTHONPATH=$WORKTREE .venv/bin/python bench/replay_keys.py URL_OF_<db>_pre

Run it on the ``_pre`` warehouse before each version's replay (nothing may be connected to it). It changes no
row but the three keys, and prints them before and after.
"""

from __future__ import annotations

import argparse

import jx_pipeline
from jx_pipeline.catalog import load_catalog
from jx_pipeline.lib import identity, link_texts, linking, marts
from jx_pipeline.lib.pg import connect


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("warehouse", help="URL of the saved warehouse (<db>_pre)")
    url = p.parse_args().warehouse
    print("code from", jx_pipeline.__file__)
    with connect(url) as conn:
        keys = {
            "_link_input_key": linking._link_key(conn, link_texts.parser_key(conn)),
            "_ident_input_key": identity._key(),
            "_mart_input_key": marts._input_key(conn, load_catalog()),
        }
        for table, key in keys.items():
            old = conn.execute(f"select key from staged.{table}").fetchall()
            conn.execute(f"update staged.{table} set key = %s", (key,))
            print(f"staged.{table}: {old} -> {key}")
        conn.commit()


if __name__ == "__main__":
    main()
