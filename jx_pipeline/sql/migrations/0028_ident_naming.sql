-- What names and counts each master (sql/core/identity_masters.sql): its members grouped by method, ID or credit
-- code, name and birth date, with how many. A re-resolution brings the rows of the masters it touches up to date
-- from the members that joined or left them, instead of reading every other member of those masters again
-- (scale 0.1: 0.6M members of 47k masters from 8.1M memberships and 8.1M remembered records, 7.7-9.1 s).
-- Personal data (names, IDs): the staged layer. Unlogged like the memory it goes with (staged._ident_input):
-- emptied by a crash, then the next run resolves every record and writes it whole.
create unlogged table staged._ident_naming (
    kind        text not null,
    master_key  text not null,
    method      text not null,
    code        text,
    name        text,
    birth_date  date,
    n           integer not null check (n > 0)
);
create index _ident_naming_master on staged._ident_naming (kind, master_key);
comment on table staged._ident_naming is 'Per master: its members grouped by method, ID or credit code, name and birth date, with their count (what names and counts it); kept by identity resolution with staged._ident_input.';
