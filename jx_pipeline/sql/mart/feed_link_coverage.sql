-- Per department and feed: current records, how many were linked by each method, the unmatched share and the
-- staged pass rate — how much of each department's data is attached to the map — and what was left out.
create table mart.feed_link_coverage__next as
with cur as (  -- kept per feed and day (sql/mart/sums/feed_day.sql): a day's refresh reads no record for them
    select feed_id, sum(records) as records, max(partition_key) as data_day from staged._mart_feed_day group by 1
), link as (  -- kept per feed and method (sql/mart/sums/feed_method.sql)
    select feed_id,
           sum(records) filter (where method = 'address_exact')      as address_exact,
           sum(records) filter (where method = 'address_fuzzy')      as address_fuzzy,
           sum(records) filter (where method = 'name_in_village')    as name_in_village,
           sum(records) filter (where method = 'coordinate_polygon') as coordinate_polygon,
           sum(records) filter (where method = 'coordinate_nearest') as coordinate_nearest,
           sum(records) filter (where method = 'identity')           as identity,
           sum(records) filter (where method = 'outside_city')       as outside_city,
           sum(records) filter (where method = 'unmatched')          as unmatched,
           sum(records)                                              as rows
      from staged._mart_feed_method group by 1
), quality as (  -- the staged pass rate over the partitions that are published (quarantined ones left out)
    select s.feed_id, count(*) as partitions,
           round(case when sum(s.rows_read) = 0 then 1 else sum(s.pass_rate * s.rows_read) / sum(s.rows_read) end, 4)
               as pass_rate
      from quality.scorecard s
     where not exists (select 1 from mart_quarantine q where q.feed_id = s.feed_id and q.partition_key = s.partition_key)
     group by 1
), quarantined as (
    select feed_id, count(*) as partitions,
           array_agg(partition_key || ': ' || reason order by partition_key) as reasons
      from mart_quarantine group by 1
)
select f.department, f.department_name, f.feed_id, f.feed_name, f.feed_name_en, f.domain,
       coalesce(c.records, 0)::int as current_records,
       (coalesce(l.rows, 0) - coalesce(l.outside_city, 0) - coalesce(l.unmatched, 0))::int as linked_records,
       coalesce(l.address_exact, 0)::int as linked_address_exact,
       coalesce(l.address_fuzzy, 0)::int as linked_address_fuzzy,
       coalesce(l.name_in_village, 0)::int as linked_name_in_village,
       coalesce(l.coordinate_polygon, 0)::int as linked_coordinate_polygon,
       coalesce(l.coordinate_nearest, 0)::int as linked_coordinate_nearest,
       coalesce(l.identity, 0)::int as linked_identity,
       coalesce(l.outside_city, 0)::int as outside_city,
       coalesce(l.unmatched, 0)::int as unmatched,
       (coalesce(c.records, 0) - coalesce(l.rows, 0))::int as not_linked_yet,
       round(coalesce(l.unmatched, 0)::numeric / nullif(c.records, 0), 4) as unmatched_share,
       round((coalesce(l.rows, 0) - coalesce(l.outside_city, 0) - coalesce(l.unmatched, 0))::numeric
             / nullif(c.records, 0), 4) as link_rate,
       q.pass_rate as staged_pass_rate,
       coalesce(q.partitions, 0)::int as partitions_published,
       coalesce(x.partitions, 0)::int as partitions_quarantined,
       coalesce(x.reasons, '{}') as quarantine_reasons,
       c.data_day::date as data_day
  from staged._mart_feed f
  left join cur c using (feed_id)
  left join link l using (feed_id)
  left join quality q using (feed_id)
  left join quarantined x using (feed_id);

alter table mart.feed_link_coverage__next add primary key (feed_id);

comment on table mart.feed_link_coverage__next is '数据挂接覆盖率 — Feed link coverage. Per department and feed: current records, linked to a geographic entity by each method, unmatched share, staged pass rate and the partitions left out by quarantine: how much of each department''s data is attached to the map.';
comment on column mart.feed_link_coverage__next.department is '部门代码 — Department code of the catalog (e.g. gaj).';
comment on column mart.feed_link_coverage__next.department_name is '部门名称 — Department name (e.g. 公安局).';
comment on column mart.feed_link_coverage__next.feed_id is '数据项编码 — Feed id of the catalog.';
comment on column mart.feed_link_coverage__next.feed_name is '数据项名称 — Chinese name of the feed.';
comment on column mart.feed_link_coverage__next.feed_name_en is '数据项英文名 — English name of the feed.';
comment on column mart.feed_link_coverage__next.domain is '数据域 — population, legal_person, economy or other.';
comment on column mart.feed_link_coverage__next.current_records is '当前记录数 — Records in their latest version, not deleted, from published (not quarantined) partitions.';
comment on column mart.feed_link_coverage__next.linked_records is '已挂接记录数 — Current records attached to an entity by any method.';
comment on column mart.feed_link_coverage__next.linked_address_exact is '地址精确挂接 — Linked by the exact standardized address.';
comment on column mart.feed_link_coverage__next.linked_address_fuzzy is '地址纠错挂接 — Linked by an address with a one-character typo fixed.';
comment on column mart.feed_link_coverage__next.linked_name_in_village is '村内名称挂接 — Linked by the entity''s name inside its village.';
comment on column mart.feed_link_coverage__next.linked_coordinate_polygon is '坐标落面挂接 — Linked by coordinates inside a natural entity''s polygon.';
comment on column mart.feed_link_coverage__next.linked_coordinate_nearest is '坐标近邻挂接 — Linked by coordinates to the nearest door plate within 30 m.';
comment on column mart.feed_link_coverage__next.linked_identity is '身份关联挂接 — Linked through the same ID number or credit code in other feeds.';
comment on column mart.feed_link_coverage__next.outside_city is '市外地址 — Records whose address lies outside Jiaxing (no local entity).';
comment on column mart.feed_link_coverage__next.unmatched is '未挂接 — Records no method could attach.';
comment on column mart.feed_link_coverage__next.not_linked_yet is '待挂接 — Current records that core.entity_link does not hold yet (staged after the last linking run).';
comment on column mart.feed_link_coverage__next.unmatched_share is '未挂接比例 — unmatched / current_records.';
comment on column mart.feed_link_coverage__next.link_rate is '挂接率 — linked_records / current_records.';
comment on column mart.feed_link_coverage__next.staged_pass_rate is '入库合格率 — Clean staged rows / rows read, over the published partitions (quality.scorecard).';
comment on column mart.feed_link_coverage__next.partitions_published is '发布分区数 — Landing days of the feed in the scorecard that are published.';
comment on column mart.feed_link_coverage__next.partitions_quarantined is '隔离分区数 — Landing days left out because a blocking check failed (quality.quarantine).';
comment on column mart.feed_link_coverage__next.quarantine_reasons is '隔离原因 — "day: check and reason" of each quarantined partition.';
comment on column mart.feed_link_coverage__next.data_day is '数据日期 — Latest landing day among the current records.';
