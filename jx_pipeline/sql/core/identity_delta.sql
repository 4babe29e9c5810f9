-- A re-resolution: what staged._ident_input remembers of the records read (ident_want), for identity_scope.sql;
-- lib/identity.py runs it with joins by index when they are few (lib/fingerprints.py, Memory.by_key).
create unlogged table ident_known as
select o.* from staged._ident_input o join ident_want w using (feed_id, record_key);
