-- Work proportional to change for identity resolution: like linking, a run reads only the staged partitions
-- loaded, replaced, quarantined or cleared since its last run (lib/changes.py, consumer 'ident'). Its memory now
-- keeps, per record, the partition of the version read and the values the rules read, so that the records sharing
-- a changed name, and the other members of a master a change touches, are read from it instead of from every
-- staged partition. Personal values: the staged layer, like the staged tables themselves.
truncate staged._ident_input;
delete from staged._ident_input_key;
alter table staged._ident_input
    add column _partition text,
    add column code       text,   -- the ID number or credit code
    add column given      text,   -- the name as delivered
    add column name_key   text,   -- organisations: the standardized name they meet by
    add column birth_date date,
    add column phone      text,
    add column entity_id  text;   -- persons: the door plate their record is linked to
comment on table staged._ident_input is 'Per current record and kind, what identity resolution read at its last run (a fingerprint, the values and the partition of the version), for the rules and secret in staged._ident_input_key.';
comment on table staged._seen_partition is 'Per consumer (link, ident), the staged partitions its last run read, to read only what changed next time.';
