-- Record -> entity links and the master indexes of persons and legal persons.
create table core.entity_link (
    feed_id       text    not null,
    record_key    text    not null,
    entity_id     text    references core.geo_entity (entity_id),
    entity_type   text,
    village_code  text,
    method        text    not null check (method in ('address_exact', 'address_fuzzy', 'name_in_village',
                                     'coordinate_polygon', 'coordinate_nearest', 'identity', 'unmatched')),
    score         real    not null,
    primary key (feed_id, record_key)
);
create index entity_link_entity on core.entity_link (entity_id);
comment on table core.entity_link is 'One row per current staged record: the entity it is attached to (null when unmatched), how, and how sure.';

create table core.person (
    person_key    text primary key,
    id_number     text unique,
    name          text,
    birth_date    date,
    records       int  not null
);
comment on table core.person is 'Master index of persons: one row per resolved person (ID number after 15->18 upgrade, or a probabilistic cluster).';

create table core.legal_person (
    org_key       text primary key,
    credit_code   text unique,
    name          text,
    records       int  not null
);
comment on table core.legal_person is 'Master index of legal persons: one row per resolved organisation (credit code, or its standardized name).';

create table core.identity_member (
    feed_id       text not null,
    record_key    text not null,
    kind          text not null check (kind in ('person', 'legal_person')),
    master_key    text not null,
    method        text not null check (method in ('id_number', 'credit_code', 'name_birth', 'name_phone', 'name_place', 'name_unique', 'name_key', 'org_name', 'singleton')),
    primary key (feed_id, record_key, kind)
);
create index identity_member_master on core.identity_member (kind, master_key);
comment on table core.identity_member is 'Which master person / legal person each staged record belongs to, and by what evidence.';
