-- Fingerprints as 64-bit hashes (hashtextextended) instead of md5 uuids: a third of the cost of computing them
-- over every current record at each link and identity run. What was remembered is dropped: the next link and
-- identity runs redo every record once (as after a change of their rules).
truncate staged._link_input;
delete from staged._link_input_key;
alter table staged._link_input alter column fp type bigint using 0;
truncate staged._ident_input;
delete from staged._ident_input_key;
alter table staged._ident_input alter column fp type bigint using 0;
