-- Each entity's economy records per feed, with the sum of their amounts (admin_unit_profile.sql adds them up
-- per unit; a sum over no amount is null, as it is per unit).
select entity_id, feed_id, count(*) as n, sum(amount) as amount
  from {rows}
 where domain = 'economy' and entity_id is not null and {only}
 group by 1, 2
