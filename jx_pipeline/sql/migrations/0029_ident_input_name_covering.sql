-- A re-resolution reads, for each (kind, name, code) of a changed record with an ID, what every remembered record
-- of it holds: birth date, phone and door plate (sql/core/identity_scope.sql, ident_held). Through the (kind,
-- name, code) index that was one heap page per record, scattered over the memory (written by feed): at scale
-- 0.1, 45,578 lookups touched 790k pages, 428k of them read from disk, 8 s to more than a minute as much or
-- little of the 1.3 GB memory was in the page cache. With those three fields in the index, a lookup reads the
-- index alone (one or two leaf pages: a name's records lie together there) wherever the memory's pages are all
-- visible; autovacuum keeps them so after each day's few changes instead of after a fifth of the table.
drop index staged._ident_input_name;
create index _ident_input_name on staged._ident_input (kind, name, code) include (birth_date, phone, entity_id);
alter table staged._ident_input set (autovacuum_vacuum_scale_factor = 0.005, autovacuum_vacuum_insert_scale_factor = 0.005);
