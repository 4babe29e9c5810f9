-- Linked records per entity and department, by domain, and the latest record date: the entity profile's counts
-- (geo_entity_profile.sql). Read over {rows}: (s, a staged._mart_link row), s = 1 for a row counted in and -1
-- for one counted out; a refresh that read some records again adds the difference (sums_delta.sql).
select entity_id, department, sum(s) as n,
       coalesce(sum(s) filter (where domain = 'population'), 0)   as population,
       coalesce(sum(s) filter (where domain = 'legal_person'), 0) as legal_person,
       coalesce(sum(s) filter (where domain = 'economy'), 0)      as economy,
       coalesce(sum(s) filter (where domain = 'other'), 0)        as other,
       max(record_date) filter (where s > 0)                      as last_record_date,
       max(record_date) filter (where s < 0)                      as gone_last
  from {rows}
 where entity_id is not null
 group by 1, 2
