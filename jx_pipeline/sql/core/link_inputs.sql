-- What linking reads of each gathered record, as a fingerprint (and its identity as a hash), to compare with the
-- last run's (staged._link_input): see link_scope.sql. The fingerprint is a 64-bit hash (a third of md5's cost
-- over every record); the identity stays md5: the vote groups by it.
create temp table link_fp on commit drop as
select feed_id, record_key,
       -- coordinates by their bytes: their text depends on the session's extra_float_digits
       hashtextextended(row(address, float8send(lon), float8send(lat), identity, entity_name, village_name)::text, 0) as fp,
       md5(identity)::uuid as identity
  from link_rec;
create unique index on link_fp (feed_id, record_key);
analyze link_fp;

-- votes of records a relink leaves as they are (link_scope.sql fills it; a full rebuild has none)
create temp table link_kept_vote (identity uuid, entity_id text) on commit drop;
