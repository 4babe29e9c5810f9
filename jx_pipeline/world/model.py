"""The generated world as flat numpy arrays, the form record generation reads fastest."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import shapely

from jx_pipeline.world import geo, people, places


@dataclass
class WorldModel:
    admin: places.AdminUnits
    pop: people.Population
    natural: pd.DataFrame
    # address points
    ap_id: np.ndarray
    ap_village: np.ndarray
    ap_county_code: np.ndarray
    ap_town_code: np.ndarray
    ap_county: np.ndarray
    ap_town: np.ndarray
    ap_village_short: np.ndarray
    ap_road: np.ndarray
    ap_number: np.ndarray
    ap_group: np.ndarray
    ap_complex: np.ndarray
    ap_lon: np.ndarray
    ap_lat: np.ndarray
    # persons (with their household's place)
    p_id: np.ndarray
    p_name: np.ndarray
    p_gender: np.ndarray
    p_birth: np.ndarray
    p_idno: np.ndarray
    p_phone: np.ndarray
    p_age: np.ndarray
    p_migrant: np.ndarray
    p_issued: np.ndarray  # year the ID number was first issued
    p_home: np.ndarray  # a migrant's home county code (None for others)
    p_ap: np.ndarray  # index into ap arrays
    p_building: np.ndarray
    p_unit: np.ndarray
    p_room: np.ndarray
    # organisations
    o_id: np.ndarray
    o_kind: np.ndarray
    o_name: np.ndarray
    o_code: np.ndarray
    o_rep: np.ndarray  # index into person arrays
    o_reg: np.ndarray
    o_capital: np.ndarray
    o_industry: np.ndarray
    o_phone: np.ndarray
    o_ap: np.ndarray
    # natural entities
    n_id: np.ndarray
    n_type: np.ndarray
    n_name: np.ndarray
    n_village: np.ndarray
    n_village_short: np.ndarray
    n_lon: np.ndarray
    n_lat: np.ndarray
    n_area: np.ndarray


def build_model(admin: places.AdminUnits, pop: people.Population, natural: pd.DataFrame) -> WorldModel:
    units = admin.table.set_index("code")
    ap = pop.address_points
    town = units.parent_code.reindex(ap.village_code).to_numpy()
    county = units.parent_code.reindex(town).to_numpy()
    lon, lat = geo.to_deg(ap.x.to_numpy(), ap.y.to_numpy())
    ap_index = pd.Series(np.arange(len(ap)), index=ap.entity_id)
    hh = pop.households.set_index("household_id")
    per = pop.persons
    hrow = hh.reindex(per.household_id)
    org = pop.orgs
    pindex = pd.Series(np.arange(len(per)), index=per.person_id)
    rep = shapely.point_on_surface(natural.geom.to_numpy()) if len(natural) else np.array([])
    nlon, nlat = (
        geo.to_deg(shapely.get_x(rep), shapely.get_y(rep)) if len(natural) else (np.array([]), np.array([]))
    )

    def obj(series) -> np.ndarray:
        return series.astype(object).where(series.notna(), None).to_numpy()

    return WorldModel(
        admin=admin,
        pop=pop,
        natural=natural,
        ap_id=ap.entity_id.to_numpy(dtype=object),
        ap_village=ap.village_code.to_numpy(dtype=object),
        ap_county_code=county,
        ap_town_code=town,
        ap_county=units.name.reindex(county).to_numpy(dtype=object),
        ap_town=units.name.reindex(town).to_numpy(dtype=object),
        ap_village_short=units.short_name.reindex(ap.village_code).to_numpy(dtype=object),
        ap_road=obj(ap.road),
        ap_number=obj(ap.number),
        ap_group=obj(ap.group_no),
        ap_complex=obj(ap.complex),
        ap_lon=lon,
        ap_lat=lat,
        p_id=per.person_id.to_numpy(dtype=object),
        p_name=per.name.to_numpy(dtype=object),
        p_gender=per.gender.to_numpy(dtype=object),
        p_birth=per.birth_date.to_numpy(dtype=object),
        p_idno=per.id_number.to_numpy(dtype=object),
        p_phone=obj(per.phone),
        p_age=per.age.to_numpy(),
        p_migrant=per.migrant.to_numpy(dtype=bool),
        p_issued=per.id_issued.to_numpy(),
        p_home=obj(per.home_county),
        p_ap=ap_index.reindex(per.address_point).to_numpy(),
        p_building=obj(hrow.building_no),
        p_unit=obj(hrow.unit_no),
        p_room=obj(hrow.room),
        o_id=org.org_id.to_numpy(dtype=object),
        o_kind=org.kind.to_numpy(dtype=object),
        o_name=org.name.to_numpy(dtype=object),
        o_code=org.credit_code.to_numpy(dtype=object),
        o_rep=pindex.reindex(org.legal_rep).to_numpy(),
        o_reg=org.reg_date.to_numpy(dtype=object),
        o_capital=obj(org.capital),
        o_industry=org.industry.to_numpy(dtype=object),
        o_phone=org.phone.to_numpy(dtype=object),
        o_ap=ap_index.reindex(org.address_point).to_numpy(),
        n_id=natural.entity_id.to_numpy(dtype=object),
        n_type=natural.entity_type.to_numpy(dtype=object),
        n_name=natural.name.to_numpy(dtype=object),
        n_village=natural.village_code.to_numpy(dtype=object),
        n_village_short=units.short_name.reindex(natural.village_code).to_numpy(dtype=object),
        n_lon=nlon,
        n_lat=nlat,
        n_area=shapely.area(natural.geom.to_numpy()) if len(natural) else np.array([]),
    )
