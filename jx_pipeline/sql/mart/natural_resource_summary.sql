-- Per county and 山水林田湖草 class: how many entities and how much area — the figures a natural-resources
-- bureau's annual report quotes. An entity counts once, in the county of its village; its area is split
-- between counties by intersection (the two agree except for entities across a county boundary).
create table mart.natural_resource_summary__next as
with counted as (
    select p.county_code, e.entity_class, count(*) as entities
      from staged._mart_entity e join mart_place p using (village_code)
     where e.family = 'natural'
     group by 1, 2
)
select u.unit_code as county_code, u.name as county_name, c.entity_class, c.class_zh, c.title_zh, c.title_en,
       coalesce(n.entities, 0)::int as entity_count,
       round(coalesce(a.area_m2, 0)::numeric, 1) as area_m2,
       round((coalesce(a.area_m2, 0) / 666.6667)::numeric, 1) as area_mu,
       round((coalesce(a.area_m2, 0) / nullif(st_area(st_transform(u.geom, 4549)), 0))::numeric, 6) as share_of_county,
       u.geom::geometry(MultiPolygon, 4490) as geom
  from mart_unit u
  cross join mart.entity_class__next c
  left join counted n on n.county_code = u.unit_code and n.entity_class = c.entity_class
  left join staged._mart_class_area a on a.unit_code = u.unit_code and a.entity_class = c.entity_class
 where u.level = 'county' and c.family = 'natural';

alter table mart.natural_resource_summary__next add primary key (county_code, entity_class);
create index natural_resource_summary__next_geom on mart.natural_resource_summary__next using gist (geom);

comment on table mart.natural_resource_summary__next is '自然资源统计 — Natural resources by county. Per county and 山水林田湖草 class: number of entities and area (m², mu, share of the county), the figures of a natural-resources annual report; the county boundary as geometry for thematic maps.';
comment on column mart.natural_resource_summary__next.county_code is '县(市、区)代码 — 6-digit NBS code of the county-level unit.';
comment on column mart.natural_resource_summary__next.county_name is '县(市、区)名称 — Name of the county-level unit.';
comment on column mart.natural_resource_summary__next.entity_class is '实体分类 — Natural class code (mart.entity_class): mountain, water, forest, farmland, lake, grassland.';
comment on column mart.natural_resource_summary__next.class_zh is '分类字 — The class character: 山, 水, 林, 田, 湖 or 草.';
comment on column mart.natural_resource_summary__next.title_zh is '分类名称 — Chinese title of the class.';
comment on column mart.natural_resource_summary__next.title_en is '英文名称 — English title of the class.';
comment on column mart.natural_resource_summary__next.entity_count is '图斑数 — Entities of the class whose village lies in the county (each entity counted once).';
comment on column mart.natural_resource_summary__next.area_m2 is '面积(平方米) — m² of the class inside the county boundary (geometry intersection, EPSG:4549).';
comment on column mart.natural_resource_summary__next.area_mu is '面积(亩) — The same area in mu (1 亩 = 666.67 m²).';
comment on column mart.natural_resource_summary__next.share_of_county is '占县域比例 — area_m2 divided by the county''s area (0-1).';
comment on column mart.natural_resource_summary__next.geom is '县域边界 — The county boundary, MultiPolygon in CGCS2000 (EPSG:4490).';
