-- Work proportional to change for the marts: their inputs (staged._mart_record, every current record's date,
-- amount and flat; staged._mart_link, those records with their link and master keys) are kept between refreshes
-- (lib/marts.py makes them) and a refresh rewrites only the records of staged partitions changed since the last
-- one (lib/changes.py, consumer 'mart') and those whose link or identity changed, which the writers of
-- core.entity_link and core.identity_member note here (lib/rebuild.py, sql/entities/geo_entity_merge.sql).
create table staged._mart_change (
    id         bigserial primary key,
    feed_id    text,   -- null: the whole table was written anew (a swap): the next refresh reads every record
    record_key text
);
comment on table staged._mart_change is 'Records whose link or identity changed since the last mart refresh (null: all of them), noted by linking, identity resolution and the entity merge; the refresh reads and removes them.';
-- what the kept inputs were made by (the catalog's feeds, the input SQL): another key makes the next refresh
-- read every record; unlogged like the inputs, so a crash that empties them empties it too
create unlogged table staged._mart_input_key (key text not null);
