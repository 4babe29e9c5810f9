-- A run that read only the records of changed partitions (link_want, lib/changes.py) gathered into link_rec:
-- link_scope.sql compares them with what staged._link_input remembers of them (link_known) and their links
-- (link_links). lib/linking.py runs it with joins by index when they are few (Memory.by_key).
create unlogged table link_known as
select m.* from staged._link_input m join link_want w using (feed_id, record_key);
create unlogged table link_links as
select l.* from core.entity_link l join link_want w using (feed_id, record_key);
analyze link_known, link_links;
-- link_fp's key for the second gathering's anti-join (link_inputs.sql), built after the first (larger)
-- insert; a run that read every record joins it by none (7 s at scale 0.1)
create unique index link_fp_key on link_fp (feed_id, record_key);
