-- What the marts take from the entities alone, kept between refreshes (lib/marts.py, ``_entities``): made again
-- only when core.geo_entity or core.admin_unit was written since, or this file or entity_class.sql changed
-- (3.6 s of every refresh at scale 0.1). Unlogged, like the other kept inputs: a crash empties them and their key.
drop table if exists staged._mart_entity, staged._mart_class_area;

-- entities: class, village (a road has none in the hand-over: the village holding a point on it), metric size
-- in CGCS2000 / 3-degree Gauss-Kruger CM 120E (EPSG:4549; Jiaxing lies within 1.3 degrees of 120E)
create unlogged table staged._mart_entity as
select e.entity_id, e.entity_type, c.entity_class, c.family, e.name, e.geom,
       coalesce(e.village_code, v.code) as village_code,
       case when geometrytype(e.geom) in ('POLYGON', 'MULTIPOLYGON')
            then st_area(st_transform(e.geom, 4549)) end as area_m2,
       case when geometrytype(e.geom) in ('LINESTRING', 'MULTILINESTRING')
            then st_length(st_transform(e.geom, 4549)) end as length_m
  from core.geo_entity e
  join mart.entity_class__next c on e.entity_type = any (c.entity_types)
  left join lateral (
        select u.code from core.admin_unit u
         where e.village_code is null and u.level = 'village' and st_intersects(u.geom, st_pointonsurface(e.geom))
         order by u.code limit 1) v on true;
create unique index _mart_entity_id on staged._mart_entity (entity_id);
create index _mart_entity_geom on staged._mart_entity using gist (geom);
analyze staged._mart_entity;

-- area of each natural class inside each county, town and village, by intersection (an entity across a boundary
-- is split)
create unlogged table staged._mart_class_area as
select u.code as unit_code, e.entity_class,
       sum(case when st_coveredby(e.geom, u.geom) then e.area_m2
                else st_area(st_transform(st_intersection(e.geom, u.geom), 4549)) end) as area_m2
  from core.admin_unit u
  join staged._mart_entity e on e.family = 'natural' and st_intersects(u.geom, e.geom)
 where u.level in ('county', 'town', 'village')
 group by 1, 2;
analyze staged._mart_class_area;
