-- Staged layer accounting: a reject is a whole row (scope 'row': not staged) or one value (scope 'value':
-- the row is staged with that column null). Great Expectations results and the per-feed scorecard.
alter table quality.rejects add column scope text not null default 'row' check (scope in ('row', 'value'));
comment on column quality.rejects.scope is 'row: the row was not loaded; value: the row was loaded with this column null.';

create table quality.expectation_result (
    feed_id          text        not null,
    partition_key    text        not null,
    expectation      text        not null,
    column_name      text,
    success          boolean     not null,
    element_count    bigint,
    unexpected_count bigint,
    suite_source     text        not null check (suite_source in ('catalog', 'feed')),
    checked_at       timestamptz not null default now()
);
create index expectation_result_feed on quality.expectation_result (feed_id, partition_key);
comment on table quality.expectation_result is 'Each Great Expectations result of each feed partition (replaced on re-run).';

create table quality.scorecard (
    department     text        not null,
    feed_id        text        not null,
    partition_key  text        not null,
    rows_read      bigint      not null,
    rows_staged    bigint      not null,
    rows_rejected  bigint      not null,
    rows_flagged   bigint      not null,
    pass_rate      numeric     not null,
    expectations   int         not null,
    expectations_failed int    not null,
    reasons        jsonb       not null,
    computed_at    timestamptz not null default now(),
    primary key (feed_id, partition_key)
);
comment on table quality.scorecard is 'Per feed and landing day: rows read/staged/rejected, rows with a nulled value, pass rate (clean rows / rows read), expectations failed, reject reasons.';
comment on column quality.scorecard.pass_rate is 'Rows staged with no value nulled, divided by rows read (1.0 when nothing was read).';

create view quality.department_scorecard as
select department, partition_key,
       count(*)                                    as feeds,
       sum(rows_read)                              as rows_read,
       sum(rows_rejected)                          as rows_rejected,
       sum(rows_flagged)                           as rows_flagged,
       round(case when sum(rows_read) = 0 then 1
                  else sum(pass_rate * rows_read) / sum(rows_read) end, 4) as pass_rate,
       sum(expectations_failed)                    as expectations_failed
  from quality.scorecard
 group by department, partition_key;
comment on view quality.department_scorecard is 'Per department and landing day: the scorecard summed over its feeds.';
