"""Records of one feed: subjects drawn from the world, written the way the department writes them.

A feed's records come from its own random stream, so every feed is independent of the others. The result is a
frame of canonical fields (source names are applied by the writer) per landing day, and the ground truth.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pyarrow as pa

from jx_pipeline.catalog.schema import DatabaseSource, Feed
from jx_pipeline.lib import coords
from jx_pipeline.world import elsewhere, geo, ids, render, vocab
from jx_pipeline.world.model import WorldModel
from jx_pipeline.world.places import TYPE_LABEL
from jx_pipeline.world.rng import stream

TRUTH_SCHEMA = pa.schema(
    [
        ("feed_id", pa.string()),
        ("record_key", pa.string()),
        ("person_id", pa.string()),
        ("org_id", pa.string()),
        ("entity_id", pa.string()),
        ("village_code", pa.string()),
        ("difficulty", pa.string()),
        ("first_day", pa.int16()),
        ("deleted_day", pa.int16()),
    ]
)
STATUSES = ("存续", "在业", "正常", "有效")
# which subjects a feed draws (by feed id); the rest draw from everyone of their kind
PERSON_FILTERS = {
    "gaj_ldrk": lambda m: m.p_migrant,
    "gaj_czfw": lambda m: m.p_migrant,
    "jyj_xjxx": lambda m: (m.p_age >= 6) & (m.p_age <= 18),
    "jyj_yey": lambda m: (m.p_age >= 3) & (m.p_age <= 6),
    "wjw_csyxzm": lambda m: m.p_age <= 3,
    "wjw_swyxzm": lambda m: m.p_age >= 70,
    "mzj_hydj": lambda m: (m.p_age >= 22) & (m.p_age <= 60),
    "tyjrswj_tyjr": lambda m: (m.p_age >= 22) & (m.p_age <= 70),
}
ORG_FILTERS = {
    "scjgj_qydj": ("91",),
    "scjgj_gtgsh": ("92",),
    "mzj_shzz": ("51", "52", "53"),
    "nyncj_jtjj": ("N2",),
    "nyncj_nyhzs": ("93",),
    "jyj_xxjbxx": ("12",),
}
NATURE_FILTERS = {
    "zrzyj_gdbh": ("farmland",),
    "nyncj_ntjs": ("farmland",),
    "zrzyj_ldbh": ("forest",),
    "slj_hzxh": ("river",),
    "slj_hdml": ("river",),
    "slj_sdbh": ("river", "pond", "lake"),
    "sthjj_szjc": ("river", "pond", "lake"),
    "zrzyj_dzzh": ("hill", "forest"),
}


@dataclass
class FeedOutput:
    days: dict[int, pd.DataFrame] = field(
        default_factory=dict
    )  # canonical fields + change_type per landing day
    truth: pd.DataFrame | None = None


def _subjects(rng, pool: np.ndarray, n: int, distinct: bool) -> np.ndarray:
    if len(pool) == 0:
        return np.zeros(0, dtype=int)
    if distinct and n <= len(pool):
        return np.sort(rng.choice(pool, size=n, replace=False))
    return rng.choice(pool, size=n, replace=True)


_POOLS: dict[tuple[int, str], np.ndarray] = {}


def _pool(feed: Feed, m: WorldModel) -> np.ndarray:
    key = (id(m), feed.id)
    if key not in _POOLS:
        _POOLS[key] = _pool_uncached(feed, m)
    return _POOLS[key]


def _pool_uncached(feed: Feed, m: WorldModel) -> np.ndarray:
    arch = feed.archetype
    if arch.startswith("person"):
        keep = PERSON_FILTERS.get(feed.id, lambda m: np.ones(len(m.p_id), bool))(m)
        return np.flatnonzero(keep)
    if arch.startswith("org"):
        kinds = ORG_FILTERS.get(feed.id)
        return np.flatnonzero(np.isin(m.o_kind, kinds)) if kinds else np.arange(len(m.o_id))
    if arch == "nature_record":
        types = NATURE_FILTERS.get(feed.id)
        pool = np.flatnonzero(np.isin(m.n_type, types)) if types else np.arange(len(m.n_id))
        return pool if len(pool) else np.arange(len(m.n_id))
    return np.arange(len(m.ap_id))


def _dates(rng, n: int, start: pd.Timestamp, back_days: int) -> np.ndarray:
    d = start - pd.to_timedelta(rng.integers(1, back_days, n), unit="D")
    return d.strftime("%Y%m%d").to_numpy(dtype=object)


def make_records(
    feed: Feed,
    m: WorldModel,
    noise: dict,
    seed: int,
    n: int,
    start: pd.Timestamp,
    day: int,
    key_offset: int,
    subjects: np.ndarray | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """n records (canonical fields) and their truth; ``subjects`` re-uses given subjects (near duplicates)."""
    rng = stream(seed, "feed", feed.id, "day", day, "offset", key_offset)
    arch, cols = feed.archetype, set(feed.columns.values())
    if subjects is None:
        subjects = _subjects(rng, _pool(feed, m), n, distinct=arch in ("person_registry", "org_registry"))
    n = len(subjects)
    a_rates, i_rates, r_rates = noise["address"], noise["identity"], noise["records"]
    anoise = render.AddressNoise(rng, n, a_rates)
    pick = rng.integers(0, 1 << 30, n)
    unknown = rng.random(n) < r_rates["unknown_entity"]
    out: dict[str, object] = {}
    person = org = None
    truth_person = np.full(n, None, dtype=object)
    truth_org = np.full(n, None, dtype=object)
    if arch.startswith("person"):
        person = subjects
        ap = m.p_ap[person]
        truth_person = m.p_id[person]
    elif arch.startswith("org"):
        org = subjects
        ap = m.o_ap[org]
        truth_org = m.o_id[org]
    else:
        ap = None if arch == "nature_record" else subjects
    outside = np.zeros(n, dtype=bool)
    if ap is not None:  # a zone can stand only for a town that has one
        anoise.restrict("zone_for_town", np.isin(m.ap_town_code[ap], list(elsewhere.zones_by_town())))
    if person is None:
        anoise.restrict("migrant_origin", np.zeros(n, dtype=bool))
    hard = anoise.hard_count() if "address" in cols else np.zeros(n, dtype=int)
    if ap is None:  # natural entities
        entity, village = m.n_id[subjects], m.n_village[subjects]
        lon, lat = m.n_lon[subjects], m.n_lat[subjects]
    else:  # door plates
        entity, village = m.ap_id[ap], m.ap_village[ap]
        lon, lat = m.ap_lon[ap], m.ap_lat[ap]

    prefix = f"{feed.id.split('_', 1)[1].upper()}{start:%Y%m%d}"
    keys = [f"{prefix}{key_offset + i:08d}" for i in range(n)]
    out["record_key"] = np.array(keys, dtype=object)

    def flag(rate_key: str, rates: dict, eligible=None) -> np.ndarray:
        f = rng.random(n) < rates[rate_key]
        return f if eligible is None else f & eligible

    if person is not None:
        idno = m.p_idno[person].copy()
        legacy = flag("id_legacy15", i_rates, m.p_issued[person] < ids.SECOND_GENERATION)  # first-generation
        bad = flag("id_malformed", i_rates)
        missing = flag("id_missing", i_rates) | unknown
        idno = np.array(
            [v[:6] + v[8:17] if lg else v for v, lg in zip(idno, legacy, strict=True)], dtype=object
        )
        idno = np.array(
            [render.mistype(v, int(p)) if b else v for v, b, p in zip(idno, bad, pick, strict=True)],
            dtype=object,
        )
        idno[missing] = None
        hard = hard + legacy + bad + missing
        if "id_number" in cols:
            out["id_number"] = idno
        out["person_name"] = m.p_name[person]
        out["gender"] = m.p_gender[person]
        out["birth_date"] = m.p_birth[person]
        phone = m.p_phone[person].copy()
        pbad = flag("phone_malformed", i_rates) & (phone != None)  # noqa: E711
        phone[pbad] = [v[:-1] for v in phone[pbad]]
        out["phone"] = phone
    if org is not None:
        code = m.o_code[org].copy()
        bad = flag("credit_malformed", i_rates)
        missing = flag("credit_missing", i_rates) | unknown
        code = np.array(
            [render.mistype(v, int(p)) if b else v for v, b, p in zip(code, bad, pick, strict=True)],
            dtype=object,
        )
        code[missing] = None
        hard = hard + bad + missing
        out["credit_code"] = code
        variant = flag("org_name_variant", i_rates)
        out["org_name"] = np.array(
            [
                render.org_name_variant(v, int(p)) if f else v
                for v, f, p in zip(m.o_name[org], variant, pick, strict=True)
            ],
            dtype=object,
        )
        rep = m.o_rep[org]
        out["legal_rep_name"] = m.p_name[rep]
        out["legal_rep_id"] = m.p_idno[rep]
        out["reg_date"] = m.o_reg[org]
        out["reg_capital"] = m.o_capital[org]
        out["industry"] = m.o_industry[org]
        out["phone"] = m.o_phone[org]
        out["status"] = np.array([STATUSES[p % len(STATUSES)] for p in pick], dtype=object)
    if "address" in cols and ap is not None:
        if person is not None:
            b, u, r = m.p_building[person], m.p_unit[person], m.p_room[person]
            home, names, phones = m.p_home[person], m.p_name[person], m.p_phone[person]
            anoise.restrict("migrant_origin", home != None)  # noqa: E711
            addr = [
                render.address(m, int(a), i, anoise, b[i], u[i], r[i], home[i], (names[i], phones[i]))
                for i, a in enumerate(ap)
            ]
        else:
            home = np.full(n, None, dtype=object)
            anoise.restrict("migrant_origin", np.zeros(n, dtype=bool))
            names = m.p_name[m.o_rep[org]] if org is not None else None
            phones = m.o_phone[org] if org is not None else None
            addr = [
                render.address(m, int(a), i, anoise, contact=None if org is None else (names[i], phones[i]))
                for i, a in enumerate(ap)
            ]
        addr = np.array(addr, dtype=object)
        # a seat or registered residence outside Jiaxing: subjects (persons, organisations) only, never a door plate
        outside = anoise.flags["outside_address"] & ~unknown & (person is not None or org is not None)
        addr[outside] = [
            elsewhere.outside_address(int(p), h) for p, h in zip(pick[outside], home[outside], strict=True)
        ]
        addr[unknown] = [render.JUNK_ADDRESSES[p % len(render.JUNK_ADDRESSES)] for p in pick[unknown]]
        out["address"] = addr
    if arch == "nature_record":
        out["entity_name"] = m.n_name[subjects]
        out["entity_type"] = np.array([TYPE_LABEL[t] for t in m.n_type[subjects]], dtype=object)
        vshort = m.n_village_short[subjects].copy()
        typo = flag("typo", a_rates)
        vshort[typo] = [
            next((s.replace(c, vocab.TYPOS[c], 1) for c in s if c in vocab.TYPOS), s) for s in vshort[typo]
        ]
        hard = hard + typo
        vshort[unknown] = None
        out["village_name"] = vshort
        out["amount"] = np.round(m.n_area[subjects] / 666.67, 2)  # 亩 (mu)
        if unknown.any():
            out["entity_name"] = out["entity_name"].copy()
            out["entity_name"][unknown] = None
    out["event_date"] = (
        _dates(rng, n, start, 1095)
        if day == 0
        else np.full(n, f"{start + pd.Timedelta(days=day):%Y%m%d}", dtype=object)
    )
    if person is not None:  # nobody is registered before they are born
        birth = out["birth_date"]
        out["event_date"] = np.where(out["event_date"] < birth, birth, out["event_date"])
    if "period" in cols:
        months = (
            pd.period_range(end=start.to_period("M") - 1, periods=24, freq="M").strftime("%Y%m").to_numpy()
        )
        out["period"] = months[rng.integers(0, 24, n)]
    if "amount" in cols and "amount" not in out:
        out["amount"] = np.round(rng.lognormal(6, 1.4, n), 2)
    if "remark" in cols:
        out["remark"] = np.array([vocab.COMPLAINTS[p % len(vocab.COMPLAINTS)] for p in pick], dtype=object)
    if feed.coordinates:
        jitter = r_rates["coord_jitter_m"]
        x, y = geo.to_m(lon, lat)
        x, y = x + rng.normal(0, jitter, n), y + rng.normal(0, jitter, n)
        clon, clat = coords.cgcs2000_to(feed.coordinates.crs, *geo.to_deg(x, y))
        gone = flag("coord_missing", r_rates) | unknown | outside
        hard = hard + gone
        out["lon"] = np.where(gone, None, np.round(clon, 6).astype(object))
        out["lat"] = np.where(gone, None, np.round(clat, 6).astype(object))
    date_variant = flag("date_variant", r_rates)
    frame = pd.DataFrame({c: out[c] for c in feed.columns.values() if c in out})
    frame["_date_variant"] = np.where(date_variant, pick % len(render.DATE_VARIANTS), -1)
    nowhere = unknown | outside  # no Jiaxing entity can be determined
    difficulty = np.where(
        nowhere, "undeterminable", np.where(hard == 0, "easy", np.where(hard == 1, "medium", "hard"))
    )
    truth = pd.DataFrame(
        {
            "feed_id": feed.id,
            "record_key": out["record_key"],
            "person_id": truth_person,
            "org_id": truth_org,
            "entity_id": np.where(nowhere, None, entity),
            "village_code": np.where(nowhere, None, village),
            "difficulty": difficulty,
            "first_day": day,
            "deleted_day": pd.array([None] * n, dtype="Int16"),
        }
    )
    frame["_subject"] = subjects
    return frame, truth


def feed_records(
    feed: Feed, m: WorldModel, noise: dict, seed: int, n: int, start: pd.Timestamp, days: int
) -> FeedOutput:
    """The snapshot (day 0) and daily increments (days 1..days) of one feed, with truth."""
    rng = stream(seed, "feed", feed.id, "dups")
    r_rates, inc = noise["records"], noise["increments"]
    frame, truth = make_records(feed, m, noise, seed, n, start, 0, 0)
    n = len(frame)
    # near duplicates: the same subject registered again under a new key, rendered afresh
    near = np.flatnonzero(rng.random(n) < r_rates["duplicate_near"])
    if len(near):
        f2, t2 = make_records(
            feed, m, noise, seed, len(near), start, 0, n, subjects=frame["_subject"].to_numpy()[near]
        )
        frame, truth = pd.concat([frame, f2], ignore_index=True), pd.concat([truth, t2], ignore_index=True)
    next_key = len(frame)
    # exact duplicates: the same row delivered twice (file feeds; a source table has a key)
    if not isinstance(feed.source, DatabaseSource):
        dup = np.flatnonzero(rng.random(len(frame)) < r_rates["duplicate_exact"])
        if len(dup):
            frame = pd.concat([frame, frame.iloc[dup]], ignore_index=True)
    frame["change_type"] = "I"
    output = FeedOutput(days={0: frame})
    alive = np.ones(len(truth), dtype=bool)
    current = frame.drop_duplicates("record_key").set_index("record_key", drop=False)
    for day in range(1, days + 1):
        drng = stream(seed, "feed", feed.id, "increment", day)
        k_new = int(drng.binomial(max(1, len(truth)), inc["new"]))
        parts, tnew = [], None
        if k_new:
            fnew, tnew = make_records(feed, m, noise, seed, k_new, start, day, next_key)
            next_key += len(fnew)
            fnew["change_type"] = "I"
            parts.append(fnew)
        live_keys = truth.record_key.to_numpy()[alive]
        k_chg = min(len(live_keys), int(drng.binomial(max(1, len(truth)), inc["changed"])))
        k_del = min(len(live_keys) - k_chg, int(drng.binomial(max(1, len(truth)), inc["deleted"])))
        chosen = (
            drng.choice(live_keys, size=k_chg + k_del, replace=False)
            if k_chg + k_del
            else np.array([], dtype=object)
        )
        if k_chg:
            chg = current.loc[chosen[:k_chg]].copy()
            for col in ("phone", "amount", "status", "remark"):
                if col in chg.columns:
                    base = chg[col].to_numpy(dtype=object)
                    if col == "phone":
                        chg[col] = [f"1{(d % 6) + 3}{d:09d}" for d in drng.integers(0, 10**9, len(chg))]
                    elif col == "amount":  # corrected by up to a fifth: the feed's own range holds
                        chg[col] = np.round(base.astype(float) * drng.uniform(0.8, 1.2, len(chg)), 2)
                    else:
                        chg[col] = base[::-1] if len(base) > 1 else base
                    break
            chg["change_type"] = "U"
            parts.append(chg.reset_index(drop=True))
        if k_del:
            dele = current.loc[chosen[k_chg:]].copy()
            dele["change_type"] = "D"
            parts.append(dele.reset_index(drop=True))
            alive[truth.record_key.isin(set(chosen[k_chg:])).to_numpy()] = False
            truth.loc[~alive & truth.deleted_day.isna(), "deleted_day"] = day
        if parts:
            today = pd.concat(parts, ignore_index=True)
            output.days[day] = today
            current = pd.concat([current, today.set_index("record_key", drop=False)])
            current = current[~current.index.duplicated(keep="last")]
        if tnew is not None:  # today's new records can change or go from tomorrow on
            truth = pd.concat([truth, tnew], ignore_index=True)
            alive = np.r_[alive, np.ones(len(tnew), dtype=bool)]
    output.truth = truth
    return output
