-- Admin-unit boundaries as handed over with the world's spatial files (GeoParquet, EPSG:4490).
create table raw.admin_boundary (
    batch_id     text     not null,
    source_file  text     not null,
    row_number   integer  not null,
    code         text     primary key,
    name         text     not null,
    level        text     not null,
    geom         geometry(MultiPolygon, 4490) not null
);
comment on table raw.admin_boundary is 'Admin-unit boundaries from the natural-resources hand-over (entities/admin_units.parquet).';
