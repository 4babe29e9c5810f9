"""Benchmark: our person resolution against Splink (Fellegi-Sunter on DuckDB) on the same staged records.

Both are scored pairwise (precision / recall / F1) against the world's truth. Splink gets the same evidence our
rules use — ID number (after 15->18), name (with term-frequency adjustment), birth date, phone and the linked
door plate — trained unsupervised as its README shows. Splink is not a dependency of the pipeline: run this with
a Python that has it (``uv venv /tmp/splink && uv pip install --python /tmp/splink/bin/python splink pandas
pyarrow "psycopg[binary]"``), after ``make demo``:

    /tmp/splink/bin/python bench/identity_splink.py --warehouse-url "$(.venv/bin/jx-pipeline db url)" \
        --truth .jx/world/truth
"""

import argparse
import json
import sys
import time
from pathlib import Path

import pandas as pd
import psycopg

sys.path.insert(
    0, str(Path(__file__).resolve().parents[1])
)  # the project, without installing its dependencies
from jx_pipeline.lib.evaluate import pairwise


def person_records(conn) -> pd.DataFrame:
    tables = [
        t
        for (t,) in conn.execute(
            "select c.relname from pg_class c join pg_namespace n on n.oid = c.relnamespace"
            " join pg_attribute a on a.attrelid = c.oid and a.attname = 'person_name'"
            " where n.nspname = 'staged' and c.relkind = 'p' order by 1"
        ).fetchall()
    ]
    frames = []
    for t in tables:
        cols = {
            r[0]
            for r in conn.execute(
                "select column_name from information_schema.columns where table_schema = 'staged' and table_name = %s",
                (t,),
            ).fetchall()
        }
        pick = ", ".join(
            c if c in cols else f"null::text as {c}" for c in ("id_number", "person_name", "phone")
        )
        birth = "birth_date::text" if "birth_date" in cols else "null::text"
        rows = conn.execute(
            f'select %s, record_key, {pick}, {birth} from (select distinct on (record_key) * from staged."{t}"'
            " order by record_key, _partition desc, _row_id desc) s",
            (t,),
        ).fetchall()
        frames.append(
            pd.DataFrame(
                rows, columns=["feed_id", "record_key", "id_number", "person_name", "phone", "birth_date"]
            )
        )
    df = pd.concat(frames, ignore_index=True)
    links = pd.DataFrame(
        conn.execute("select feed_id, record_key, entity_id from core.entity_link").fetchall(),
        columns=["feed_id", "record_key", "entity_id"],
    )
    ours = pd.DataFrame(
        conn.execute(
            "select feed_id, record_key, master_key from core.identity_member where kind = 'person'"
        ).fetchall(),
        columns=["feed_id", "record_key", "ours"],
    )
    return df.merge(links, on=["feed_id", "record_key"], how="left").merge(ours, on=["feed_id", "record_key"])


def splink_clusters(df: pd.DataFrame, threshold: float) -> pd.Series:
    import splink.comparison_library as cl
    from splink import DuckDBAPI, Linker, SettingsCreator, block_on

    db_api = DuckDBAPI()
    data = df[["id_number", "person_name", "phone", "birth_date", "entity_id"]].copy()
    data.insert(0, "unique_id", range(len(data)))
    sdf = db_api.register(data)
    settings = SettingsCreator(
        link_type="dedupe_only",
        comparisons=[
            cl.ExactMatch("id_number"),
            cl.ExactMatch("person_name").configure(term_frequency_adjustments=True),
            cl.ExactMatch("birth_date"),
            cl.ExactMatch("phone"),
            cl.ExactMatch("entity_id"),
        ],
        blocking_rules_to_generate_predictions=[block_on("id_number"), block_on("person_name")],
    )
    linker = Linker(sdf, settings)
    linker.training.estimate_probability_two_random_records_match([block_on("id_number")], recall=0.9)
    linker.training.estimate_u_using_random_sampling(max_pairs=2e6)
    linker.training.estimate_parameters_using_expectation_maximisation(block_on("person_name"))
    linker.training.estimate_parameters_using_expectation_maximisation(block_on("id_number"))
    pred = linker.inference.predict(threshold_match_probability=0.5)
    clusters = linker.clustering.cluster_pairwise_predictions_at_threshold(
        pred, threshold
    ).as_pandas_dataframe()
    return data[["unique_id"]].merge(clusters[["unique_id", "cluster_id"]], on="unique_id", how="left")[
        "cluster_id"
    ]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--warehouse-url", required=True)
    ap.add_argument("--truth", required=True)
    ap.add_argument("--threshold", type=float, default=0.95)
    args = ap.parse_args()
    with psycopg.connect(args.warehouse_url) as conn:
        df = person_records(conn)
    truth = pd.read_parquet(f"{args.truth}/records.parquet", columns=["feed_id", "record_key", "person_id"])
    df = df.merge(truth, on=["feed_id", "record_key"])
    df = df[df.person_id.notna()].reset_index(drop=True)
    t = time.perf_counter()
    df["splink"] = splink_clusters(df, args.threshold).to_numpy()
    splink_s = time.perf_counter() - t
    df["splink"] = df["splink"].fillna(pd.Series(range(len(df))).map(lambda i: f"single{i}"))
    result = {
        "records": len(df),
        "ours": pairwise(df, "ours", "person_id"),
        "splink": pairwise(df, "splink", "person_id"),
        "splink_s": round(splink_s, 1),
        "splink_threshold": args.threshold,
    }
    print(f"{len(df):,} person records: ours {result['ours']}; Splink {result['splink']} in {splink_s:.1f} s")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
