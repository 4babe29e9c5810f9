-- The scorecard rows of the given landing days, recomputed from the staged accounting, rejects and GE results.
-- The per-feed aggregates are materialized first: right after a bulk load the planner has no statistics on these
-- tables, guesses one row each and re-aggregates them for every feed day in a nested loop (5 s at scale 0.01).
delete from quality.scorecard where partition_key = any(%(partitions)s);

with flagged as materialized (
       select feed_id, partition_key, count(distinct (source_file, row_number)) as rows_flagged
         from quality.rejects
        where stage = 'staged' and scope = 'value' and partition_key = any(%(partitions)s)
        group by 1, 2),
     expectations as materialized (
       select feed_id, partition_key, count(*) as total, count(*) filter (where not success) as failed
         from quality.expectation_result
        where partition_key = any(%(partitions)s)
        group by 1, 2),
     reasons as materialized (
       select feed_id, partition_key, jsonb_object_agg(reason, n) as reasons
         from (select feed_id, partition_key, reason, count(*) as n
                 from quality.rejects
                where partition_key = any(%(partitions)s)
                group by 1, 2, 3) x
        group by 1, 2)
insert into quality.scorecard (department, feed_id, partition_key, rows_read, rows_staged, rows_rejected,
                               rows_flagged, pass_rate, expectations, expectations_failed, reasons)
select a.department, a.feed_id, a.partition_key, a.rows_read, a.rows_loaded, a.rows_rejected,
       coalesce(f.rows_flagged, 0),
       case when a.rows_read = 0 then 1
            else round((a.rows_loaded - coalesce(f.rows_flagged, 0))::numeric / a.rows_read, 4) end,
       coalesce(e.total, 0), coalesce(e.failed, 0),
       coalesce(r.reasons, '{}'::jsonb)
  from (select la.*, d.department
          from quality.load_audit la
          join unnest(%(feeds)s::text[], %(departments)s::text[]) as d(feed_id, department) using (feed_id)
         where la.stage = 'staged' and la.partition_key = any(%(partitions)s)) a
  left join flagged f using (feed_id, partition_key)
  left join expectations e using (feed_id, partition_key)
  left join reasons r using (feed_id, partition_key);
