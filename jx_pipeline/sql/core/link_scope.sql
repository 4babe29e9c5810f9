-- The records a relink must link again (link_scope): new, changed or gone since the last run, by the fingerprint
-- of what linking reads (link_known: what staged._link_input remembers of the records read), and the current
-- records sharing an identity with one of them, old or new, that take their entity from the identity vote (linked
-- last time by 'identity' or 'unmatched'; found among the remembered records by their identity: link_follow, not
-- read again). link_kept.sql then keeps in link_rec only the scope's records that are not followers. link_known
-- and link_links (core.entity_link of the records read) are link_whole.sql's or link_delta.sql's.
-- A current record without its link row, or a link row of no current record and nothing remembered (lost, or
-- written astray by hand), counts as changed too: a relink repairs the table as a full rebuild would.
create unlogged table link_scope as
select coalesce(n.feed_id, o.feed_id) as feed_id, coalesce(n.record_key, o.record_key) as record_key,
       n.identity as new_identity, o.identity as old_identity
  from link_fp n
  full join link_known o on o.feed_id = n.feed_id and o.record_key = n.record_key
 where n.fp is distinct from o.fp
    or (n.feed_id is not null and not exists
          (select 1 from core.entity_link l where l.feed_id = n.feed_id and l.record_key = n.record_key))
union all
select l.feed_id, l.record_key, null, null
  from link_links l
 where not exists (select 1 from link_fp f where f.feed_id = l.feed_id and f.record_key = l.record_key)
   and not exists (select 1 from link_known i where i.feed_id = l.feed_id and i.record_key = l.record_key);
-- those whose fingerprints differ: the only ones the memory writes again (lib/fingerprints.py)
create unlogged table link_changed as select feed_id, record_key from link_scope;
-- every remembered record of those identities with its link, in one pass: the followers come from it here, the
-- votes of the records left as they are in link_kept.sql (two passes over both tables took 4.6 s + 6.8 s at 0.1)
create unlogged table link_ids as
select new_identity as identity from link_scope where new_identity is not null
union
select old_identity from link_scope where old_identity is not null;
analyze link_ids;
create unlogged table link_same_identity as
select f.feed_id, f.record_key, f.identity, l.method, l.entity_id
  from staged._link_input f
  join core.entity_link l on l.feed_id = f.feed_id and l.record_key = f.record_key
 where f.identity in (select identity from link_ids);
-- the followers: remembered as they are (fingerprint unchanged), linked by their identity's vote or unmatched
insert into link_follow
select f.feed_id, f.record_key, f.identity
  from link_same_identity f
 where f.method in ('identity', 'unmatched')
   and not exists (select 1 from link_scope s where s.feed_id = f.feed_id and s.record_key = f.record_key);
insert into link_scope (feed_id, record_key) select feed_id, record_key from link_follow;
create unique index on link_scope (feed_id, record_key);
analyze link_scope;
