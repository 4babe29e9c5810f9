-- Current records (not deletions) per feed and landing day: feed_link_coverage.sql's current records and data
-- day, and data_service's. Read over rows of (s, a staged._mart_record row), s = 1 for a row counted in and -1
-- for one counted out; a refresh that read some records again adds the difference (lib/marts.py, ``_counts``).
select feed_id, _partition as partition_key, sum(s)::bigint as records
  from {rows}
 where alive
 group by 1, 2
