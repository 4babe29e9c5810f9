-- The service catalog the platform reads: one row per table published in schema mart (itself included),
-- filled by lib/marts.py from the tables just built, in the same transaction as they are swapped in.
create table mart.data_service__next (
    service_id     text primary key,
    title_zh       text             not null,
    title_en       text             not null,
    description    text             not null,
    geometry_type  text,
    srid           integer,
    bbox           double precision[],
    row_count      bigint           not null,
    refreshed_at   timestamptz      not null,
    source_feeds   text[]           not null,
    departments    text[]           not null,
    data_day       date
);

comment on table mart.data_service__next is '数据服务目录 — Data service catalog. One row per table published in schema mart (this one included), with titles, geometry, extent, row count, refresh time, the feeds and departments it is built from and the landing day it reflects. Rebuilt with the marts; a blocking check fails when a mart has no row or a row no mart.';
comment on column mart.data_service__next.service_id is '服务标识 — The published table''s name in schema mart (e.g. geo_entity_profile).';
comment on column mart.data_service__next.title_zh is '中文标题 — Chinese title (from the table comment).';
comment on column mart.data_service__next.title_en is '英文标题 — English title.';
comment on column mart.data_service__next.description is '说明 — What the table holds (its comment in English).';
comment on column mart.data_service__next.geometry_type is '几何类型 — PostGIS geometry type of the geom column (GEOMETRY when it mixes types); null for a table without geometry.';
comment on column mart.data_service__next.srid is '坐标系 — EPSG code of the geometry (4490, CGCS2000); null without geometry.';
comment on column mart.data_service__next.bbox is '范围 — Bounding box {xmin, ymin, xmax, ymax} in degrees of EPSG:4490; null without geometry or rows.';
comment on column mart.data_service__next.row_count is '记录数 — Rows of the table at this refresh.';
comment on column mart.data_service__next.refreshed_at is '更新时间 — When the refresh that built the table committed (its transaction''s start).';
comment on column mart.data_service__next.source_feeds is '来源数据项 — Catalog feed ids (and core.* reference layers) the table is built from.';
comment on column mart.data_service__next.departments is '来源部门 — Department codes of those sources.';
comment on column mart.data_service__next.data_day is '数据日期 — The latest landing day (Beijing) of the data it reflects.';
