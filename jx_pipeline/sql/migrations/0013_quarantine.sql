-- Quarantine of feed partitions: a partition whose blocking check failed (raw or staged) is recorded here and
-- left out of linking, identities and the marts until a later run of that partition passes the same check.
-- One row per episode: cleared_at is set when it passes again; a new failure after that starts a new row.
create table quality.quarantine (
    quarantine_id  bigint generated always as identity primary key,
    feed_id        text        not null,
    department     text        not null,
    partition_key  text        not null,
    check_name     text        not null,
    reason         text        not null,
    run_id         text,
    since          timestamptz not null default now(),
    failed_at      timestamptz not null default now(),
    cleared_at     timestamptz,
    cleared_by_run text
);
create unique index quarantine_open on quality.quarantine (feed_id, partition_key, check_name)
    where cleared_at is null;
comment on table quality.quarantine is 'Feed partitions whose blocking check failed: left out of core.entity_link, '
    'the identities and the marts while cleared_at is null (each record then counts in its latest version from a '
    'partition that is not quarantined).';
comment on column quality.quarantine.check_name is 'The failed check: <layer>/<check>, e.g. staged/expectations, raw/rows_reconcile.';
comment on column quality.quarantine.reason is 'What failed, in words (expectations failed, expected vs found rows).';
comment on column quality.quarantine.since is 'When the partition first failed this check (in this episode).';
comment on column quality.quarantine.failed_at is 'The latest run in which it failed again.';
comment on column quality.quarantine.cleared_at is 'When a later run of the partition passed the check; null while quarantined.';

create view quality.quarantine_active as
select feed_id, department, partition_key,
       array_agg(check_name order by check_name)                   as checks,
       string_agg(check_name || ': ' || reason, '; ' order by check_name) as reason,
       min(since)                                                  as since,
       max(failed_at)                                              as failed_at
  from quality.quarantine
 where cleared_at is null
 group by feed_id, department, partition_key;
comment on view quality.quarantine_active is 'The feed partitions quarantined now (one row each, all their failed checks): what linking and the marts leave out, and why.';
