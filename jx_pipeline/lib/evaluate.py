"""Comparing the warehouse with the world's ground truth (evaluation only: the pipeline never reads the truth).

Link precision and recall over the records whose truth has an entity — overall, per method, per feed and per
difficulty — and identity pairwise precision / recall / F1 for persons and for legal persons.
"""

from pathlib import Path

import pandas as pd
import psycopg


def _pairs(sizes) -> int:
    return int(sum(n * (n - 1) // 2 for n in sizes))


def pairwise(df: pd.DataFrame, predicted: str, true: str) -> dict:
    """Pairwise precision/recall/F1 of a clustering, from contingency counts (no pair enumeration)."""
    pred_key, true_key = df[predicted].astype(str), df[true].astype(str)
    both = _pairs((pred_key + "\x1f" + true_key).value_counts())
    pred, truth = _pairs(pred_key.value_counts()), _pairs(true_key.value_counts())
    p = both / pred if pred else 1.0
    r = both / truth if truth else 1.0
    return {
        "precision": round(p, 4),
        "recall": round(r, 4),
        "f1": round(2 * p * r / (p + r), 4) if p + r else 0.0,
    }


def _links(links: pd.DataFrame) -> dict:
    has = links[links.entity_id_true.notna()]
    linked = has[has.entity_id.notna()]
    correct = int((linked.entity_id == linked.entity_id_true).sum())
    return {
        "records": len(has),
        "linked": len(linked),
        "precision": round(correct / len(linked), 4) if len(linked) else None,
        "recall": round(correct / len(has), 4) if len(has) else None,
    }


def evaluate(conn: psycopg.Connection, truth_dir: Path) -> dict:
    truth = pd.read_parquet(truth_dir / "records.parquet")
    links = pd.DataFrame(
        conn.execute("select feed_id, record_key, entity_id, method from core.entity_link").fetchall(),
        columns=["feed_id", "record_key", "entity_id", "method"],
    )
    m = links.merge(
        truth[["feed_id", "record_key", "entity_id", "difficulty", "person_id", "org_id"]],
        on=["feed_id", "record_key"],
        suffixes=("", "_true"),
    )
    out = {
        "links": _links(m),
        "links_by_method": {k: _links(g) for k, g in m.groupby("method")},
        "links_by_difficulty": {k: _links(g) for k, g in m.groupby("difficulty")},
        "links_by_feed": {k: _links(g) for k, g in m.groupby("feed_id")},
        "unmatched_without_truth_entity": int((m.entity_id_true.isna() & m.entity_id.isna()).sum()),
        # records forced onto an entity although none can be determined (e.g. an address outside the city)
        "linked_without_truth_entity": int((m.entity_id_true.isna() & m.entity_id.notna()).sum()),
    }
    members = pd.DataFrame(
        conn.execute("select feed_id, record_key, kind, master_key from core.identity_member").fetchall(),
        columns=["feed_id", "record_key", "kind", "master_key"],
    ).merge(truth, on=["feed_id", "record_key"])
    for kind, col in (("person", "person_id"), ("legal_person", "org_id")):
        d = members[(members.kind == kind) & members[col].notna()]
        out[f"identity_{kind}"] = {"records": len(d), **pairwise(d, "master_key", col)} if len(d) else {}
    return out
