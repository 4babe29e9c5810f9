-- The memory's name index leads with the name (a hash, as uuid) instead of the kind. Every lookup is by equality
-- on both (and on the code), so it serves the same reads; but its build sorts on the uuid's abbreviated keys
-- instead of comparing the kind (two values) and then the name in full for every pair: at scale 0.1 (8.1M
-- records) 9.4 s instead of 16.9 s with two parallel workers, 16.9 s instead of 44.5 s with none. A full
-- re-resolution builds it again (lib/rebuild.py, indexes_after).
drop index staged._ident_input_name;
create index _ident_input_name on staged._ident_input (name, kind, code) include (birth_date, phone, entity_id);
