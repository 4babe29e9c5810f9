-- Identity resolution over ident_person / ident_org_named (sql/core/identity_records.sql, identity_inputs.sql),
-- set-based: every current record, or on a re-resolution the records of identity_scope.sql only.
-- The rules are lib/identity.py's docstring; each step says which. Master keys are the HMAC of lib/identity.pseudonym.
set local datestyle = 'ISO';  -- name/birth keys spell dates YYYY-MM-DD
set local work_mem = '256MB';

-- persons: a master per ID number
create temp table ident_pkey on commit drop as
select id_number,
       'P' || left(encode(hmac(convert_to('person:' || id_number, 'UTF8'), s.k, 'sha256'), 'hex'), 20) as m
  from (select distinct id_number from ident_person where id_number is not null) d, ident_secret s;

create temp table ident_member (
    feed_id     text not null,
    record_key  text not null,
    kind        text not null,
    master_key  text not null,
    method      text not null,
    code        text,
    name        text,
    birth_date  date
) on commit drop;

insert into ident_member
select p.feed_id, p.record_key, 'person', k.m, 'id_number', p.id_number, p.name, p.birth_date
  from ident_person p join ident_pkey k using (id_number);

-- a record without an ID joins the one master (with an ID) of the same name and birth date, phone, door plate,
-- or of the name alone; a key two masters share identifies nobody (min = max: one master, by a hash aggregate;
-- count(distinct) sorted every group)
create temp table ix_name_birth on commit drop as
select name, birth_date, min(master_key) m from ident_member
 where name is not null and birth_date is not null group by 1, 2 having min(master_key) = max(master_key);
create temp table ix_name_phone on commit drop as
select p.name, p.phone, min(k.m) m from ident_person p join ident_pkey k using (id_number)
 where p.name is not null and p.phone is not null group by 1, 2 having min(k.m) = max(k.m);
create temp table ix_name_place on commit drop as
select p.name, p.entity_id, min(k.m) m from ident_person p join ident_pkey k using (id_number)
 where p.name is not null and p.entity_id is not null group by 1, 2 having min(k.m) = max(k.m);
create temp table ix_name on commit drop as
select name, min(master_key) m from ident_member where name is not null group by 1 having min(master_key) = max(master_key);
analyze ix_name_birth, ix_name_phone, ix_name_place, ix_name;

-- otherwise records without an ID meet on their own strongest key (name + birth date, phone or door plate),
-- and a record with none of them is a master of its own
insert into ident_member
select p.feed_id, p.record_key, 'person',
       coalesce(nb.m, np.m, ne.m, nu.m,
                'P' || left(encode(hmac(convert_to('person:' || coalesce(
                    p.name || '/' || coalesce(p.birth_date::text, p.phone, p.entity_id),
                    p.feed_id || '/' || p.record_key), 'UTF8'), s.k, 'sha256'), 'hex'), 20)),
       case when nb.m is not null then 'name_birth'
            when np.m is not null then 'name_phone'
            when ne.m is not null then 'name_place'
            when nu.m is not null then 'name_unique'
            when p.name || coalesce(p.birth_date::text, p.phone, p.entity_id) is not null then 'name_key'
            else 'singleton' end,
       null, p.name, p.birth_date
  from ident_person p
  cross join ident_secret s
  left join ix_name_birth nb on nb.name = p.name and nb.birth_date = p.birth_date
  left join ix_name_phone np on np.name = p.name and np.phone = p.phone
  left join ix_name_place ne on ne.name = p.name and ne.entity_id = p.entity_id
  left join ix_name nu on nu.name = p.name
 where p.id_number is null;

-- legal persons: a master per credit code
create temp table ident_okey on commit drop as
select credit_code,
       'O' || left(encode(hmac(convert_to('org:' || credit_code, 'UTF8'), s.k, 'sha256'), 'hex'), 20) as m
  from (select distinct credit_code from ident_org_named where credit_code is not null) d, ident_secret s;

insert into ident_member
select o.feed_id, o.record_key, 'legal_person', k.m, 'credit_code', o.credit_code, o.name, null
  from ident_org_named o join ident_okey k using (credit_code);

-- an organisation without a code joins the one master of the same standardized name, else stands alone
create temp table ix_org_name on commit drop as
select o.name_key, min(k.m) m from ident_org_named o join ident_okey k using (credit_code)
 where o.name_key is not null group by 1 having min(k.m) = max(k.m);

insert into ident_member
select o.feed_id, o.record_key, 'legal_person',
       coalesce(x.m, 'O' || left(encode(hmac(convert_to('org:' || o.feed_id || '/' || o.record_key, 'UTF8'), s.k,
                                               'sha256'), 'hex'), 20)),
       case when x.m is not null then 'org_name' else 'singleton' end, null, o.name, null
  from ident_org_named o
  cross join ident_secret s
  left join ix_org_name x on x.name_key = o.name_key
 where o.credit_code is null;

-- the rebuilt memberships, written by lib/rebuild.py (only the rows that changed, or swapped in whole); the
-- masters: identity_masters.sql
create temp table identity_member_new (like core.identity_member including defaults) on commit drop;
insert into identity_member_new (feed_id, record_key, kind, master_key, method)
select feed_id, record_key, kind, master_key, method from ident_member;
