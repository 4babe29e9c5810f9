-- The records a re-resolution must resolve again (ident_scope). It read only the records of the staged
-- partitions changed since the last run and those whose link changed (ident_want, lib/identity.py), and
-- what the memory holds of them (ident_known, identity_delta.sql). Of those:
-- the ones new, changed or gone, by the fingerprint of what the rules read (staged._ident_input). Then every
-- current record of the same kind without an ID or credit code sharing a name with one of them, old or new:
-- such a record meets masters by name (with its birth date, phone or door plate, or alone), so a change can
-- move only records of its own names. The records of those names not read are taken from the memory, where
-- they are as they were. A record's ID alone decides its master: the records with an ID of those names are
-- read for the per-name keys but not resolved again. The masters the scope's records leave or join are named
-- and counted again (identity_masters.sql).
-- ident_fp's key for the joins below, built here: a full resolution joins it by none (7 s at scale 0.1)
create unique index on ident_fp (feed_id, record_key, kind);
-- (a record read without a membership counts as changed: a run repairs it)
create unlogged table ident_changed as
select coalesce(n.feed_id, o.feed_id) as feed_id, coalesce(n.record_key, o.record_key) as record_key,
       coalesce(n.kind, o.kind) as kind, n.name as new_name, o.name as old_name,
       n.feed_id is not null and n.code is null as new_keyless, o.feed_id is not null and o.code is null as old_keyless
  from ident_fp n
  full join ident_known o on (o.feed_id, o.record_key, o.kind) = (n.feed_id, n.record_key, n.kind)
 where n.fp is distinct from o.fp
    or (n.feed_id is not null and not exists
          (select 1 from core.identity_member m
            where (m.feed_id, m.record_key, m.kind) = (n.feed_id, n.record_key, n.kind)));

-- the names a change can move. A record without an ID or credit code meets others by its name: its names, old
-- and new. A record with one moves only the per-name keys (identity.sql: the one ID of a name, of a name and
-- birth date, phone or door plate; of an organisation's standardized name), and only when it adds a (key, ID)
-- pair no remembered record held, or takes away one no record holds after: a day's new record of a person
-- already known with the same name and keys moves none (scale 0.1: most of 37k names, each read whole below).
-- The changed records' pairs, old (-1) and new (+1) versions:
create unlogged table ident_pairs as
select r.kind, r.name, r.code, x.part, x.v, sum(r.sign)::int as delta
  from (select n.kind, n.name, n.code, 1 as sign, n.birth_date::text as b, n.phone as p, n.entity_id as e
          from ident_fp n join ident_changed c using (feed_id, record_key, kind)
         where n.code is not null and n.name is not null
        union all
        select o.kind, o.name, o.code, -1, o.birth_date::text, o.phone, o.entity_id
          from ident_known o join ident_changed c using (feed_id, record_key, kind)
         where o.code is not null and o.name is not null) r
 cross join lateral (values ('n', null), ('b', r.b), ('p', r.p), ('e', r.e)) x(part, v)
 where x.part = 'n' or (r.kind = 'person' and x.v is not null)
 group by 1, 2, 3, 4, 5;
-- the remembered records (the old versions of all) of those names and codes, found one (kind, name, code) at a
-- time by the memory's index (lateral: a hash join would read all 8.1M at scale 0.1)
create unlogged table ident_held as
select m.*
  from (select distinct kind, name, code from ident_pairs) t
 cross join lateral (select i.kind, i.name, i.code, i.birth_date::text as b, i.phone as p, i.entity_id as e
                       from staged._ident_input i
                      where (i.kind, i.name, i.code) = (t.kind, t.name, t.code)) m;
-- statistics for the join below: without them the planner took 608k held rows for 261k and had each parallel
-- worker sort all of them for a merge join (2.3 s at scale 0.1)
analyze ident_pairs, ident_held;
create unlogged table ident_names as
select kind, new_name as name from ident_changed where new_keyless and new_name is not null
union
select kind, old_name from ident_changed where old_keyless and old_name is not null
union
select p.kind, p.name
  from ident_pairs p
  left join ident_held h
    on (h.kind, h.name, h.code) = (p.kind, p.name, p.code)
   and (p.part = 'n' or (p.part = 'b' and h.b = p.v) or (p.part = 'p' and h.p = p.v) or (p.part = 'e' and h.e = p.v))
 group by p.kind, p.name, p.code, p.part, p.v, p.delta
having (count(h.code) = 0) <> (count(h.code) + p.delta = 0);
analyze ident_names;
-- the records read that the rules need (changed, or of those names: the others keep their memberships); of those
-- of the names, the ones with an ID or credit code are read for the per-name keys only (resolve false)
create unlogged table ident_read_named as
select f.feed_id, f.record_key, f.kind, f.code is null as keyless
  from ident_fp f join ident_names c on (c.kind, c.name) = (f.kind, f.name);
delete from ident_person p
 where not exists (select 1 from ident_changed c
                    where (c.feed_id, c.record_key, c.kind) = (p.feed_id, p.record_key, 'person'))
   and not exists (select 1 from ident_read_named n
                    where (n.feed_id, n.record_key, n.kind) = (p.feed_id, p.record_key, 'person'));
delete from ident_org_named o
 where not exists (select 1 from ident_changed c
                    where (c.feed_id, c.record_key, c.kind) = (o.feed_id, o.record_key, 'legal_person'))
   and not exists (select 1 from ident_read_named n
                    where (n.feed_id, n.record_key, n.kind) = (o.feed_id, o.record_key, 'legal_person'));
update ident_person p set resolve = false
 where p.id_number is not null
   and not exists (select 1 from ident_changed c
                    where (c.feed_id, c.record_key, c.kind) = (p.feed_id, p.record_key, 'person'));
update ident_org_named o set resolve = false
 where o.credit_code is not null
   and not exists (select 1 from ident_changed c
                    where (c.feed_id, c.record_key, c.kind) = (o.feed_id, o.record_key, 'legal_person'));

-- the other records of those names, as remembered (not read: their partitions did not change); those without
-- an ID or credit code are resolved again, and remembered again from here
create unlogged table ident_from_memory as
select m.*
  from staged._ident_input m
  join ident_names c on (c.kind, c.name) = (m.kind, m.name)
 where not exists (select 1 from ident_want w where (w.feed_id, w.record_key) = (m.feed_id, m.record_key));
insert into ident_person (feed_id, record_key, id_number, name, birth_date, phone, entity_id, _partition, resolve)
select feed_id, record_key, code, given, birth_date, phone, entity_id, _partition, code is null
  from ident_from_memory where kind = 'person';
insert into ident_org_named (feed_id, record_key, credit_code, name, _partition, resolve, name_key)
select feed_id, record_key, code, given, _partition, code is null, name_key
  from ident_from_memory where kind = 'legal_person';
insert into ident_fp select * from ident_from_memory where code is null;
analyze ident_person, ident_org_named;

create unlogged table ident_scope as
select feed_id, record_key, kind from ident_changed
union
select feed_id, record_key, kind from ident_read_named where keyless
union
select feed_id, record_key, kind from ident_from_memory where code is null;
create unique index on ident_scope (feed_id, record_key, kind);
analyze ident_scope;
-- the rules resolve the scope's records (resolve true), with the per-name keys made of every record of their
-- names (all are there).
