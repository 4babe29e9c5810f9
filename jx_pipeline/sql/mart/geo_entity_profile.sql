-- One row per geographic entity: what it is, where, how big, and what the departments know about it.
-- Persons only as counts; a count describing 1 to min_persons - 1 persons is null with its _suppressed flag.
create table mart.geo_entity_profile__next as
with rec as (  -- linked records per entity (sql/mart/sums/entity_rec.sql, kept)
    select * from staged._mart_entity_rec
), recorded as (  -- distinct persons behind the population records: the records describe them
    select entity_id, count(*) as persons from staged._mart_person_entity group by 1
), home as (
    select entity_id, count(*) as residents, count(distinct coalesce(flat, '')) as households
      from mart_resident group by 1
), org as (
    select entity_id, count(*) as organisations from mart_org group by 1
), hidden as (  -- which entities' person counts are suppressed
    select e.entity_id,
           coalesce(h.residents, 0) between 1 and %(min_persons)s - 1   as residents,
           coalesce(h.households, 0) between 1 and %(min_persons)s - 1  as households,
           coalesce(p.persons, 0) between 1 and %(min_persons)s - 1     as population
      from staged._mart_entity e left join home h using (entity_id) left join recorded p using (entity_id)
)
select e.entity_id, e.entity_type, e.entity_class, c.class_zh, e.name,
       e.village_code, p.village_name, p.town_code, p.town_name, p.county_code, p.county_name,
       round(e.area_m2::numeric, 1) as area_m2, round(e.length_m::numeric, 1) as length_m,
       case when s.population then null else coalesce(r.population, 0) end::int as records_population,
       s.population as records_population_suppressed,
       coalesce(r.legal_person, 0)::int as records_legal_person,
       coalesce(r.economy, 0)::int as records_economy,
       coalesce(r.other, 0)::int as records_other,
       coalesce(case when s.population then r.by_department_no_population else r.by_department end, '{}'::jsonb)
           as records_by_department,
       case when s.residents then null else coalesce(h.residents, 0) end::int as residents,
       s.residents as residents_suppressed,
       case when s.households then null else coalesce(h.households, 0) end::int as households,
       s.households as households_suppressed,
       coalesce(o.organisations, 0)::int as organisations,
       r.last_record_date,
       e.geom::geometry(Geometry, 4490) as geom
  from staged._mart_entity e
  join mart.entity_class__next c using (entity_class)
  join hidden s using (entity_id)
  left join mart_place p using (village_code)
  left join rec r using (entity_id)
  left join home h using (entity_id)
  left join org o using (entity_id);

alter table mart.geo_entity_profile__next add primary key (entity_id);
create index geo_entity_profile__next_geom on mart.geo_entity_profile__next using gist (geom);
create index geo_entity_profile__next_village on mart.geo_entity_profile__next (village_code);
create index geo_entity_profile__next_class on mart.geo_entity_profile__next (entity_class);

comment on table mart.geo_entity_profile__next is '地理实体画像 — Geographic entity profile. One row per geographic entity (山水林田湖草, roads, buildings, door plates): class, place, size, geometry and what the departments know about it (linked records per domain and department, residents, organisations). Persons appear only as counts; counts of fewer than 5 persons are suppressed.';
comment on column mart.geo_entity_profile__next.entity_id is '实体编码 — The entity''s id in core.geo_entity (the natural-resources hand-over''s code).';
comment on column mart.geo_entity_profile__next.entity_type is '实体类型 — Core entity type: farmland, river, pond, lake, forest, grassland, hill, road, building, address_point.';
comment on column mart.geo_entity_profile__next.entity_class is '实体分类 — Class (mart.entity_class): mountain, water, forest, farmland, lake, grassland (山水林田湖草) or road, building, door_plate.';
comment on column mart.geo_entity_profile__next.class_zh is '分类字 — The class in Chinese: 山, 水, 林, 田, 湖, 草, 路, 房, 门牌.';
comment on column mart.geo_entity_profile__next.name is '实体名称 — Name of the entity (a door plate: its standard road and number; never a person''s flat).';
comment on column mart.geo_entity_profile__next.village_code is '村(社区)代码 — 12-digit NBS code of the village or community it lies in (a road: the one holding a point on it).';
comment on column mart.geo_entity_profile__next.village_name is '村(社区)名称 — Name of that village or community.';
comment on column mart.geo_entity_profile__next.town_code is '乡镇(街道)代码 — 9-digit code of its town or sub-district.';
comment on column mart.geo_entity_profile__next.town_name is '乡镇(街道)名称 — Name of its town or sub-district.';
comment on column mart.geo_entity_profile__next.county_code is '县(市、区)代码 — 6-digit code of its county-level unit.';
comment on column mart.geo_entity_profile__next.county_name is '县(市、区)名称 — Name of its county-level unit.';
comment on column mart.geo_entity_profile__next.area_m2 is '面积(平方米) — Area in m², computed in CGCS2000 / 3-degree Gauss-Kruger CM 120E (EPSG:4549); null for lines and points.';
comment on column mart.geo_entity_profile__next.length_m is '长度(米) — Length in m (roads), computed in EPSG:4549; null for polygons and points.';
comment on column mart.geo_entity_profile__next.records_population is '人口类记录数 — Current records of population feeds linked to the entity; null when they describe 1-4 persons.';
comment on column mart.geo_entity_profile__next.records_population_suppressed is '人口类记录是否抑制 — True when records_population is withheld because it describes fewer than 5 persons.';
comment on column mart.geo_entity_profile__next.records_legal_person is '法人类记录数 — Current records of legal-person feeds linked to the entity.';
comment on column mart.geo_entity_profile__next.records_economy is '经济类记录数 — Current records of economy feeds linked to the entity (through the organisation''s identity).';
comment on column mart.geo_entity_profile__next.records_other is '其他记录数 — Current records of the other feeds (events, natural-resource records) linked to the entity.';
comment on column mart.geo_entity_profile__next.records_by_department is '各部门记录数 — Linked current records per department code (JSON); population records are left out where they describe fewer than 5 persons.';
comment on column mart.geo_entity_profile__next.residents is '居住人数 — Distinct persons (master index) whose home is this entity: the entity most of their population records are linked to; null when 1-4.';
comment on column mart.geo_entity_profile__next.residents_suppressed is '居住人数是否抑制 — True when residents is withheld (fewer than 5 persons).';
comment on column mart.geo_entity_profile__next.households is '户数 — Distinct flats (building/unit/room of the address, or the door plate itself) of the residents; null when 1-4.';
comment on column mart.geo_entity_profile__next.households_suppressed is '户数是否抑制 — True when households is withheld (fewer than 5).';
comment on column mart.geo_entity_profile__next.organisations is '法人单位数 — Distinct organisations (legal-person master index) seated here: the entity most of their records are linked to.';
comment on column mart.geo_entity_profile__next.last_record_date is '最近记录日期 — Latest date (event, period, registration or update) of a record linked to the entity.';
comment on column mart.geo_entity_profile__next.geom is '几何 — The entity''s geometry in CGCS2000 (EPSG:4490): polygon, line (roads) or point (door plates).';
