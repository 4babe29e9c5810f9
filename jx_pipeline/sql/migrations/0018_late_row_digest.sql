-- What the late-row check (lib/late_rows.py) last verified of each earlier day of a database feed: the source's
-- rows of that day and a sum of their (key, watermark) hashes, taken in the same snapshot as the check. A day
-- whose source digest is unchanged since cannot hold a row missing from raw, so a load compares only the days
-- that changed instead of reading every earlier source row.
create table quality.late_row_digest (
    feed_id    text not null,
    day        text not null,          -- the partition owning the rows (the first partition owns all before it)
    rows       bigint not null,
    digest     numeric not null,       -- sum of hashtext(row(key..., watermark)::text)
    checked_at timestamptz not null default now(),
    primary key (feed_id, day)
);
comment on table quality.late_row_digest is 'Per database feed and earlier day, the source rows last checked by the late-row check (count, hash sum).';
