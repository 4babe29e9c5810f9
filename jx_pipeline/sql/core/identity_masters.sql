-- The masters, written by lib/rebuild.py: each named by its own records (the most frequent name and birth date)
-- and counted by all. Its members are the memberships just resolved (ident_member) and, on a re-resolution, the
-- other members of the masters they touch (ident_other_member, identity_touched.sql); none on a full rebuild.
create temp table if not exists ident_other_member (
    kind text, master_key text, method text, code text, name text, birth_date date
) on commit drop;
create temp table person_new (like core.person including defaults) on commit drop;
insert into person_new (person_key, id_number, name, birth_date, records)
select master_key, max(code),
       mode() within group (order by name) filter (where method in ('id_number', 'name_key', 'singleton')),
       mode() within group (order by birth_date) filter (where method in ('id_number', 'name_key', 'singleton')),
       count(*)
  from (select kind, master_key, method, code, name, birth_date from ident_member
        union all select * from ident_other_member) m
 where kind = 'person' group by master_key;
create temp table legal_person_new (like core.legal_person including defaults) on commit drop;
insert into legal_person_new (org_key, credit_code, name, records)
select master_key, max(code),
       mode() within group (order by name) filter (where method in ('credit_code', 'singleton')),
       count(*)
  from (select kind, master_key, method, code, name, birth_date from ident_member
        union all select * from ident_other_member) m
 where kind = 'legal_person' group by master_key;
