-- Work proportional to change for the marts: their inputs (staged._mart_record, every current record's date,
-- amount and flat; staged._mart_link, those records with their link and master keys) are kept between refreshes
-- (lib/marts.py makes them) and a refresh reads again only the records of staged partitions changed since the
-- last one (lib/changes.py, consumer 'mart') and those whose link or identity changed, which these triggers note
-- whoever writes core.entity_link or core.identity_member (linking, identity resolution, the entity merge, an
-- engineer's fix by hand). A table swapped in whole (lib/rebuild.py) is a new table: the refresh's key holds
-- the tables' oids, and another one makes it read every record.
create table staged._mart_change (
    id         bigserial primary key,
    feed_id    text,   -- null: the table was truncated: the next refresh reads every record
    record_key text
);
comment on table staged._mart_change is 'Records whose link or identity changed since the last mart refresh (null: all of them), noted by triggers on core.entity_link and core.identity_member; the refresh reads and removes them.';
-- what the kept inputs were made from (the catalog's feeds, the input SQL, the core tables' oids): another key
-- makes the next refresh read every record; unlogged like the inputs, so a crash that empties them empties it
create unlogged table staged._mart_input_key (key text not null);

create function staged.note_mart_change() returns trigger language plpgsql as $$
begin
    if tg_op = 'TRUNCATE' then
        insert into staged._mart_change (feed_id, record_key) values (null, null);
        return null;
    end if;
    if tg_op in ('UPDATE', 'DELETE') then
        insert into staged._mart_change (feed_id, record_key) select distinct feed_id, record_key from old_rows;
    end if;
    if tg_op in ('UPDATE', 'INSERT') then
        insert into staged._mart_change (feed_id, record_key) select distinct feed_id, record_key from new_rows;
    end if;
    return null;
end $$;

do $$
declare t text;
begin
    foreach t in array array['entity_link', 'identity_member'] loop
        execute format('create trigger mart_change_insert after insert on core.%I referencing new table as new_rows'
                       ' for each statement execute function staged.note_mart_change()', t);
        execute format('create trigger mart_change_update after update on core.%I'
                       ' referencing old table as old_rows new table as new_rows'
                       ' for each statement execute function staged.note_mart_change()', t);
        execute format('create trigger mart_change_delete after delete on core.%I referencing old table as old_rows'
                       ' for each statement execute function staged.note_mart_change()', t);
        execute format('create trigger mart_change_truncate after truncate on core.%I'
                       ' for each statement execute function staged.note_mart_change()', t);
    end loop;
end $$;
