-- What every mart is built from, as tables of the refresh's transaction (one snapshot of core): places, units,
-- each person's and each organisation's home entity. staged._mart_feed (the catalog), staged._mart_record
-- (current, not quarantined staged records), staged._mart_link (those records with their link,
-- sql/mart/link_rows.sql), the sums over them (sql/mart/sums/) and the entities with their class, place and size
-- (sql/mart/entities.sql) are brought up to date by lib/marts.py before this file runs. These tables are
-- unlogged in the refresh's own schema (lib/work_schema.py): parallel workers read them, as they read the
-- staged._mart_* tables (a temporary table they cannot). Nothing personal leaves them except as counts.

-- every village with its town and county
create unlogged table mart_place as
select v.code as village_code, v.name as village_name, t.code as town_code, t.name as town_name,
       c.code as county_code, c.name as county_name
  from core.admin_unit v
  join core.admin_unit t on t.code = v.parent_code
  join core.admin_unit c on c.code = t.parent_code
 where v.level = 'village';
create unique index on mart_place (village_code);

-- every unit a village lies in (itself, its town, its county): sums up to each level from the villages
create unlogged table mart_village_in as
select village_code, village_code as unit_code from mart_place
union all select village_code, town_code from mart_place
union all select village_code, county_code from mart_place;
create index on mart_village_in (village_code);

-- each person's home: the entity most of their population records are linked to (then the latest), and the
-- flat (building/unit/room) written most often there (sql/mart/sums/person_entity.sql); a household is a
-- distinct (home, flat)
create unlogged table mart_resident as
select distinct on (person_key) person_key, entity_id, flat
  from staged._mart_person_entity
 order by person_key, n desc, last desc nulls last, entity_id;
create index on mart_resident (entity_id);

-- each organisation's seat, the same way over its records of any domain; its type from the credit code's
-- registration authority and kind (GB 32100-2015: the first two characters; no code: unregistered)
create unlogged table mart_org as
select distinct on (x.org_key) x.org_key, x.entity_id,
       case left(p.credit_code, 2)
            when '91' then 'enterprise' when '92' then 'individual_business' when '93' then 'farmer_cooperative'
            when '51' then 'social_group' when '52' then 'private_non_enterprise' when '53' then 'foundation'
            when '11' then 'government_agency' when '12' then 'public_institution'
            else case when p.credit_code like 'N%%' then 'rural_collective'
                      when p.credit_code is null then 'no_credit_code' else 'other' end
       end as org_type
  from staged._mart_org_entity x
  join core.legal_person p on p.org_key = x.org_key
 order by x.org_key, x.n desc, x.last desc nulls last, x.entity_id;
create index on mart_org (entity_id);

-- the admin units published: counties, towns, villages with their boundaries
create unlogged table mart_unit as
select code as unit_code, level, name, parent_code, geom
  from core.admin_unit where level in ('county', 'town', 'village');
create index on mart_unit using gist (geom);
