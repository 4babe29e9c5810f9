-- What linking read of each record at its last run (a fingerprint of its address, coordinates, identity and names,
-- and a hash of its identity), so that a run relinks only the records that are new, changed or gone, and those
-- sharing an identity with them (the identity vote reads them all). Valid for the rules, the parser and the
-- entities in staged._link_input_key. A hash of an ID number is still personal: it stays in the staged layer.
create table staged._link_input (
    feed_id    text not null,
    record_key text not null,
    fp         uuid not null,          -- md5 of the row of fields linking reads
    identity   uuid,                   -- md5 of the ID number or credit code
    primary key (feed_id, record_key)
);
create index _link_input_identity on staged._link_input (identity);
create table staged._link_input_key (key text not null);
comment on table staged._link_input is 'Per current record, a fingerprint of what linking read at its last run, for the rules and entities in staged._link_input_key.';
