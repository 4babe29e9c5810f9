-- Provenance for engineers: from a geographic entity (a row of mart.geo_entity_profile, whose entity_id is
-- core.geo_entity's) back to every department record attached to it, each version of it in `staged`, and the
-- `raw` row it came from — feed, department, landing day, file (name and the full path the load read) and row.
-- The current version is the latest one outside quarantined partitions (what linking and the marts read);
-- a version in a quarantined partition says why in `quarantined`.
--
--   select * from core.entity_provenance('A00000123');
--
-- It runs with its owner's rights (security definer) so that an engineer, who may not read `raw` or `staged`,
-- can follow lineage; it returns lineage and keys only, never the records' personal data. Not executable by
-- PUBLIC: the owner grants it to jx_engineer (never to jx_platform_reader).
create function core.entity_provenance(p_entity_id text)
returns table (
    entity_id       text,
    feed_id         text,
    department      text,
    record_key      text,
    link_method     text,
    link_score      real,
    current_version boolean,
    landing_day     date,
    source_file     text,
    source_path     text,
    row_number      bigint,
    row_id          bigint,
    in_raw          boolean,
    quarantined     text,
    staged_batch_id text,
    raw_batch_id    text
)
language plpgsql
stable
security definer
set search_path = pg_catalog, pg_temp
as $fn$
declare
    f text;
    -- the feed's partitions quarantined now (quality.quarantine_active, migration 0013), with why
    q text := case when to_regclass('quality.quarantine_active') is null
                   then 'select null::text partition_key, null::text reason where false'
                   else 'select partition_key, reason from quality.quarantine_active where feed_id = $2' end;
begin
    for f in
        select distinct l.feed_id from core.entity_link l where l.entity_id = p_entity_id order by 1
    loop
        if to_regclass(format('staged.%I', f)) is null then
            continue;
        end if;
        return query execute format(
            $q$
            with q as (%2$s)
            select l.entity_id, l.feed_id,
                   coalesce((select sc.department from quality.scorecard sc where sc.feed_id = l.feed_id limit 1),
                            split_part(l.feed_id, '_', 1)),
                   l.record_key, l.method, l.score,
                   q.reason is null and row_number() over (partition by s.record_key
                                                           order by q.reason is not null, s._partition desc,
                                                                    s._row_id desc) = 1,
                   s._partition::date,
                   coalesce(r._source_file, s._source_file),
                   (select p from quality.load_audit a, unnest(a.source_files) p
                     where a.feed_id = l.feed_id and a.partition_key = s._partition and a.stage = 'raw'
                       and (p = s._source_file or right(p, length(s._source_file) + 1) = '/' || s._source_file)
                     limit 1),
                   coalesce(r._row_number, s._row_number),
                   s._row_id,
                   r._row_id is not null,
                   q.reason,
                   s._batch_id,
                   r._batch_id
              from core.entity_link l
              join staged.%1$I s on s.record_key = l.record_key
              left join raw.%1$I r on r._partition = s._partition and r._row_id = s._row_id
              left join q on q.partition_key = s._partition
             where l.entity_id = $1 and l.feed_id = $2
             order by l.record_key, s._partition, s._row_id
            $q$, f, q) using p_entity_id, f;
    end loop;
end
$fn$;

comment on function core.entity_provenance(text) is
    'Lineage of a geographic entity: one row per staged version of every record linked to it (feed, department, '
    'record key, link method and score, whether it is the current version), with its raw row: landing day, file '
    'name and full path, row in the file (a header is row 1), row id over the day, and why its partition is quarantined (if it is). For engineers; not granted to the reader.';

revoke execute on function core.entity_provenance(text) from public;
do $$
begin
    if exists (select 1 from pg_roles where rolname = 'jx_engineer') then
        grant execute on function core.entity_provenance(text) to jx_engineer;
    end if;
end
$$;
