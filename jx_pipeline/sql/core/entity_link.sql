-- core.entity_link rebuilt from link_rec (sql/core/link_records.sql) and the parser's output per text
-- (staged._parse_cache), set-based. The order of evidence is lib/linking.py's docstring.
set local work_mem = '256MB';

-- a village's natural entity by name (two of one name: the first id, so a rerun links the same way)
create unlogged table link_natural as
select distinct on (village_code, name) village_code, name, entity_id
  from core.geo_entity where entity_type = any(%(natural)s) and name is not null
 order by village_code, name, entity_id;

-- each (village name, entity name) written with its natural entity: few pairs, resolved once
create unlogged table link_named as
select x.village_name, x.entity_name, n.entity_id
  from (select distinct village_name, entity_name from link_rec
         where village_name is not null and entity_name is not null) x
  join staged._parse_cache v on v.text_md5 = md5(x.village_name)::uuid
  join link_natural n on n.village_code = v.village_code and n.name = x.entity_name;
analyze link_named;

-- the address (door plate, exact or a typo fixed; or outside the city), else the entity's name in its village
create unlogged table link_step as
select r.feed_id, r.record_key, r.identity, r.lon, r.lat,
       case when a.outside then 'outside_city'
            when a.entity_id is not null then case when a.fuzzy then 'address_fuzzy' else 'address_exact' end
            when n.entity_id is not null then 'name_in_village' end as method,
       case when a.outside then null else coalesce(a.entity_id, n.entity_id) end as entity_id,
       case when a.outside then 0.0
            when a.entity_id is not null then case when a.fuzzy then 0.9 else 1.0 end
            when n.entity_id is not null then 1.0 end as score
  from link_rec r
  left join staged._parse_cache a on a.text_md5 = md5(r.address)::uuid
  left join link_named n on n.village_name = r.village_name and n.entity_name = r.entity_name;
-- statistics for the joins below: without them the planner sorted every record twice, on disk, to merge-join
-- a few hundred thousand rows, or hashed every record to probe with a few (link_found, link_vote and link_new,
-- with the identity hashed once: 46 s -> 28 s at scale 0.1)
analyze link_step;

-- coordinates of the rest: inside a natural entity's polygon, else the nearest door plate within %(nearest_m)s m
create unlogged table link_pt as
select feed_id, record_key, st_setsrid(st_makepoint(lon, lat), 4490) as geom
  from link_step where method is null and lon is not null and lat is not null;
create index on link_pt using gist (geom);
analyze link_pt;
create unlogged table link_poly as
select distinct on (p.feed_id, p.record_key) p.feed_id, p.record_key, e.entity_id
  from link_pt p join core.geo_entity e on e.entity_type = any(%(natural)s) and st_intersects(e.geom, p.geom)
 order by p.feed_id, p.record_key, e.entity_id;
create unlogged table link_near as
select p.feed_id, p.record_key, a.entity_id,
       st_distance(st_transform(a.geom, 4549), st_transform(p.geom, 4549)) as d
  from link_pt p
 -- door plates at one point (several plates of a building): the first id, so a relink of one record agrees
 cross join lateral (select entity_id, geom
                       from (select entity_id, geom, geom <-> p.geom as k from core.address_point
                              order by geom <-> p.geom limit 8) n
                      order by k, entity_id limit 1) a
 where not exists (select 1 from link_poly q where q.feed_id = p.feed_id and q.record_key = p.record_key);
delete from link_near where d > %(nearest_m)s;
analyze link_poly;
analyze link_near;

create unlogged table link_found as
select s.feed_id, s.record_key, md5(s.identity)::uuid as identity,  -- the identity's hash, computed once
       coalesce(s.entity_id, g.entity_id, nr.entity_id) as entity_id,
       coalesce(s.method, case when g.entity_id is not null then 'coordinate_polygon'
                               when nr.entity_id is not null then 'coordinate_nearest' end) as method,
       coalesce(s.score, case when g.entity_id is not null then 1.0
                              when nr.entity_id is not null then round((1 - nr.d / %(nearest_m)s / 2)::numeric, 3)
                         end) as score
  from link_step s
  left join link_poly g using (feed_id, record_key)
  left join link_near nr using (feed_id, record_key);
analyze link_found;

-- identity: the entity most often linked for the same ID number or credit code (ties: the first id), with the
-- votes of the records a relink left as they are (link_scope.sql); by the identity's hash
create unlogged table link_vote as
select distinct on (identity) identity, entity_id, round(n / total, 3) as score
  from (select identity, entity_id, count(*) as n, sum(count(*)) over (partition by identity) as total
          from (select identity, entity_id from link_found
                 where identity is not null and entity_id is not null
                union all
                select identity, entity_id from link_kept_vote) x
         group by 1, 2) v
 order by identity, n desc, entity_id;
analyze link_vote;

-- the rebuilt table, written by lib/rebuild.py (only the rows that changed, or swapped in whole)
create unlogged table link_new (like core.entity_link including defaults);
insert into link_new (feed_id, record_key, entity_id, entity_type, village_code, method, score)
select f.feed_id, f.record_key, e.entity_id, e.entity_type, e.village_code,
       coalesce(f.method, case when v.entity_id is not null then 'identity' else 'unmatched' end),
       coalesce(f.score, v.score, 0)
  from link_found f
  left join link_vote v on v.identity = case when f.method is null then f.identity end
  left join core.geo_entity e on e.entity_id = coalesce(f.entity_id, v.entity_id);
-- the scope's followers (link_scope.sql): no evidence of their own, as link_found's rows without any above
insert into link_new (feed_id, record_key, entity_id, entity_type, village_code, method, score)
select f.feed_id, f.record_key, e.entity_id, e.entity_type, e.village_code,
       case when v.entity_id is not null then 'identity' else 'unmatched' end, coalesce(v.score, 0)
  from link_follow f
  left join link_vote v on v.identity = f.identity
  left join core.geo_entity e on e.entity_id = v.entity_id;
