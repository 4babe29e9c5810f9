-- Merge the new hand-over (in geo_entity_next) into core.geo_entity: links and door plates of entities that are
-- gone are removed with them; the rest are updated in place, so existing links stay valid. A row the hand-over
-- did not change gets no new version (its batch_id is the load that last changed it; PostgreSQL still locks it):
-- an unchanged hand-over writes no geometry, index entry or dead row.
delete from core.entity_link l where l.entity_id is not null
   and not exists (select 1 from geo_entity_next n where n.entity_id = l.entity_id);
delete from core.address_point a where not exists (select 1 from geo_entity_next n where n.entity_id = a.entity_id);
delete from core.geo_entity e where not exists (select 1 from geo_entity_next n where n.entity_id = e.entity_id);
insert into core.geo_entity (entity_id, entity_type, name, village_code, parent_id, address, geom, batch_id)
select entity_id, entity_type, name, village_code, parent_id, address, geom, batch_id from geo_entity_next
on conflict (entity_id) do update
   set entity_type = excluded.entity_type, name = excluded.name, village_code = excluded.village_code,
       parent_id = excluded.parent_id, address = excluded.address, geom = excluded.geom, batch_id = excluded.batch_id
 where (core.geo_entity.entity_type, core.geo_entity.name, core.geo_entity.village_code, core.geo_entity.parent_id,
        core.geo_entity.address, st_asewkb(core.geo_entity.geom))
       is distinct from
       (excluded.entity_type, excluded.name, excluded.village_code, excluded.parent_id, excluded.address,
        st_asewkb(excluded.geom));
