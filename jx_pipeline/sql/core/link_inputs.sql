-- What linking reads of each gathered record not yet fingerprinted, as a fingerprint (and its identity as a hash),
-- to compare with the last run's (staged._link_input): see link_scope.sql. The fingerprint is a 64-bit hash (a
-- third of md5's cost over every record); the identity stays md5: the vote groups by it.
insert into link_fp
select feed_id, record_key,
       -- coordinates by their bytes: their text depends on the session's extra_float_digits
       hashtextextended(row(address, float8send(lon), float8send(lat), identity, entity_name, village_name)::text, 0),
       md5(identity)::uuid, _partition
  from link_rec r
 where %(first)s  -- the first insert: link_fp is empty (no anti-join over every record)
    or not exists (select 1 from link_fp f where (f.feed_id, f.record_key) = (r.feed_id, r.record_key));
analyze link_fp;
