-- Identity resolution finds the remembered records of a name and ID number (or credit code) by index: a changed
-- record moves its name's per-name keys only when no other record holds its (key, ID) pair
-- (sql/core/identity_scope.sql). The (kind, name) index gains the code; it still serves lookups by name.
drop index staged._ident_input_name;
create index _ident_input_name on staged._ident_input (kind, name, code);
