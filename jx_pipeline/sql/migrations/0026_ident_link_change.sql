-- Identity resolution reads again the person records whose link (their door plate) changed since its last run.
-- It found them by comparing every remembered door plate with core.entity_link (8 s at scale 0.1 for a day's
-- few thousand changes); now triggers note the records whose link row is written, whoever writes it, and a run
-- compares only those (lib/identity.py). A table swapped in whole (lib/rebuild.py) is a new table, its rows not
-- noted: the run remembers which table it read (staged._ident_link_table) and compares every record after a swap.
create table staged._ident_change (
    id         bigserial primary key,
    feed_id    text,   -- null: core.entity_link was truncated: the next run compares every record
    record_key text
);
comment on table staged._ident_change is 'Records whose core.entity_link row was written since the last identity run (null: all of them), noted by triggers; the run compares their remembered door plate with the link and removes them.';
create table staged._ident_link_table (relid oid not null);
comment on table staged._ident_link_table is 'The core.entity_link table (its oid) the last identity run read; another one (a swap) makes the next run compare every record.';

create function staged.note_ident_change() returns trigger language plpgsql as $$
begin
    if tg_op = 'TRUNCATE' then
        insert into staged._ident_change (feed_id, record_key) values (null, null);
        return null;
    end if;
    if tg_op in ('UPDATE', 'DELETE') then
        insert into staged._ident_change (feed_id, record_key) select distinct feed_id, record_key from old_rows;
    end if;
    if tg_op in ('UPDATE', 'INSERT') then
        insert into staged._ident_change (feed_id, record_key) select distinct feed_id, record_key from new_rows;
    end if;
    return null;
end $$;

create trigger ident_change_insert after insert on core.entity_link referencing new table as new_rows
    for each statement execute function staged.note_ident_change();
create trigger ident_change_update after update on core.entity_link referencing old table as old_rows new table as new_rows
    for each statement execute function staged.note_ident_change();
create trigger ident_change_delete after delete on core.entity_link referencing old table as old_rows
    for each statement execute function staged.note_ident_change();
create trigger ident_change_truncate after truncate on core.entity_link
    for each statement execute function staged.note_ident_change();
