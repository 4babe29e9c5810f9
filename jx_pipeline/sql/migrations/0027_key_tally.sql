-- Whether linking's and identity resolution's memories still describe exactly the records of their core tables
-- (lib/fingerprints.py, Memory.known) was found by reading all four tables each run (5 s of a day's run at scale
-- 0.1, ten times that at 1.0). Triggers now keep each table's tally (rows, XOR of a 64-bit hash of each row's
-- key: lib/pg.py, key_tally) from every statement's written rows, whoever writes them; the marts also use it as a
-- mark of whether core.geo_entity or core.admin_unit was written since (lib/marts.py). lib/tallies.py reads them.
-- Append-only, so that no writer waits for another or misses a row it cannot see:
-- * a base row: the table counted whole (lib/tallies.ensure, under a SHARE lock: no writer in the middle, every
--   earlier one committed and counted), or emptied by a truncate (0, 0; the truncate holds its table alone);
-- * a delta row per statement that wrote rows: what it added and removed;
-- * the tally = the latest base + the deltas written after it (ids from one sequence: a delta written after the
--   base was counted has a larger id). A crash empties the table with the memories (unlogged): counted again.
-- Writes with triggers disabled (session_replication_role = replica, a data-only restore with
-- --disable-triggers) are not seen: a run that finds a memory out of step counts both tables again.
create sequence staged._key_tally_id;
create unlogged table staged._key_tally (
    id      bigint primary key default nextval('staged._key_tally_id'),
    relid   oid     not null,
    relname text    not null,  -- schema.table when written: a dropped table's oid reused is not mistaken for it
    base    boolean not null,
    rows    bigint  not null,
    xor     bigint  not null
);
create index _key_tally_relid on staged._key_tally (relid, id);
comment on table staged._key_tally is 'Tables'' key tallies (rows, XOR of 64-bit key hashes): a base (counted whole, or a truncate) and the deltas of the statements that wrote rows after it, written by triggers (staged.tally_keys); lib/tallies.py.';

-- the trigger's arguments are the key columns; the hash is that of pg.key_tally: hashtextextended(k1 || '|' || k2 ...)
create function staged.tally_keys() returns trigger language plpgsql as $$
declare
    joined text;
    n bigint;
    x bigint;
    dn bigint := 0;
    dx bigint := 0;
    seen bigint := 0;
begin
    if tg_op = 'TRUNCATE' then
        insert into staged._key_tally (relid, relname, base, rows, xor)
        values (tg_relid, tg_table_schema || '.' || tg_table_name, true, 0, 0);
        return null;
    end if;
    select string_agg(format('%I', a), ' || ''|'' || ') into joined from unnest(tg_argv) a;
    if tg_op in ('INSERT', 'UPDATE') then
        execute format('select count(*), coalesce(bit_xor(hashtextextended(%s, 0)), 0) from new_rows', joined)
            into n, x;
        dn := dn + n;
        dx := dx # x;
        seen := seen + n;
    end if;
    if tg_op in ('DELETE', 'UPDATE') then
        execute format('select count(*), coalesce(bit_xor(hashtextextended(%s, 0)), 0) from old_rows', joined)
            into n, x;
        dn := dn - n;
        dx := dx # x;
        seen := seen + n;
    end if;
    if seen > 0 then
        insert into staged._key_tally (relid, relname, base, rows, xor)
        values (tg_relid, tg_table_schema || '.' || tg_table_name, false, dn, dx);
    end if;
    return null;
end $$;

-- the tables tallied and their keys
do $$
declare
    t text[];
begin
    foreach t slice 1 in array array[
        ['core.entity_link', '''feed_id'', ''record_key'''],
        ['staged._link_input', '''feed_id'', ''record_key'''],
        ['core.identity_member', '''feed_id'', ''record_key'', ''kind'''],
        ['staged._ident_input', '''feed_id'', ''record_key'', ''kind'''],
        ['core.geo_entity', '''entity_id'''],
        ['core.admin_unit', '''code''']
    ] loop
        execute format('create trigger tally_insert after insert on %s referencing new table as new_rows'
                       ' for each statement execute function staged.tally_keys(%s)', t[1], t[2]);
        execute format('create trigger tally_update after update on %s'
                       ' referencing old table as old_rows new table as new_rows'
                       ' for each statement execute function staged.tally_keys(%s)', t[1], t[2]);
        execute format('create trigger tally_delete after delete on %s referencing old table as old_rows'
                       ' for each statement execute function staged.tally_keys(%s)', t[1], t[2]);
        execute format('create trigger tally_truncate after truncate on %s'
                       ' for each statement execute function staged.tally_keys(%s)', t[1], t[2]);
    end loop;
end $$;

-- what staged._mart_entity and staged._mart_class_area were made from (lib/marts.py, ``_entities``)
create unlogged table staged._mart_entity_key (key text not null);
