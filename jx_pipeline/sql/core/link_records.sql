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
    village_name text
) on commit drop;
