-- Identity resolution over ident_person / ident_org_named (sql/core/identity_records.sql, identity_inputs.sql),
-- set-based: every current record, or on a re-resolution the records of identity_scope.sql only.
-- The rules are lib/identity.py's docstring; each step says which. Master keys are the HMAC of lib/identity.pseudonym.
set local datestyle = 'ISO';  -- name/birth keys spell dates YYYY-MM-DD
set local work_mem = '256MB';

-- a master key: the HMAC of "<kind>:<ID or code>" (stable, as convert_to is: inlined where it is called)
create or replace function pg_temp.master_key(prefix text, kind text, v text, k bytea) returns text
    language sql stable as
$$ select prefix || left(encode(hmac(convert_to(kind || ':' || v, 'UTF8'), k, 'sha256'), 'hex'), 20) $$;

-- persons: a master per ID number (an ID holder read for the per-name keys only keeps its membership)
create unlogged table ident_member (
    feed_id     text not null,
    record_key  text not null,
    kind        text not null,
    master_key  text not null,
    method      text not null,
    code        text,
    name        text,
    birth_date  date
);

insert into ident_member
select p.feed_id, p.record_key, 'person', pg_temp.master_key('P', 'person', p.id_number, s.k), 'id_number',
       p.id_number, p.name, p.birth_date
  from ident_person p cross join ident_secret s
 where p.id_number is not null and p.resolve;

-- a record without an ID joins the one master (with an ID) of the same name and birth date, phone, door plate,
-- or of the name alone; a key two masters share identifies nobody (min = max: one ID, by a hash aggregate;
-- count(distinct) sorted every group). Only the keys of the records resolved are looked up.
create unlogged table ident_keyless as
select name, birth_date, phone, entity_id from ident_person where id_number is null and name is not null;
create unlogged table ix_name_birth as
select name, birth_date, min(id_number) id from ident_person
 where id_number is not null and (name, birth_date) in (select name, birth_date from ident_keyless)
 group by 1, 2 having min(id_number) = max(id_number);
create unlogged table ix_name_phone as
select name, phone, min(id_number) id from ident_person
 where id_number is not null and (name, phone) in (select name, phone from ident_keyless)
 group by 1, 2 having min(id_number) = max(id_number);
create unlogged table ix_name_place as
select name, entity_id, min(id_number) id from ident_person
 where id_number is not null and (name, entity_id) in (select name, entity_id from ident_keyless)
 group by 1, 2 having min(id_number) = max(id_number);
create unlogged table ix_name as
select name, min(id_number) id from ident_person
 where id_number is not null and name in (select name from ident_keyless)
 group by 1 having min(id_number) = max(id_number);
analyze ix_name_birth, ix_name_phone, ix_name_place, ix_name;

-- otherwise records without an ID meet on their own strongest key (name + birth date, phone or door plate),
-- and a record with none of them is a master of its own
insert into ident_member
select p.feed_id, p.record_key, 'person',
       pg_temp.master_key('P', 'person', coalesce(nb.id, np.id, ne.id, nu.id,
           p.name || '/' || coalesce(p.birth_date::text, p.phone, p.entity_id), p.feed_id || '/' || p.record_key),
           s.k),
       case when nb.id is not null then 'name_birth'
            when np.id is not null then 'name_phone'
            when ne.id is not null then 'name_place'
            when nu.id is not null then 'name_unique'
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
insert into ident_member
select o.feed_id, o.record_key, 'legal_person', pg_temp.master_key('O', 'org', o.credit_code, s.k), 'credit_code',
       o.credit_code, o.name, null
  from ident_org_named o cross join ident_secret s
 where o.credit_code is not null and o.resolve;

-- an organisation without a code joins the one master of the same standardized name, else stands alone
create unlogged table ix_org_name as
select name_key, min(credit_code) code from ident_org_named
 where credit_code is not null
   and name_key in (select name_key from ident_org_named where credit_code is null)
 group by 1 having min(credit_code) = max(credit_code);

insert into ident_member
select o.feed_id, o.record_key, 'legal_person',
       pg_temp.master_key('O', 'org', coalesce(x.code, o.feed_id || '/' || o.record_key), s.k),
       case when x.code is not null then 'org_name' else 'singleton' end, null, o.name, null
  from ident_org_named o
  cross join ident_secret s
  left join ix_org_name x on x.name_key = o.name_key
 where o.credit_code is null;

-- the rebuilt memberships, written by lib/rebuild.py (only the rows that changed, or swapped in whole); the
-- masters: identity_masters.sql
create unlogged table identity_member_new (like core.identity_member including defaults);
insert into identity_member_new (feed_id, record_key, kind, master_key, method)
select feed_id, record_key, kind, master_key, method from ident_member;
