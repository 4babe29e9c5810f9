-- On a re-resolution: the masters the scope's records left or joined (ident_touched_person / _org, the keys
-- lib/rebuild.py writes), and their other members as they are in core.identity_member, with the fields the
-- master is named from taken from the gathered records (ident_other_member, read by identity_masters.sql).
-- the records of the scope's names that were read for the per-name keys keep their memberships as they are
delete from ident_member m
 where not exists (select 1 from ident_scope s where (s.feed_id, s.record_key, s.kind) = (m.feed_id, m.record_key, m.kind));
delete from identity_member_new m
 where not exists (select 1 from ident_scope s where (s.feed_id, s.record_key, s.kind) = (m.feed_id, m.record_key, m.kind));

create temp table ident_touched on commit drop as
select kind, master_key from ident_member
union
select m.kind, m.master_key
  from core.identity_member m join ident_scope s using (feed_id, record_key, kind);
create temp table ident_touched_person on commit drop as
select master_key as person_key from ident_touched where kind = 'person';
create temp table ident_touched_org on commit drop as
select master_key as org_key from ident_touched where kind = 'legal_person';

create temp table ident_other_member on commit drop as
select m.kind, m.master_key, m.method,
       case when m.method = 'id_number' then p.id_number when m.method = 'credit_code' then o.credit_code end as code,
       coalesce(p.name, o.name) as name, p.birth_date
  from core.identity_member m
  join ident_touched t on (t.kind, t.master_key) = (m.kind, m.master_key)
  left join ident_person_all p on m.kind = 'person' and (p.feed_id, p.record_key) = (m.feed_id, m.record_key)
  left join ident_org_named_all o
    on m.kind = 'legal_person' and (o.feed_id, o.record_key) = (m.feed_id, m.record_key)
 where not exists (select 1 from ident_scope s
                    where (s.feed_id, s.record_key, s.kind) = (m.feed_id, m.record_key, m.kind));
