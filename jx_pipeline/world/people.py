"""Households, residents and organisations at door-plate addresses (门牌) of the synthetic city.

Scale 1.0 is the whole city: ~2.2M households, ~5.5M residents, ~0.6M legal persons (enterprises,
individual businesses, social organisations). Counts grow linearly with the scale.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
import shapely

from jx_pipeline.world import geo, ids, places, vocab
from jx_pipeline.world.rng import stream

HOUSEHOLDS_AT_1 = 2_200_000
ORGS_AT_1 = 600_000
NATURAL_AT_1 = 440_000
ROADS_PER_TOWN_AT_1 = 125  # ~9,000 named roads in the whole city
HOUSEHOLDS_PER_COMPLEX = 120
HOUSEHOLDS_PER_BUILDING = 24
ORG_KINDS = {  # credit-code prefix: share
    "91": 0.35,
    "92": 0.60,
    "93": 0.012,
    "51": 0.006,
    "52": 0.006,
    "53": 0.001,
    "12": 0.010,
    "N2": 0.015,
}


@dataclass
class Population:
    address_points: pd.DataFrame  # entity_id, village_code, kind, road, number, group_no, complex, x, y
    buildings: pd.DataFrame  # entity_id, parent_id, village_code, building_no, geom
    roads: pd.DataFrame  # entity_id, name, county_code, town_code, geom
    households: pd.DataFrame  # household_id, address_point, building_no, unit_no, room, migrant
    persons: pd.DataFrame  # person_id, name, gender, birth_date, id_number, phone, household_id, address_point, id_issued, home_county
    orgs: (
        pd.DataFrame
    )  # org_id, kind, name, credit_code, legal_rep, reg_date, capital, industry, phone, address_point


def _is_community(name: str) -> bool:
    return "社区" in name or "居委会" in name or "居民委员会" in name


def _road_names(rng: np.random.Generator, county: str, n: int, taken: set[str]) -> list[str]:
    """n road names new to the county; two-stem names (e.g. 禾兴中山路) once single stems run short."""
    names, tries = [], 0
    while len(names) < n:
        tries += 1
        stem = str(rng.choice(vocab.ROAD_STEMS))
        if tries > 50:
            stem += str(rng.choice(vocab.ROAD_STEMS))
        name = f"{stem}{rng.choice(vocab.ROAD_SUFFIXES)}"
        if (county, name) not in taken:
            taken.add((county, name))
            names.append(name)
            tries = 0
    return names


def build(seed: int, scale: float, admin: places.AdminUnits):
    """Returns (Population, natural entities DataFrame, grid cells DataFrame)."""
    rng = stream(seed, "people")
    units = admin.table
    villages = units[units.level == "village"].reset_index(drop=True)
    community = villages.name.map(_is_community).to_numpy()
    weight = np.where(community, 3.0, 1.0)
    n_house = max(1, round(HOUSEHOLDS_AT_1 * scale))
    per_village = rng.multinomial(n_house, weight / weight.sum())
    n_orgs = max(1, round(ORGS_AT_1 * scale))
    org_village = rng.choice(
        len(villages), size=n_orgs, p=np.where(community, 4.0, 1.0) / np.where(community, 4.0, 1.0).sum()
    )
    org_own_plate = rng.random(n_orgs) < 0.7
    shop_plates = np.bincount(org_village[org_own_plate], minlength=len(villages))

    rural_plates = np.where(community, 0, np.ceil(per_village / 1.3)).astype(int)
    complexes = np.where(
        community & (per_village > 0), np.ceil(per_village / HOUSEHOLDS_PER_COMPLEX), 0
    ).astype(int)
    need_cells = np.ceil(rural_plates / 16) + complexes + np.ceil(shop_plates / 16)
    gx, gy, gvil = geo.grid_cells(admin.geometry)
    cells = places.settlement_cells(
        seed, admin, gx, gy, gvil, dict(zip(villages.code, need_cells.astype(int), strict=True))
    )
    natural = places.natural_entities(seed, admin, cells, max(1, round(NATURAL_AT_1 * scale)))

    # --- roads per town (named streets carry the addresses of communities and shops) ---
    town_of = dict(zip(villages.code, villages.parent_code, strict=True))
    county_of_town = dict(zip(units.code, units.parent_code, strict=True))
    road_rows, town_roads, taken = [], {}, set()
    for town in sorted(set(villages.parent_code)):
        trng = stream(seed, "roads", town)
        county = county_of_town[town]
        names = _road_names(
            trng, county, max(3, round(ROADS_PER_TOWN_AT_1 * scale)) + int(trng.integers(0, 4)), taken
        )
        sx, sy = admin.geometry.seats[town]
        for name in names:
            ang, length = trng.uniform(0, np.pi), trng.uniform(800, 3000)
            dx, dy = np.cos(ang) * length / 2, np.sin(ang) * length / 2
            off = trng.normal(0, 400, 2)
            road_rows.append(
                (
                    name,
                    county,
                    town,
                    shapely.LineString(
                        [(sx + off[0] - dx, sy + off[1] - dy), (sx + off[0] + dx, sy + off[1] + dy)]
                    ),
                )
            )
        town_roads[town] = names
    roads = pd.DataFrame(road_rows, columns=["name", "county_code", "town_code", "geom"])
    roads.insert(0, "entity_id", [f"R{i:06d}" for i in range(len(roads))])

    # --- address points in settlement cells ---
    ap_rows, bld_rows = [], []
    settle = cells[cells.settlement]
    cell_groups = settle.groupby("village_code").indices
    sx_all, sy_all = settle.x.to_numpy(), settle.y.to_numpy()
    numbers: dict[
        tuple[str, str], int
    ] = {}  # door numbers run along a road across its villages: no two alike
    for vi, vil in enumerate(villages.code):
        vrng = stream(seed, "plates", vil)
        idx = cell_groups.get(vil, np.array([], dtype=int))
        slots = []  # (x, y, whole_cell)
        ci = 0
        for _ in range(complexes[vi]):
            slots.append((sx_all[idx[ci]], sy_all[idx[ci]], sx_all[idx[ci]], sy_all[idx[ci]]))
            ci += 1
        sub = (np.arange(16) % 4 - 1.5) * 20, (np.arange(16) // 4 - 1.5) * 20
        small_needed = rural_plates[vi] + shop_plates[vi]
        while small_needed > 0 and ci < len(idx):
            take = min(16, small_needed)
            for k in range(take):
                slots.append(
                    (
                        sx_all[idx[ci]] + sub[0][k],
                        sy_all[idx[ci]] + sub[1][k],
                        sx_all[idx[ci]],
                        sy_all[idx[ci]],
                    )
                )
            small_needed -= take
            ci += 1
        roads_here = town_roads[town_of[vil]]
        group_size = int(vrng.integers(15, 40))
        for kind, count in (
            ("complex", complexes[vi]),
            ("rural", rural_plates[vi]),
            ("shop", shop_plates[vi]),
        ):
            for j in range(count):
                x, y, cx, cy = slots.pop(0)
                if not shapely.contains_xy(
                    admin.geometry.polygons[vil], x, y
                ):  # slot over the border: cell centre
                    x, y = cx, cy
                road = number = group_no = cname = None
                if kind == "rural":
                    group_no, number = j // group_size + 1, j % group_size + 1
                else:
                    road = (
                        roads_here[int(vrng.integers(len(roads_here)))]
                        if (kind == "complex" or community[vi])
                        else None
                    )
                    if road is None:  # a shop in a village: addressed like a rural house
                        k = rural_plates[vi] + j  # numbered on after the village's houses
                        group_no, number = k // group_size + 1, k % group_size + 1
                    else:
                        key = (town_of[vil], road)
                        numbers[key] = numbers.get(key, 0) + int(vrng.integers(1, 8))
                        number = numbers[key]
                    if kind == "complex":
                        cname = f"{vrng.choice(vocab.FIRM_STEMS)}{vrng.choice(vocab.FIRM_STEMS)}{vrng.choice(vocab.COMPLEX_STEMS)}"
                ap_rows.append((vil, kind, road, number, group_no, cname, x, y))
    ap = pd.DataFrame(
        ap_rows, columns=["village_code", "kind", "road", "number", "group_no", "complex", "x", "y"]
    )
    ap.insert(0, "entity_id", [f"A{i:08d}" for i in range(len(ap))])

    # --- households at address points ---
    hh_rows = []
    by_village = ap.groupby("village_code").indices
    ap_kind = ap.kind.to_numpy()
    for vi, vil in enumerate(villages.code):
        h = per_village[vi]
        if h == 0:
            continue
        aps = by_village.get(vil)
        kinds = ap_kind[aps]
        homes = aps[kinds == ("complex" if community[vi] else "rural")]
        if len(homes) == 0:
            homes = aps
        hrng = stream(seed, "households", vil)
        where = (
            np.sort(hrng.integers(0, len(homes), h))
            if not community[vi]
            else np.repeat(homes, HOUSEHOLDS_PER_COMPLEX)[:h]
        )
        for j, a in enumerate(where if community[vi] else homes[where]):
            if community[vi]:
                k = j % HOUSEHOLDS_PER_COMPLEX
                b, u, floor, room = (
                    k // HOUSEHOLDS_PER_BUILDING + 1,
                    k % 2 + 1,
                    (k % HOUSEHOLDS_PER_BUILDING) // 4 + 1,
                    (k % 4) // 2 + 1,
                )
                hh_rows.append((a, b, u, floor * 100 + room, hrng.random() < 0.25))
            else:
                hh_rows.append((a, None, None, None, hrng.random() < 0.35))
    hh = pd.DataFrame(hh_rows, columns=["ap_idx", "building_no", "unit_no", "room", "migrant"])
    hh["address_point"] = ap.entity_id.to_numpy()[hh.ap_idx]
    hh.insert(0, "household_id", [f"H{i:08d}" for i in range(len(hh))])

    # --- buildings ---
    ax, ay, aid, avil = ap.x.to_numpy(), ap.y.to_numpy(), ap.entity_id.to_numpy(), ap.village_code.to_numpy()
    for a, n_b in hh[hh.building_no.notna()].groupby("ap_idx").building_no.max().items():
        for b in range(1, int(n_b) + 1):
            bx, by = ax[a] + ((b - 1) % 3 - 1) * 24, ay[a] + ((b - 1) // 3 % 4 - 1.5) * 18
            bld_rows.append((aid[a], avil[a], b, shapely.box(bx - 9, by - 6, bx + 9, by + 6)))
    for a in np.flatnonzero(ap_kind != "complex"):
        bld_rows.append((aid[a], avil[a], 1, shapely.box(ax[a] - 7, ay[a] - 5, ax[a] + 7, ay[a] + 5)))
    buildings = pd.DataFrame(bld_rows, columns=["parent_id", "village_code", "building_no", "geom"])
    buildings.insert(0, "entity_id", [f"B{i:08d}" for i in range(len(buildings))])

    persons = _persons(seed, hh, ap, town_of, county_of_town)
    orgs = _orgs(seed, n_orgs, org_village, org_own_plate, villages, ap, persons, county_of_town, town_of)
    return Population(ap, buildings, roads, hh, persons, orgs), natural, cells


def _persons(seed, hh, ap, town_of, county_of_town) -> pd.DataFrame:
    rng = stream(seed, "persons")
    size = rng.choice([1, 2, 3, 4, 5], size=len(hh), p=[0.22, 0.32, 0.24, 0.14, 0.08])
    hidx = np.repeat(np.arange(len(hh)), size)
    n = len(hidx)
    first = np.r_[True, hidx[1:] != hidx[:-1]]
    age = np.where(first, rng.integers(22, 85, n), rng.integers(0, 90, n))
    gender = rng.integers(0, 2, n)  # 1 = male
    year = 2026 - age
    doy = rng.integers(0, 365, n)
    # nobody born after 2026-10-31, the day before the first landing day
    doy = np.where(year == 2026, doy % 304, doy)
    birth = (
        (pd.to_datetime(pd.Series(year.astype(str)) + "-01-01") + pd.to_timedelta(doy, unit="D"))
        .dt.strftime("%Y%m%d")
        .to_numpy()
    )
    surnames = np.array(list(vocab.SURNAMES))
    sw = 1 / np.arange(1, len(surnames) + 1) ** 0.9
    hh_surname = rng.choice(surnames, size=len(hh), p=sw / sw.sum())
    spouse = ~first & (age >= 22) & (rng.random(n) < 0.5)
    own = rng.choice(surnames, size=n, p=sw / sw.sum())
    surname = np.where(spouse, own, hh_surname[hidx])
    chars = np.array(list(vocab.GIVEN_CHARS))
    g1, g2 = rng.choice(chars, n), rng.choice(chars, n)
    two = rng.random(n) < 0.7
    names = [s + a + (b if t else "") for s, a, b, t in zip(surname, g1, g2, two, strict=True)]
    migrant = hh.migrant.to_numpy()[hidx]
    ap_of = hh.ap_idx.to_numpy()[hidx]
    home_county = np.array([county_of_town[town_of[v]] for v in ap.village_code.to_numpy()[ap_of]])
    counties = np.array(sorted(ids.JIAXING_LINEAGE))
    other = rng.choice(counties, n)
    born_in = np.where(rng.random(n) < 0.8, home_county, other)  # county of the household register at issue
    mig_pick = rng.integers(0, 1 << 30, len(hh))[hidx]  # one home county per migrant household
    seq = rng.integers(0, 500, n) * 2 + gender  # odd for men
    # the number carries the code the issuing county had in the year it was issued (see ids.issue_year)
    irng = stream(seed, "id-issue")
    rollout = irng.integers(ids.FIRST_ISSUE, 1991, n)
    delay = irng.choice([0, 0, 0, 1, 2], n)
    provs = list(ids.MIGRANT_PROVINCES)
    weights = np.array(list(ids.MIGRANT_PROVINCES.values()))
    home_prov = np.array(provs)[irng.choice(len(provs), len(hh), p=weights / weights.sum())][hidx]
    homes = ids.migrant_counties()
    issued = [ids.issue_year(int(y), int(r), int(d)) for y, r, d in zip(year, rollout, delay, strict=True)]
    origin = np.full(n, None, dtype=object)
    id_numbers, seen = [], set()
    for i in range(n):
        if migrant[i]:
            choices = homes[home_prov[i]]
            origin[i] = choices[mig_pick[i] % len(choices)]
            region = ids.issued_code(origin[i], issued[i])
        else:
            region = ids.issued_code(born_in[i], issued[i])
        s = int(seq[i])
        while True:
            num = ids.resident_id(region, birth[i], s)
            if num not in seen:
                break
            s = (s + 2) % 1000
        seen.add(num)
        id_numbers.append(num)
    phone = np.where(
        age >= 16,
        [
            f"1{p}{q:09d}"
            for p, q in zip(rng.choice(list("3456789"), n), rng.integers(0, 10**9, n), strict=True)
        ],
        None,
    )
    return pd.DataFrame(
        {
            "person_id": [f"P{i:08d}" for i in range(n)],
            "name": names,
            "gender": np.where(gender == 1, "男", "女"),
            "birth_date": birth,
            "id_number": id_numbers,
            "phone": phone,
            "household_id": hh.household_id.to_numpy()[hidx],
            "address_point": hh.address_point.to_numpy()[hidx],
            "migrant": migrant,
            "age": age,
            "id_issued": np.array(issued, dtype=np.int16),  # year the number was first issued
            "home_county": origin,  # a migrant's home county (NBS 2022 code), whose code the ID carries
        }
    )


def _orgs(seed, n, org_village, own_plate, villages, ap, persons, county_of_town, town_of) -> pd.DataFrame:
    rng = stream(seed, "orgs")
    kinds = rng.choice(
        list(ORG_KINDS), size=n, p=np.array(list(ORG_KINDS.values())) / sum(ORG_KINDS.values())
    )
    shops = ap[ap.kind == "shop"]
    shop_by_village = shops.groupby("village_code").entity_id.apply(list).to_dict()
    any_by_village = ap.groupby("village_code").entity_id.apply(list).to_dict()
    used = {}
    adults = persons.index[persons.age >= 20].to_numpy()
    rep = rng.choice(adults, n)
    rows, codes = [], set()
    vcodes, vshort = villages.code.to_numpy(), villages.short_name.to_numpy()
    pids = persons.person_id.to_numpy()
    all_plates = ap.entity_id.tolist()
    for i in range(n):
        vil = vcodes[org_village[i]]
        short = vshort[org_village[i]]
        county = county_of_town[town_of[vil]]
        pool = shop_by_village.get(vil) or any_by_village.get(vil) or all_plates
        k = used.get(vil, 0)
        if own_plate[i] and k < len(pool):
            plate = pool[k]
            used[vil] = k + 1
        else:
            plate = pool[int(rng.integers(len(pool)))]
        kind = kinds[i]
        stem = f"{rng.choice(vocab.FIRM_STEMS)}{rng.choice(vocab.FIRM_STEMS)}"
        sector, _word, tail = vocab.INDUSTRIES[int(rng.integers(len(vocab.INDUSTRIES)))]
        if kind == "91":
            name = f"嘉兴{stem}{tail}" if rng.random() < 0.6 else f"嘉兴市{stem}{tail}"
        elif kind == "92":
            name = f"{short[:2]}{stem}{rng.choice(vocab.SHOP_KINDS)}"
        elif kind == "93":
            name, sector = f"嘉兴市{short}{stem}农业专业合作社", "A"
        elif kind == "N2":
            name, sector = f"{short}股份经济合作社", "A"
        elif kind == "12":
            name, sector = f"嘉兴市{stem}服务中心", "S"
        else:
            name, sector = f"嘉兴市{stem}{rng.choice(vocab.SOCIAL_KINDS)}", "S"
        while True:
            code = ids.credit_code(rng, kind, county, modern=rng.random() < 0.7)
            if code not in codes:
                codes.add(code)
                break
        reg = pd.Timestamp("1995-01-01") + pd.Timedelta(days=int(rng.integers(0, 11250)))
        capital = round(float(rng.lognormal(4.5, 1.3)), 2) if kind in ("91", "93") else None
        phone = (
            f"0573{int(rng.integers(1000000, 9999999))}"
            if rng.random() < 0.5
            else f"1{rng.choice(list('3456789'))}{int(rng.integers(0, 10**9)):09d}"
        )
        rows.append(
            (
                f"O{i:07d}",
                kind,
                name,
                code,
                pids[rep[i]],
                reg.strftime("%Y%m%d"),
                capital,
                sector,
                phone,
                plate,
            )
        )
    return pd.DataFrame(
        rows,
        columns=[
            "org_id",
            "kind",
            "name",
            "credit_code",
            "legal_rep",
            "reg_date",
            "capital",
            "industry",
            "phone",
            "address_point",
        ],
    )


def scale_count(at_one: int, scale: float) -> int:
    return max(1, math.floor(at_one * scale + 0.5))
