-- Work proportional to change: a link run reads only the staged partitions loaded, replaced, quarantined or
-- cleared since its last run (lib/changes.py), instead of every current record.
-- * staged tables get an index on record_key (on every partition), so a record's current version is found by key;
-- * linking's memory remembers the partition of each record's current version: a replaced partition names the
--   records it held, whose current version may now be elsewhere or gone;
-- * staged._link_dead: the records whose current version is a deletion, with its partition (one replaced or
--   quarantined brings back the version it hid);
-- * staged._seen_partition: the partitions (and their versions) a consumer (linking) read at its last run.
do $$
declare t record;
begin
    for t in select c.relname from pg_class c
              where c.relnamespace = 'staged'::regnamespace and c.relkind = 'p' loop
        execute format('create index if not exists %I on staged.%I (record_key)', t.relname || '_record_key', t.relname);
    end loop;
end $$;

truncate staged._link_input;
delete from staged._link_input_key;
alter table staged._link_input add column _partition text;

create table staged._seen_partition (
    consumer      text not null,   -- 'link'
    feed_id       text not null,
    partition_key text not null,
    version       text not null,   -- the partition's table (a re-stage makes a new one) and how the feed is read
    primary key (consumer, feed_id, partition_key)
);
comment on table staged._seen_partition is 'Per consumer (link), the staged partitions its last run read, to read only what changed next time.';
create unlogged table staged._link_dead (
    feed_id text not null, record_key text not null, _partition text not null, primary key (feed_id, record_key)
);
comment on table staged._link_dead is 'Records whose current version (in _partition) is a deletion, as linking last read them.';
