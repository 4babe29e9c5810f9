-- The records identity resolution reads, gathered per feed by lib/identity.py inside the staged snapshot: every
-- current record, or those of the partitions changed since its last run.
-- Unlogged tables in the rebuild's own schema (lib/work_schema.py): they live as long as its transaction, in
-- PostgreSQL, not Python.
create unlogged table ident_person (
    feed_id     text not null,
    record_key  text not null,
    id_number   text,
    name        text,
    birth_date  date,
    phone       text,
    entity_id   text,
    _partition  text not null,  -- of the version read (lib/changes.py)
    resolve     boolean not null default true  -- false: an ID holder read only for the per-name keys
);
create unlogged table ident_org (
    feed_id     text not null,
    record_key  text not null,
    credit_code text,
    name        text,
    _partition  text not null,
    resolve     boolean not null default true  -- false: a code holder read only for the per-name keys
);
-- the pseudonym key, sent by COPY (never in a statement's text, so never in a server log); temporary, in the
-- session's own memory, never in a shared buffer another session could page out to a table's file
create temp table ident_secret (k bytea not null) on commit drop;
