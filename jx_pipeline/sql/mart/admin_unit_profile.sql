-- One row per county, town and village with its boundary: residents and households, organisations by type,
-- economy indicators summed from the economy feeds, and the area of each 山水林田湖草 class inside it.
create table mart.admin_unit_profile__next as
with home as (  -- each person once, in the units holding their home's village: counted per village (an entity
                -- lies in one), then summed up
    select i.unit_code, sum(v.residents) as residents, sum(v.households) as households
      from (select e.village_code, count(*) as residents,
                   count(distinct (r.entity_id, coalesce(r.flat, ''))) as households
              from mart_resident r join staged._mart_entity e using (entity_id) group by 1) v
      join mart_village_in i using (village_code)
     group by 1
), org_type as (
    select i.unit_code, o.org_type, count(*) as n
      from mart_org o join staged._mart_entity e using (entity_id) join mart_village_in i using (village_code)
     group by 1, 2
), org as (
    select unit_code, sum(n)::int as organisations, jsonb_object_agg(org_type, n order by org_type) as by_type
      from org_type group by 1
), econ_feed as (
    select i.unit_code, k.feed_id, sum(k.n) as n, sum(k.amount) as amount  -- sql/mart/sums/economy.sql
      from staged._mart_economy k join staged._mart_entity e using (entity_id) join mart_village_in i using (village_code)
     group by 1, 2
), econ as (
    select unit_code, sum(n)::int as records,
           jsonb_object_agg(feed_id, amount order by feed_id) filter (where amount is not null) as by_feed,
           sum(amount) filter (where feed_id = 'swj_zzssb')   as vat,
           sum(amount) filter (where feed_id = 'swj_qysdssb') as corporate_income_tax,
           sum(amount) filter (where feed_id = 'swj_fp')      as invoiced,
           sum(amount) filter (where feed_id = 'czj_fsxx')    as non_tax_revenue,
           sum(amount) filter (where feed_id = 'tjj_gsqy')    as industrial_output,
           sum(amount) filter (where feed_id = 'jxj_gyyd')    as electricity,
           sum(amount) filter (where feed_id = 'fgw_nyxf')    as energy
      from econ_feed group by 1
), area as (
    select unit_code,
           sum(area_m2) filter (where entity_class = 'mountain')  as mountain,
           sum(area_m2) filter (where entity_class = 'water')     as water,
           sum(area_m2) filter (where entity_class = 'forest')    as forest,
           sum(area_m2) filter (where entity_class = 'farmland')  as farmland,
           sum(area_m2) filter (where entity_class = 'lake')      as lake,
           sum(area_m2) filter (where entity_class = 'grassland') as grassland
      from staged._mart_class_area group by 1
)
select u.unit_code, u.level, u.name, u.parent_code,
       round(st_area(st_transform(u.geom, 4549))::numeric, 1) as area_m2,
       case when coalesce(h.residents, 0) between 1 and %(min_persons)s - 1 then null
            else coalesce(h.residents, 0) end::int as residents,
       coalesce(h.residents, 0) between 1 and %(min_persons)s - 1 as residents_suppressed,
       case when coalesce(h.households, 0) between 1 and %(min_persons)s - 1 then null
            else coalesce(h.households, 0) end::int as households,
       coalesce(h.households, 0) between 1 and %(min_persons)s - 1 as households_suppressed,
       coalesce(o.organisations, 0) as organisations,
       coalesce(o.by_type, '{}'::jsonb) as organisations_by_type,
       coalesce(x.records, 0) as economy_records,
       coalesce(x.by_feed, '{}'::jsonb) as economy_by_feed,
       x.vat as economy_vat, x.corporate_income_tax as economy_corporate_income_tax,
       x.invoiced as economy_invoiced, x.non_tax_revenue as economy_non_tax_revenue,
       x.industrial_output as economy_industrial_output,
       x.electricity as economy_electricity, x.energy as economy_energy,
       round(coalesce(a.mountain, 0)::numeric, 1)  as mountain_area_m2,
       round(coalesce(a.water, 0)::numeric, 1)     as water_area_m2,
       round(coalesce(a.forest, 0)::numeric, 1)    as forest_area_m2,
       round(coalesce(a.farmland, 0)::numeric, 1)  as farmland_area_m2,
       round(coalesce(a.lake, 0)::numeric, 1)      as lake_area_m2,
       round(coalesce(a.grassland, 0)::numeric, 1) as grassland_area_m2,
       u.geom::geometry(MultiPolygon, 4490) as geom
  from mart_unit u
  left join home h using (unit_code)
  left join org o using (unit_code)
  left join econ x using (unit_code)
  left join area a using (unit_code);

alter table mart.admin_unit_profile__next add primary key (unit_code);
create index admin_unit_profile__next_geom on mart.admin_unit_profile__next using gist (geom);
create index admin_unit_profile__next_level on mart.admin_unit_profile__next (level, parent_code);

comment on table mart.admin_unit_profile__next is '行政区划画像 — Administrative unit profile. One row per county, town and village of Jiaxing with its boundary: residents and households, organisations by type, economy indicators from the economy feeds and the area of each 山水林田湖草 class inside it (by geometry intersection). Counts of fewer than 5 persons are suppressed.';
comment on column mart.admin_unit_profile__next.unit_code is '区划代码 — NBS code (county 6, town 9, village 12 digits).';
comment on column mart.admin_unit_profile__next.level is '层级 — county, town or village.';
comment on column mart.admin_unit_profile__next.name is '名称 — Official name of the unit.';
comment on column mart.admin_unit_profile__next.parent_code is '上级区划代码 — Code of the unit it belongs to (a county''s parent is the city, 330400).';
comment on column mart.admin_unit_profile__next.area_m2 is '面积(平方米) — Area of the boundary in m², computed in EPSG:4549 (CGCS2000 Gauss-Kruger CM 120E).';
comment on column mart.admin_unit_profile__next.residents is '居住人数 — Distinct persons whose home entity lies in the unit (each person counted once); null when 1-4.';
comment on column mart.admin_unit_profile__next.residents_suppressed is '居住人数是否抑制 — True when residents is withheld (fewer than 5 persons).';
comment on column mart.admin_unit_profile__next.households is '户数 — Distinct households (home entity + flat) of those residents; null when 1-4.';
comment on column mart.admin_unit_profile__next.households_suppressed is '户数是否抑制 — True when households is withheld (fewer than 5).';
comment on column mart.admin_unit_profile__next.organisations is '法人单位数 — Distinct organisations seated in the unit.';
comment on column mart.admin_unit_profile__next.organisations_by_type is '法人单位类型构成 — Organisations per type from the credit code (enterprise, individual_business, farmer_cooperative, social_group, private_non_enterprise, foundation, government_agency, public_institution, rural_collective, other, no_credit_code), JSON.';
comment on column mart.admin_unit_profile__next.economy_records is '经济类记录数 — Current economy-feed records of organisations seated in the unit.';
comment on column mart.admin_unit_profile__next.economy_by_feed is '经济指标(按数据项) — Sum of the amount column per economy feed (JSON, feed id -> sum over every current record, all periods, in the feed''s own unit).';
comment on column mart.admin_unit_profile__next.economy_vat is '增值税申报额 — Sum of VAT returns (swj_zzssb, 税务局).';
comment on column mart.admin_unit_profile__next.economy_corporate_income_tax is '企业所得税申报额 — Sum of corporate income tax returns (swj_qysdssb, 税务局).';
comment on column mart.admin_unit_profile__next.economy_invoiced is '发票开具金额 — Sum of invoice issuance summaries (swj_fp, 税务局).';
comment on column mart.admin_unit_profile__next.economy_non_tax_revenue is '非税收入 — Sum of non-tax revenue payments (czj_fsxx, 财政局).';
comment on column mart.admin_unit_profile__next.economy_industrial_output is '规上工业产值 — Sum of above-scale industrial output (tjj_gsqy, 统计局).';
comment on column mart.admin_unit_profile__next.economy_electricity is '工业用电量 — Sum of industrial electricity consumption (jxj_gyyd, 经济和信息化局).';
comment on column mart.admin_unit_profile__next.economy_energy is '能耗 — Sum of monitored energy consumption (fgw_nyxf, 发展和改革委员会).';
comment on column mart.admin_unit_profile__next.mountain_area_m2 is '山地面积 — m² of hill entities (山) inside the boundary, by intersection.';
comment on column mart.admin_unit_profile__next.water_area_m2 is '水域面积 — m² of rivers and ponds (水) inside the boundary, by intersection.';
comment on column mart.admin_unit_profile__next.forest_area_m2 is '林地面积 — m² of forest (林) inside the boundary, by intersection.';
comment on column mart.admin_unit_profile__next.farmland_area_m2 is '耕地面积 — m² of farmland (田) inside the boundary, by intersection.';
comment on column mart.admin_unit_profile__next.lake_area_m2 is '湖泊面积 — m² of lakes (湖) inside the boundary, by intersection.';
comment on column mart.admin_unit_profile__next.grassland_area_m2 is '草地面积 — m² of grassland (草) inside the boundary, by intersection.';
comment on column mart.admin_unit_profile__next.geom is '边界 — The unit''s boundary, MultiPolygon in CGCS2000 (EPSG:4490).';
