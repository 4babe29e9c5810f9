-- Geographic entities (山水林田湖草, roads, buildings, door plates) and the door-plate gazetteer addresses link to.
create table core.geo_entity (
    entity_id     text primary key,
    entity_type   text not null,
    name          text,
    village_code  text,
    parent_id     text,
    address       text,
    geom          geometry(Geometry, 4490) not null,
    batch_id      text not null
);
create index geo_entity_geom on core.geo_entity using gist (geom);
create index geo_entity_type on core.geo_entity (entity_type);
comment on table core.geo_entity is 'Every geographic entity of the natural-resources hand-over, in CGCS2000 (EPSG:4490).';

create table core.address_point (
    entity_id     text primary key references core.geo_entity (entity_id),
    village_code  text not null,
    town_code     text not null,
    county_code   text not null,
    road          text,
    number        text,
    complex       text,
    village       text,
    grp           text,
    std_address   text not null,
    geom          geometry(Point, 4490) not null
);
create index address_point_geom on core.address_point using gist (geom);
create index address_point_road on core.address_point (town_code, road, number);
comment on table core.address_point is 'The door-plate (门牌) gazetteer: each address point with its parsed, standardized address.';
comment on column core.address_point.std_address is 'The standard form: county + town + (road + number + complex | village + group + number).';
