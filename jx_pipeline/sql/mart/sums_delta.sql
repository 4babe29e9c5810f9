-- What a refresh that read some records again changes in the kept sums (sql/mart/sums/), from the link rows it
-- removed (mart_link_gone) and added (mart_link_came), lib/marts.py. The entity sums add the difference
-- (mart_entity_delta); the sums per person, organisation and economy entity are made again for the keys those
-- rows touch, from all their rows, read in one pass (mart_link_touched).
create unlogged table mart_touched as
select distinct t.sum, t.key
  from (select * from mart_link_gone union all select * from mart_link_came) l
  cross join lateral (values ('_mart_person_entity', l.person_key), ('_mart_org_entity', l.org_key),
                             ('_mart_economy', case when l.domain = 'economy' then l.entity_id end)) t (sum, key)
 where t.key is not null;
analyze mart_touched;

-- the entity groups whose latest date may have left with a row counted out (none as late came in): read again
create unlogged table mart_recheck as
select d.entity_id, d.department
  from mart_entity_delta d join staged._mart_entity_sum t using (entity_id, department)
 where d.gone_last >= t.last_record_date and (d.last_record_date is null or d.last_record_date < t.last_record_date);
analyze mart_recheck;

create unlogged table mart_link_touched as
select l.* from staged._mart_link l
 where l.person_key in (select key from mart_touched where sum = '_mart_person_entity')
    or l.org_key in (select key from mart_touched where sum = '_mart_org_entity')
    or (l.domain = 'economy' and l.entity_id in (select key from mart_touched where sum = '_mart_economy'))
    or (l.entity_id, l.department) in (select entity_id, department from mart_recheck);
analyze mart_link_touched;

insert into staged._mart_entity_sum as t
select entity_id, department, n, population, legal_person, economy, other, last_record_date from mart_entity_delta
    on conflict (entity_id, department) do update
   set n = t.n + excluded.n, population = t.population + excluded.population,
       legal_person = t.legal_person + excluded.legal_person, economy = t.economy + excluded.economy,
       other = t.other + excluded.other,
       last_record_date = greatest(t.last_record_date, excluded.last_record_date);
delete from staged._mart_entity_sum t using mart_entity_delta d
 where (t.entity_id, t.department) = (d.entity_id, d.department) and t.n = 0;
update staged._mart_entity_sum t set last_record_date = x.last
  from (select r.entity_id, r.department, max(l.record_date) as last
          from mart_recheck r left join mart_link_touched l using (entity_id, department) group by 1, 2) x
 where (t.entity_id, t.department) = (x.entity_id, x.department);
