-- Each organisation at each entity its records of any domain are linked to, with how many and the latest
-- (inputs.sql finds each organisation's seat from them).
select org_key, entity_id, count(*) as n, max(record_date) as last
  from {rows}
 where org_key is not null and entity_id is not null and {only}
 group by 1, 2
