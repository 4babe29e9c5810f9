"""How a landing day's records arrive as files: one file, a split extract, a corrected re-send.

Departments do not always deliver a day in one file: a large extract comes in two or three parts, and a
department that finds an error sends the affected records again in a later file. The landing sensor and the
row identity exist for exactly these days, so the world must produce them. File names sort in delivery order
(the pipeline reads a day's files in name order and the later delivery wins):

    <feed>_<YYYYMMDD>.<ext>  <feed>_<YYYYMMDD>_part2.<ext>  <feed>_<YYYYMMDD>_part3.<ext>  <feed>_<YYYYMMDD>_resend1.<ext>

The day's generated records are the truth. A re-sent record carried an error in its first delivery (one field
holds another record's value: a mixed-up row) and the re-send carries the true value, so the truth is what
the last delivery says. Decisions come from the feed-day's own random stream: output stays deterministic
per seed and a feed-day's records never depend on these rates.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from jx_pipeline.world.rng import stream

# the field a mixed-up row gets wrong: the first of these the feed carries
ERROR_COLUMNS = ("address", "amount", "phone", "person_name", "org_name", "entity_name", "remark")
MAX_PARTS = 3


@dataclass(frozen=True)
class Delivery:
    suffix: str  # "" for the day's first file, "_part2", "_part3", "_resend1"
    frame: pd.DataFrame  # canonical rows of this file


@dataclass(frozen=True)
class Correction:
    record_key: str
    column: str  # canonical field
    delivered: object  # the wrong value of the first delivery
    corrected: object  # the true value, sent again


def plan(
    feed_id: str, day: int, frame: pd.DataFrame, seed: int, rates: dict
) -> tuple[list[Delivery], list[Correction]]:
    """The files one feed-day is delivered in, in name order, and the corrections the re-send makes."""
    rng = stream(seed, "feed", feed_id, "delivery", day)
    u_split, u_resend = rng.random(2)
    n_parts = int(rng.integers(2, MAX_PARTS + 1))
    first, corrections = frame, []
    if u_resend < rates["resend"]:
        first, corrections = _mix_up(rng, frame, rates["resend_records"])
    deliveries = []
    if u_split < rates["split"] and len(first) >= 2:
        n_parts = min(n_parts, len(first))
        cuts = np.sort(rng.choice(np.arange(1, len(first)), size=n_parts - 1, replace=False))
        bounds = [0, *cuts.tolist(), len(first)]
        for i in range(n_parts):
            part = first.iloc[bounds[i] : bounds[i + 1]]
            deliveries.append(Delivery("" if i == 0 else f"_part{i + 1}", part))
    else:
        deliveries.append(Delivery("", first))
    if corrections:
        keys = [c.record_key for c in corrections]
        resent = frame.drop_duplicates("record_key").set_index("record_key", drop=False).loc[keys]
        deliveries.append(Delivery("_resend1", resent.reset_index(drop=True)))
    return deliveries, corrections


def _mix_up(rng, frame: pd.DataFrame, share: float) -> tuple[pd.DataFrame, list[Correction]]:
    """The frame with one field of some records taken from another row; the corrections that undo it."""
    column = next((c for c in ERROR_COLUMNS if c in frame.columns), None)
    if column is None or len(frame) < 2:
        return frame, []
    keys = frame["record_key"].to_numpy(dtype=object)
    values = frame[column].to_numpy(dtype=object)
    ops = frame["change_type"].to_numpy(dtype=object) if "change_type" in frame else np.full(len(frame), "I")
    _, first_rows = np.unique(keys, return_index=True)
    eligible = np.sort(first_rows[ops[first_rows] != "D"])  # a deletion is not re-sent
    if len(eligible) == 0:
        return frame, []
    k = min(len(eligible), max(1, int(rng.binomial(len(eligible), share))))
    chosen = np.sort(rng.choice(eligible, size=k, replace=False))
    donors = (chosen + rng.integers(1, len(frame), k)) % len(frame)  # another row of the same day
    corrections = [
        Correction(keys[row], column, values[donor], values[row])
        for row, donor in zip(chosen, donors, strict=True)
        if not _same(values[row], values[donor])  # the other row holds the same value: nothing would be wrong
    ]
    wrong_value = {c.record_key: c.delivered for c in corrections}
    hit = frame["record_key"].isin(wrong_value.keys())
    wrong = frame.copy()
    wrong[column] = frame[column].where(~hit, frame["record_key"].map(wrong_value))
    return wrong, corrections


def _same(a: object, b: object) -> bool:
    return (pd.isna(a) and pd.isna(b)) if (pd.isna(a) or pd.isna(b)) else a == b
