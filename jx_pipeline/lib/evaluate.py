"""Comparing the warehouse with the world's ground truth (evaluation only: the pipeline never reads the truth).

Link precision and recall over the records whose truth has an entity — overall, per method, per feed and per
difficulty — and identity pairwise precision / recall / F1 for persons and for legal persons.
"""

from pathlib import Path

import pandas as pd
import psycopg
from psycopg import sql


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


# --- the marts against the world's own counts --------------------------------------------------------------------

MART = "mart.admin_unit_profile"
MEASURES = {  # mart column -> (truth file, what a subject is)
    "residents": ("residents.parquet", "person_id"),
    "organisations": ("organisations.parquet", "org_id"),
}
GOAL = 0.02  # issue 11: mean absolute error per village at most 2 % of the village's true count
SMALL = 5  # counts of persons below this are suppressed in the marts (null, <column>_suppressed)


def _observable(truth_dir: Path, catalog) -> dict[str, set]:
    """Subjects the feeds let the pipeline see: with at least one current (not deleted) record whose truth is a
    Jiaxing entity — of a population feed for residents (the marts' definition), of any feed for organisations."""
    rec = pd.read_parquet(
        truth_dir / "records.parquet", columns=["feed_id", "person_id", "org_id", "entity_id", "deleted_day"]
    )
    rec = rec[rec.entity_id.notna() & rec.deleted_day.isna()]
    population = {f.id for f in catalog.feeds if f.domain == "population"} if catalog else set(rec.feed_id)
    return {
        "residents": set(rec.person_id[rec.feed_id.isin(population)].dropna()),
        "organisations": set(rec.org_id.dropna()),
    }


def _score(mart: pd.Series, suppressed: pd.Series, truth: pd.Series) -> dict:
    """Per-village comparison of one count: relative error over the villages the mart publishes a count for."""
    published = ~suppressed
    m, t = mart[published].astype(float), truth[published].astype(float)
    err = (m - t).abs()
    rel = err[t > 0] / t[t > 0]
    sup_t = truth[suppressed]
    # a suppressed count says "1 to SMALL-1": how far the truth lies outside that interval
    outside = (sup_t - (SMALL - 1)).clip(lower=0) + (1 - sup_t).clip(lower=0)
    return {
        "villages": len(truth),
        "published": int(published.sum()),
        "mae_relative": round(float(rel.mean()), 4) if len(rel) else None,
        "median_relative": round(float(rel.median()), 4) if len(rel) else None,
        "p90_relative": round(float(rel.quantile(0.9)), 4) if len(rel) else None,
        "max_relative": round(float(rel.max()), 4) if len(rel) else None,
        "within_goal": round(float((rel <= GOAL).mean()), 4) if len(rel) else None,
        "mae": round(float(err.mean()), 3) if len(err) else None,
        "weighted_relative": round(float(err.sum() / t.sum()), 4) if t.sum() else None,
        "published_true_zero": int((t == 0).sum()),  # no relative error: counted in mae only
        "mart_total": int(m.sum()),
        "truth_total": int(truth.sum()),
        "suppressed": int(suppressed.sum()),
        "suppressed_truth_small": int(((sup_t >= 1) & (sup_t < SMALL)).sum()),
        "suppressed_truth_not_small": int((~((sup_t >= 1) & (sup_t < SMALL))).sum()),
        "suppressed_mae_outside_interval": round(float(outside.mean()), 3) if len(sup_t) else None,
        "goal": GOAL,
        "goal_met": bool(len(rel) and float(rel.mean()) <= GOAL),
    }


def marts(conn: psycopg.Connection, truth_dir: Path, catalog=None, villages_csv: Path | None = None) -> dict:
    """Residents and organisations per village in mart.admin_unit_profile against the world's truth.

    Relative error per village = |mart - truth| / truth over the villages whose count is published and whose true
    count is above zero; ``mae_relative`` is its mean (the goal: <= 2 %). A suppressed count (null, 1-4 persons)
    is left out of the mean: it is scored apart, as the interval [1, 4] against the truth. ``observable``: the same
    against the subjects the feeds show at all (a resident without any current population record cannot be
    counted by any pipeline) — the gap between the two is the world's coverage, not the pipeline's error."""
    have = {
        c
        for (c,) in conn.execute(
            "select column_name from information_schema.columns"
            " where table_schema = 'mart' and table_name = 'admin_unit_profile'"
        ).fetchall()
    }
    measures = [c for c in MEASURES if c in have]
    cols = [
        sql.Identifier(f"{c}_suppressed") if f"{c}_suppressed" in have else sql.SQL("false") for c in measures
    ]
    rows = conn.execute(
        sql.SQL("select unit_code, {}, {} from {} where level = 'village'").format(
            sql.SQL(", ").join(map(sql.Identifier, measures)),
            sql.SQL(", ").join(cols),
            sql.Identifier(*MART.split(".")),
        )
    ).fetchall()
    mart = pd.DataFrame(rows, columns=["village_code", *measures, *[f"{c}_suppressed" for c in measures]])
    visible = _observable(truth_dir, catalog)
    out: dict = {"table": MART, "villages_in_mart": len(mart)}
    per_village = mart.set_index("village_code")
    for col in measures:
        file, subject = MEASURES[col]
        truth = pd.read_parquet(truth_dir / file, columns=[subject, "village_code"])
        every = truth.groupby("village_code").size()
        seen = truth[truth[subject].isin(visible[col])].groupby("village_code").size()
        idx = per_village.index.union(every.index)  # a village missing from the mart counts as 0 published
        frame = pd.DataFrame(
            {
                "mart": per_village[col].reindex(idx).astype("Float64").fillna(0),
                "suppressed": per_village[f"{col}_suppressed"].reindex(idx).fillna(False).astype(bool),
                "truth": every.reindex(idx).fillna(0).astype(int),
                "observable": seen.reindex(idx).fillna(0).astype(int),
            }
        )
        frame.loc[frame.suppressed, "mart"] = pd.NA
        out[col] = _score(frame.mart, frame.suppressed, frame.truth)
        out[col]["observable"] = _score(frame.mart, frame.suppressed, frame.observable)
        out[col]["missing_from_mart"] = int((~every.index.isin(per_village.index)).sum())
        per_village[f"{col}_truth"] = frame.truth
        per_village[f"{col}_observable"] = frame.observable
    if villages_csv:
        per_village.sort_index().to_csv(villages_csv)
    return out
