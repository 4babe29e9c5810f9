-- Row identity across the files of a landing day: `_row_number` restarts in every file, so raw and staged rows
-- gain `_row_id`, the row's ordinal over the whole day in delivery order (the day's files in name order, then
-- the row in its file). Tables loaded by an earlier version are numbered here by that same convention (names in
-- code-point order, as Python sorts them); staged rows take the id of the raw row they came from.
do $$
declare
    t record;
begin
    for t in
        select c.relname
          from pg_class c join pg_namespace n on n.oid = c.relnamespace
         where n.nspname = 'raw' and c.relkind = 'p'
           and exists (select 1 from pg_attribute a where a.attrelid = c.oid and a.attname = '_row_number')
           and not exists (select 1 from pg_attribute a where a.attrelid = c.oid and a.attname = '_row_id')
    loop
        execute format('alter table raw.%I add column _row_id bigint', t.relname);
        execute format(
            'update raw.%1$I r set _row_id = n.id'
            '  from (select _partition, _source_file, _row_number,'
            '               row_number() over (partition by _partition order by _source_file collate "C", _row_number) id'
            '          from raw.%1$I) n'
            ' where (r._partition, r._source_file, r._row_number) = (n._partition, n._source_file, n._row_number)',
            t.relname);
        execute format('alter table raw.%I alter column _row_id set not null', t.relname);
    end loop;

    for t in
        select c.relname, to_regclass(format('raw.%I', c.relname)) is not null as has_raw
          from pg_class c join pg_namespace n on n.oid = c.relnamespace
         where n.nspname = 'staged' and c.relkind = 'p'
           and exists (select 1 from pg_attribute a where a.attrelid = c.oid and a.attname = '_row_number')
           and not exists (select 1 from pg_attribute a where a.attrelid = c.oid and a.attname = '_row_id')
    loop
        execute format('alter table staged.%I add column _row_id bigint', t.relname);
        if t.has_raw then
            execute format(
                'update staged.%1$I s set _row_id = r._row_id from raw.%1$I r'
                ' where (r._partition, r._source_file, r._row_number) = (s._partition, s._source_file, s._row_number)',
                t.relname);
        end if;
        -- a staged row whose raw row is gone: numbered by the same convention among the staged rows
        execute format(
            'update staged.%1$I s set _row_id = n.id'
            '  from (select _partition, _source_file, _row_number,'
            '               row_number() over (partition by _partition order by _source_file collate "C", _row_number) id'
            '          from staged.%1$I) n'
            ' where s._row_id is null'
            '   and (s._partition, s._source_file, s._row_number) = (n._partition, n._source_file, n._row_number)',
            t.relname);
        execute format('alter table staged.%I alter column _row_id set not null', t.relname);
    end loop;
end
$$;
