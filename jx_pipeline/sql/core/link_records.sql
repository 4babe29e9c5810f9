-- The records linking reads, gathered per feed by lib/linking.py inside the staged snapshot: unlogged tables in
-- the rebuild's own schema (lib/work_schema.py), which live as long as its transaction, in PostgreSQL, not Python.
create unlogged table link_rec (
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
);
create unlogged table link_dead (
    feed_id text not null, record_key text not null, _partition text not null, primary key (feed_id, record_key)
);

-- what linking reads of each gathered record (link_inputs.sql) and the votes of records a relink leaves as they
-- are (link_kept.sql; a full rebuild has none)
create unlogged table link_fp (
    feed_id    text not null,
    record_key text not null,
    fp         bigint not null,
    identity   uuid,
    _partition text not null
);
create unlogged table link_kept_vote (identity uuid, entity_id text);
-- the records of the scope that only follow their identity's vote (link_scope.sql): their own evidence is none and
-- unchanged, so they are neither read again nor run through the rules (entity_link.sql links them by the vote)
create unlogged table link_follow (feed_id text not null, record_key text not null, identity uuid not null);
