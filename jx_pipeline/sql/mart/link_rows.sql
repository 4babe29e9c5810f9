-- The rows of staged._mart_link: current records not deleted ({records}: staged._mart_record, or a refresh's new
-- versions of the records it reads again) with the entity each one is linked to and the person / organisation they belong
-- to; a record without a link row yet is left out (entity_link rows of records no longer current, or of
-- quarantined partitions, drop out here). lib/marts.py fills {records} in and makes the table of it or inserts
-- into it.
select l.feed_id, l.record_key, l.entity_id, l.method, f.domain, f.department, r.record_date, r.amount, r.flat,
       p.master_key as person_key, o.master_key as org_key
  from core.entity_link l
  join {records} r on r.feed_id = l.feed_id and r.record_key = l.record_key
  join staged._mart_feed f on f.feed_id = l.feed_id
  left join core.identity_member p
    on p.feed_id = l.feed_id and p.record_key = l.record_key and p.kind = 'person' and f.domain = 'population'
  left join core.identity_member o
    on o.feed_id = l.feed_id and o.record_key = l.record_key and o.kind = 'legal_person'
 where r.alive
