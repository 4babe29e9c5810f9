-- The records identity resolution reads, gathered per feed by lib/identity.py inside the staged snapshot.
-- Temporary: they live as long as the rebuild's transaction, in PostgreSQL's memory and temp files, not Python's.
create temp table ident_person (
    feed_id     text not null,
    record_key  text not null,
    id_number   text,
    name        text,
    birth_date  date,
    phone       text,
    entity_id   text
) on commit drop;
create temp table ident_org (
    feed_id     text not null,
    record_key  text not null,
    credit_code text,
    name        text
) on commit drop;
-- the pseudonym key, sent by COPY (never in a statement's text, so never in a server log)
create temp table ident_secret (k bytea not null) on commit drop;
