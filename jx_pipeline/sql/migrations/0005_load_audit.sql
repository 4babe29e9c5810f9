-- Accounting of every feed load: rows read = rows loaded + rows rejected, per feed and partition.
create table quality.load_audit (
    feed_id        text        not null,
    partition_key  text        not null,
    stage          text        not null check (stage in ('raw', 'staged')),
    batch_id       text        not null,
    source_files   text[]      not null,
    rows_read      bigint      not null,
    rows_loaded    bigint      not null,
    rows_rejected  bigint      not null,
    extra_columns  text[]      not null default '{}',
    loaded_at      timestamptz not null default now(),
    primary key (feed_id, partition_key, stage),
    check (rows_read = rows_loaded + rows_rejected)
);
comment on table quality.load_audit is 'One row per feed, partition and stage: rows read = loaded + rejected (replaced on re-run).';

create table quality.rejects (
    feed_id        text     not null,
    partition_key  text     not null,
    stage          text     not null,
    batch_id       text     not null,
    source_file    text     not null,
    row_number     bigint   not null,
    column_name    text,
    reason         text     not null,
    value          text
);
create index rejects_feed_partition on quality.rejects (feed_id, partition_key, stage);
comment on table quality.rejects is 'Rows (or values) not loaded, with the reason, file, row and column: nothing is dropped silently.';
