-- Link rows per feed and method: feed_link_coverage.sql's counts by method. Read over rows of (s, a
-- staged._mart_link row), s = 1 for a row counted in and -1 for one counted out; a refresh that read some
-- records again adds the difference (lib/marts.py, ``_counts``).
select feed_id, method, sum(s)::bigint as records
  from {rows}
 group by 1, 2
