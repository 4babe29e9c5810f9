-- What identity resolution read of each record at its last run (a fingerprint of its ID or credit code, name,
-- birth date, phone and linked door plate, and a hash of the name it meets others by), so that a run re-resolves
-- only the records new, changed or gone and those sharing a name with them. Valid for the rules and the pseudonym
-- secret in staged._ident_input_key. Hashes of names and IDs are still personal: the staged layer.
create table staged._ident_input (
    feed_id    text not null,
    record_key text not null,
    kind       text not null,
    fp         uuid not null,
    name       uuid,                   -- md5 of the name (organisations: of the standardized name)
    primary key (feed_id, record_key, kind)
);
create index _ident_input_name on staged._ident_input (kind, name);
create table staged._ident_input_key (key text not null);
comment on table staged._ident_input is 'Per current record and kind, a fingerprint of what identity resolution read at its last run, for the rules and secret in staged._ident_input_key.';
