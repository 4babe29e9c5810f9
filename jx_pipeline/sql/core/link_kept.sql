-- After link_scope.sql (and, reading only what changed, the gathering of the scope's records): link_rec keeps
-- only the scope's records but its followers (link_follow: linked by the vote in entity_link.sql); the rest keep
-- their links, and those of a voting identity vote as linked last time (link_kept_vote): a record's own evidence
-- depends only on its fingerprint and the key.
delete from link_rec r
 where not exists (select 1 from link_scope s where s.feed_id = r.feed_id and s.record_key = r.record_key)
    or exists (select 1 from link_follow f where f.feed_id = r.feed_id and f.record_key = r.record_key);
analyze link_rec;

-- (link_same_identity, link_scope.sql: every remembered record of the identities the scope's records had or have,
-- a superset of those left in link_rec)
insert into link_kept_vote
select f.identity, f.entity_id
  from link_same_identity f
 where f.method not in ('identity', 'unmatched') and f.entity_id is not null
   and f.identity in (select md5(identity)::uuid from link_rec where identity is not null
                      union select identity from link_follow)
   and not exists (select 1 from link_scope s where s.feed_id = f.feed_id and s.record_key = f.record_key);
