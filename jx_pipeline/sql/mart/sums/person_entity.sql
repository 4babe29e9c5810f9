-- Each person at each entity their population records are linked to, with how many, the latest and the flat
-- written most often (inputs.sql finds each person's home from them; the marts count these pairs too).
select person_key, entity_id, count(*) as n, max(record_date) as last, mode() within group (order by flat) as flat
  from {rows}
 where person_key is not null and entity_id is not null and {only}
 group by 1, 2
