-- Jiaxing's official administrative divisions: the landed reference files and the core table built from them.
create table raw.admin_division (
    batch_id     text     not null,
    source_file  text     not null,
    row_number   integer  not null,
    level        text     not null,
    code         text     not null,
    name         text     not null,
    parent_code  text,
    primary key (source_file, row_number)
);

create table core.admin_unit (
    code         text     primary key,
    name         text     not null,
    level        text     not null check (level in ('city', 'county', 'town', 'village')),
    parent_code  text     references core.admin_unit (code) deferrable initially deferred
);
comment on table core.admin_unit is
    'Jiaxing city, its 7 county-level units, 72 towns/sub-districts and 1,202 villages/communities (NBS 2022 codes).';
