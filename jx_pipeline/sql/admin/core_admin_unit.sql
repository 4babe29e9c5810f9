-- Build core.admin_unit from the landed divisions. An upsert, not a rebuild: columns filled by later stages
-- (geometry) survive, and running it twice leaves the table identical.
create temporary table admin_unit_next on commit drop as
select %(city_code)s::text as code, %(city_name)s::text as name, 'city'::text as level, null::text as parent_code
union all
select code, name, level,
       case when level = 'county' then rpad(parent_code, 6, '0') else parent_code end
  from raw.admin_division;

delete from core.admin_unit u
 where not exists (select 1 from admin_unit_next n where n.code = u.code);

insert into core.admin_unit (code, name, level, parent_code, short_name)
select code, name, level, parent_code,
       regexp_replace(regexp_replace(regexp_replace(name, '(居民委员会|居委会)$', ''), '(村民委员会|村委会)$', '村'),
                      '村村$', '村')  -- 博山村委会 -> 博山村, 长安桥村村民委员会 -> 长安桥村
  from admin_unit_next
on conflict (code) do update
   set name = excluded.name, level = excluded.level,
       parent_code = excluded.parent_code, short_name = excluded.short_name
 where (core.admin_unit.name, core.admin_unit.level, core.admin_unit.parent_code, core.admin_unit.short_name)
       is distinct from (excluded.name, excluded.level, excluded.parent_code, excluded.short_name);

-- Boundaries, where they have been landed.
update core.admin_unit u
   set geom = b.geom
  from raw.admin_boundary b
 where b.code = u.code and u.geom is distinct from b.geom;
