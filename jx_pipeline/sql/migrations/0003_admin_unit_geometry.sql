-- Upgrade in place: admin units gain a short name for address matching and a CGCS2000 boundary.
alter table core.admin_unit add column short_name text;
alter table core.admin_unit add column geom geometry(MultiPolygon, 4490);
create index admin_unit_geom_gist on core.admin_unit using gist (geom);
create index admin_unit_parent on core.admin_unit (parent_code);

update core.admin_unit
   set short_name = regexp_replace(name, '(村民委员会|居民委员会|村委会|居委会)$', '');
alter table core.admin_unit alter column short_name set not null;

comment on column core.admin_unit.short_name is 'Name without the committee suffix (居委会/村委会: committee), as addresses write it.';
comment on column core.admin_unit.geom is 'Boundary in CGCS2000 (EPSG:4490); null until a boundary source is loaded.';
