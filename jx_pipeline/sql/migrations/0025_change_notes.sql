-- Work proportional to change, from what core.entity_link and core.identity_member say was written:
-- * the marts keep their inputs (staged._mart_record, every current record's date, amount and flat and whether
--   it is alive; staged._mart_link, those records with their link and master keys; lib/marts.py makes them)
--   and a refresh reads again only the records of staged partitions changed since the last one (lib/changes.py,
--   consumer 'mart') and those noted in staged._mart_change;
-- * identity resolution compares the remembered door plate of only the records noted in staged._ident_change
--   with their link (lib/identity.py), not every record's (8 s at scale 0.1 for a day's few thousand changes).
-- Triggers note the records whose rows are written, whoever writes them (linking, identity resolution, the entity
-- merge, a fix by hand); a truncate notes every record (a null key). A table swapped in whole (lib/rebuild.py) is
-- a new table whose rows no trigger saw: each consumer remembers the table (its oid) it read and reads every
-- record when it is another.
create table staged._mart_change (
    id         bigserial primary key,
    feed_id    text,   -- null: a table was truncated: the next refresh reads every record
    record_key text
);
comment on table staged._mart_change is 'Records whose link or identity changed since the last mart refresh (null: all of them), noted by triggers on core.entity_link and core.identity_member; the refresh reads and removes them.';
create table staged._ident_change (
    id         bigserial primary key,
    feed_id    text,   -- null: core.entity_link was truncated: the next run compares every record
    record_key text
);
comment on table staged._ident_change is 'Records whose core.entity_link row was written since the last identity run (null: all of them), noted by triggers; the run compares their remembered door plate with the link and removes them.';
-- what the marts' kept inputs were made from (the catalog's feeds, the input SQL, the core tables' oids):
-- another key makes the next refresh read every record; unlogged like the inputs, so a crash that empties them
-- empties it
create unlogged table staged._mart_input_key (key text not null);
create table staged._ident_link_table (relid oid not null);
comment on table staged._ident_link_table is 'The core.entity_link table (its oid) the last identity run compared; another one (a swap) makes the next run compare every record.';

-- one statement's notes: its rows' keys (old, new or both; a truncate: null) into staged._mart_change, and for
-- link rows into staged._ident_change too (a transition table is named in the statement: dynamic SQL)
create function staged.note_change() returns trigger language plpgsql as $$
declare written text;
begin
    foreach written in array case tg_op when 'INSERT' then '{new_rows}'::text[] when 'DELETE' then '{old_rows}'
                                        when 'UPDATE' then '{old_rows,new_rows}' else '{null}' end loop
        execute format('with noted as (insert into staged._mart_change (feed_id, record_key) %s'
                       ' returning feed_id, record_key)'
                       ' insert into staged._ident_change (feed_id, record_key) select * from noted where $1',
                       case when written is null then 'values (null, null)'
                            else format('select distinct feed_id, record_key from %I', written) end)
            using tg_table_name = 'entity_link';
    end loop;
    return null;
end $$;

do $$
declare t text;
begin
    foreach t in array array['entity_link', 'identity_member'] loop
        execute format('create trigger note_insert after insert on core.%I referencing new table as new_rows'
                       ' for each statement execute function staged.note_change()', t);
        execute format('create trigger note_update after update on core.%I'
                       ' referencing old table as old_rows new table as new_rows'
                       ' for each statement execute function staged.note_change()', t);
        execute format('create trigger note_delete after delete on core.%I referencing old table as old_rows'
                       ' for each statement execute function staged.note_change()', t);
        execute format('create trigger note_truncate after truncate on core.%I'
                       ' for each statement execute function staged.note_change()', t);
    end loop;
end $$;
