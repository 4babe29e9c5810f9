-- Per parent: its area, the summed area of its children and the area of their union (metres², EPSG:4549).
-- Children tessellate their parent when all three agree: no gap (union = parent) and no overlap (sum = union).
with g as (
    select code, parent_code, level, st_transform(geom, 4549) as geom from core.admin_unit where geom is not null
)
select p.code, p.level,
       st_area(p.geom)                       as parent_m2,
       sum(st_area(c.geom))                  as children_m2,
       st_area(st_union(c.geom))             as union_m2
  from g p join g c on c.parent_code = p.code
 group by p.code, p.level, p.geom
 order by p.code;
