-- Whether linking's and identity resolution's memories still describe exactly the records of their core tables
-- (lib/fingerprints.py, Memory.known) was found by reading all four tables each run (5 s of a day's run at scale
-- 0.1, ten times that at 1.0). Triggers now keep each table's tally (rows, XOR of a 64-bit hash of each row's
-- key: lib/pg.py, key_tally) up to date from every statement's written rows, whoever writes them, and a mark
-- that changes with every statement that writes a row (``writes``: the marts keep what they take from the
-- entities until core.geo_entity or core.admin_unit is written, lib/marts.py). lib/tallies.py reads them.
-- * A table without a tally (never read, swapped in whole by lib/rebuild.py, or after a crash: the tallies are
--   unlogged like the memories) is read once, and its tally kept from then on.
-- * A truncate leaves an empty table: its tally is (0, 0).
-- * Writes with triggers disabled (session_replication_role = replica, a data-only restore with
--   --disable-triggers) are not counted: drop the table's tally row after them (delete from staged._key_tally).
create sequence staged._key_tally_writes;  -- never reset: a tally made again gets a mark never seen before
create unlogged table staged._key_tally (
    relid  oid primary key,
    rows   bigint not null,
    xor    bigint not null,
    writes bigint not null default nextval('staged._key_tally_writes')
);
comment on table staged._key_tally is 'Each table''s rows, XOR of a 64-bit hash of their keys and a mark changed by every write, kept by triggers (staged.tally_keys); no row: read the table.';

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
        insert into staged._key_tally values (tg_relid, 0, 0)
            on conflict (relid) do update set rows = 0, xor = 0, writes = nextval('staged._key_tally_writes');
        return null;
    end if;
    if not exists (select 1 from staged._key_tally where relid = tg_relid) then
        return null;  -- not tallied yet: read whole when asked
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
        update staged._key_tally
           set rows = rows + dn, xor = xor # dx, writes = nextval('staged._key_tally_writes')
         where relid = tg_relid;
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
