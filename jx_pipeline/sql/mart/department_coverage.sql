-- Per department: feed_link_coverage summed over its feeds (the operators' one-line-per-department view).
create table mart.department_coverage__next as
select department, min(department_name) as department_name, count(*)::int as feeds,
       sum(current_records)::bigint as current_records, sum(linked_records)::bigint as linked_records,
       sum(unmatched)::bigint as unmatched, sum(outside_city)::bigint as outside_city,
       round(sum(linked_records)::numeric / nullif(sum(current_records), 0), 4) as link_rate,
       round(sum(staged_pass_rate * current_records) / nullif(sum(current_records) filter (where staged_pass_rate is not null), 0), 4)
           as staged_pass_rate,
       sum(partitions_quarantined)::int as partitions_quarantined,
       max(data_day) as data_day
  from mart.feed_link_coverage__next
 group by department;

alter table mart.department_coverage__next add primary key (department);

comment on table mart.department_coverage__next is '部门数据覆盖率 — Department coverage. Per department: its feeds'' current records, linked share, staged pass rate and quarantined partitions (mart.feed_link_coverage summed).';
comment on column mart.department_coverage__next.department is '部门代码 — Department code of the catalog.';
comment on column mart.department_coverage__next.department_name is '部门名称 — Department name (e.g. 自然资源和规划局).';
comment on column mart.department_coverage__next.feeds is '数据项数 — Feeds of the department in the catalog.';
comment on column mart.department_coverage__next.current_records is '当前记录数 — Current records over its feeds.';
comment on column mart.department_coverage__next.linked_records is '已挂接记录数 — Of those, attached to a geographic entity.';
comment on column mart.department_coverage__next.unmatched is '未挂接 — Records no method could attach.';
comment on column mart.department_coverage__next.outside_city is '市外地址 — Records with an address outside Jiaxing.';
comment on column mart.department_coverage__next.link_rate is '挂接率 — linked_records / current_records.';
comment on column mart.department_coverage__next.staged_pass_rate is '入库合格率 — Staged pass rate weighted by current records.';
comment on column mart.department_coverage__next.partitions_quarantined is '隔离分区数 — Feed partitions of the department left out by quarantine.';
comment on column mart.department_coverage__next.data_day is '数据日期 — Latest landing day among its current records.';
