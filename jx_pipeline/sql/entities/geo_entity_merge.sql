-- Merge the new hand-over (in geo_entity_next) into core.geo_entity: links and door plates of entities that are
-- gone are removed with them; the rest are updated in place, so existing links stay valid. A row the hand-over
-- did not change gets no new version (its batch_id is the load that last changed it): an unchanged hand-over
-- writes no geometry, index entry or dead row, and locks no row.

-- what is gone and what is new or changed, each found by one hash join; the writes below touch only those
-- (at scale 0.1 an unchanged hand-over took 13 s: every link read to find none gone, every entity upserted).
-- Writers of the table wait until the merge commits (readers do not), so a row edited meanwhile is not missed.
lock table core.geo_entity in share row exclusive mode;
create temp table geo_entity_gone on commit drop as
select e.entity_id from core.geo_entity e
 where not exists (select 1 from geo_entity_next n where n.entity_id = e.entity_id);
analyze geo_entity_gone;
create temp table geo_entity_changed on commit drop as
select n.* from geo_entity_next n left join core.geo_entity e on e.entity_id = n.entity_id
 where e.entity_id is null
    or (e.entity_type, e.name, e.village_code, e.parent_id, e.address, st_asewkb(e.geom))
       is distinct from
       (n.entity_type, n.name, n.village_code, n.parent_id, n.address, st_asewkb(n.geom));

delete from core.entity_link l using geo_entity_gone g where l.entity_id = g.entity_id;
delete from core.address_point a using geo_entity_gone g where a.entity_id = g.entity_id;
delete from core.geo_entity e using geo_entity_gone g where e.entity_id = g.entity_id;
insert into core.geo_entity (entity_id, entity_type, name, village_code, parent_id, address, geom, batch_id)
select entity_id, entity_type, name, village_code, parent_id, address, geom, batch_id from geo_entity_changed
on conflict (entity_id) do update
   set entity_type = excluded.entity_type, name = excluded.name, village_code = excluded.village_code,
       parent_id = excluded.parent_id, address = excluded.address, geom = excluded.geom, batch_id = excluded.batch_id;
