-- Every failed Dagster run, recorded by the run-failure sensor (defs/operations/sensors.py): what an operator acts on.
create table quality.run_alert (
    run_id       text        not null,
    job_name     text        not null,
    step_key     text,
    error_class  text,
    message      text        not null,
    partition_key text,
    failed_at    timestamptz not null,
    recorded_at  timestamptz not null default now(),
    webhook_status text,
    primary key (run_id)
);
create index run_alert_failed_at on quality.run_alert (failed_at desc);
comment on table quality.run_alert is '每次失败的运行 Failed Dagster runs: one row per run, written by the run-failure sensor (secrets masked).';
comment on column quality.run_alert.step_key is 'The first step that failed (null when the run failed before any step).';
comment on column quality.run_alert.error_class is 'Python class of the step''s error, e.g. JxError, UndefinedTable.';
comment on column quality.run_alert.message is 'The error message, passwords in URLs masked, at most 2,000 characters.';
comment on column quality.run_alert.webhook_status is 'HTTP status of the post to JX_ALERT_WEBHOOK, "not configured", or the error.';
