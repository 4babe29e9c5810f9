-- The records linking reads, gathered per feed by lib/linking.py inside the staged snapshot (temporary: they
-- live as long as the rebuild's transaction, in PostgreSQL's memory and temp files, not Python's).
create temp table link_rec (
    feed_id      text not null,
    record_key   text not null,
    address      text,
    lon          double precision,
    lat          double precision,
    identity     text,
    entity_name  text,
    village_name text,
    _partition   text not null,     -- of the record's current version (lib/changes.py)
    dead         boolean not null   -- a deletion (lib/linking.py moves it to link_dead)
) on commit drop;
create temp table link_dead (
    feed_id text not null, record_key text not null, _partition text not null, primary key (feed_id, record_key)
) on commit drop;

-- what linking reads of each gathered record (link_inputs.sql) and the votes of records a relink leaves as they
-- are (link_kept.sql; a full rebuild has none)
create temp table link_fp (
    feed_id    text not null,
    record_key text not null,
    fp         bigint not null,
    identity   uuid,
    _partition text not null
) on commit drop;
create temp table link_kept_vote (identity uuid, entity_id text) on commit drop;
