-- The standardized organisation name and a fingerprint of what the rules read of each gathered record (with a
-- hash of the name it meets others by), to compare with the last run's (staged._ident_input): identity_scope.sql.
-- The values themselves are remembered too: a later run reads the records sharing a changed name from there.
-- The fingerprint is a 64-bit hash (a third of md5's cost over every record); the name stays md5: it groups.
set local datestyle = 'ISO';  -- a birth date's text in the fingerprint must not follow the client's setting

-- the standardized name: no 浙江省 / 嘉兴市 prefix (province, city), 有限责任公司 = 有限公司 (limited company), no suffix
create unlogged table ident_org_named as
select o.*, nullif(regexp_replace(replace(regexp_replace(btrim(o.name), '^(浙江省)?(嘉兴市|嘉兴)?', ''),
                                          '有限责任公司', '有限公司'), '有限公司$', ''), '') as name_key
  from ident_org o;

create unlogged table ident_fp as
select feed_id, record_key, 'person' as kind,
       hashtextextended(row(id_number, name, birth_date, phone, entity_id)::text, 0) as fp,
       md5(name)::uuid as name, _partition, id_number as code, name as given, null::text as name_key, birth_date, phone, entity_id
  from ident_person
union all
select feed_id, record_key, 'legal_person', hashtextextended(row(credit_code, name)::text, 0),
       md5(name_key)::uuid, _partition, credit_code, name, name_key, null, null, null
  from ident_org_named;
analyze ident_fp;
