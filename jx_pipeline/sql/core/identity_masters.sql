-- The masters, written by lib/rebuild.py: each named by its own records (the most frequent name and birth date,
-- the first in order of equally frequent ones, as mode() takes it) and counted by all. Read from its members
-- grouped by method, code, name and birth date with their count (ident_naming_new): every membership's on a full
-- resolution, the touched masters' on a re-resolution (identity_touched.sql); kept in staged._ident_naming.
create unlogged table if not exists ident_naming_new as
select kind, master_key, method, code, name, birth_date, count(*)::int as n
  from ident_member group by 1, 2, 3, 4, 5, 6;
-- the members a master is named by: those with its ID or code, or standing on their own key or alone (a person's
-- methods and an organisation's differ but for singleton)
create unlogged table ident_named_by as
select kind, master_key, name, birth_date, n from ident_naming_new
 where method in ('id_number', 'name_key', 'singleton', 'credit_code');
create unlogged table ident_master_name as
select distinct on (kind, master_key) kind, master_key, name
  from (select kind, master_key, name, sum(n) as w from ident_named_by where name is not null group by 1, 2, 3) x
 order by kind, master_key, w desc, name;
create unlogged table ident_master_birth as
select distinct on (master_key) master_key, birth_date
  from (select master_key, birth_date, sum(n) as w from ident_named_by
         where kind = 'person' and birth_date is not null group by 1, 2) x
 order by master_key, w desc, birth_date;
create unlogged table ident_master_count as
select kind, master_key, max(code) as code, sum(n) as records from ident_naming_new group by 1, 2;
create unlogged table person_new (like core.person including defaults);
insert into person_new (person_key, id_number, name, birth_date, records)
select m.master_key, m.code, n.name, b.birth_date, m.records
  from ident_master_count m
  left join ident_master_name n using (kind, master_key)
  left join ident_master_birth b using (master_key)
 where m.kind = 'person';
create unlogged table legal_person_new (like core.legal_person including defaults);
insert into legal_person_new (org_key, credit_code, name, records)
select m.master_key, m.code, n.name, m.records
  from ident_master_count m
  left join ident_master_name n using (kind, master_key)
 where m.kind = 'legal_person';
