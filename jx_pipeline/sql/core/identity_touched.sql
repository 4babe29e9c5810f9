-- On a re-resolution: the masters the scope's records left or joined (ident_touched_person / _org, the keys
-- lib/rebuild.py writes), and what names and counts them (ident_naming_new, read by identity_masters.sql): a
-- record out of the scope is as it was when last resolved, and the memory is written after this.
-- ident_member holds the scope's memberships only (identity_member_new has them all): the records of its names
-- read for the per-name keys were not resolved (identity_scope.sql: resolve false) and keep theirs as they are.

-- a master's name and count change only with a member that is new, changed or gone, or that moved to or from
-- it: a record resolved again to the master and method it had, with the fields it had, is left as it is kept
-- (most of the records sharing a changed name: 100k of 157k resolved at scale 0.1)
delete from ident_member m
 where not exists (select 1 from ident_changed c
                    where (c.feed_id, c.record_key, c.kind) = (m.feed_id, m.record_key, m.kind))
   and exists (select 1 from core.identity_member o
                where (o.feed_id, o.record_key, o.kind) = (m.feed_id, m.record_key, m.kind)
                  and o.master_key = m.master_key and o.method = m.method);

-- their old masters found by key, one by one (113k at scale 0.1: 0.5 s; a hash join read all 8.1M: 3.8 s)
set local enable_hashjoin = off;
set local enable_mergejoin = off;
create unlogged table ident_touched as
select kind, master_key from ident_member
union
select m.kind, m.master_key
  from core.identity_member m
  join (select feed_id, record_key, kind from ident_member
        union all select feed_id, record_key, kind from ident_changed) s using (feed_id, record_key, kind);
set local enable_hashjoin = on;
set local enable_mergejoin = on;
analyze ident_touched;
create unlogged table ident_touched_person as
select master_key as person_key from ident_touched where kind = 'person';
create unlogged table ident_touched_org as
select master_key as org_key from ident_touched where kind = 'legal_person';

-- what names and counts the touched masters (ident_naming_new, read by identity_masters.sql): their rows kept in
-- staged._ident_naming (members grouped by method, code, name and birth date) less what the members that left
-- or changed brought, plus what the members resolved now bring. The leaving ones as they were: their old
-- membership (core.identity_member) and fields (the memory, written after this), by key when they are few (under
-- 1/20 of the memberships, as lib/pg.py's by_key; else as the planner chooses)
select set_config(s, case when (select count(*) from ident_member) + (select count(*) from ident_changed) < 0.05 *
                               (select reltuples from pg_class where oid = 'core.identity_member'::regclass)
                          then 'off' else 'on' end, true)
  from (values ('enable_hashjoin'), ('enable_mergejoin')) v(s);
create unlogged table ident_naming_old as
select m.kind, m.master_key, m.method,
       case when m.method in ('id_number', 'credit_code') then i.code end as code, i.given as name, i.birth_date
  from (select feed_id, record_key, kind from ident_member
        union select feed_id, record_key, kind from ident_changed) s
  join core.identity_member m using (feed_id, record_key, kind)
  left join staged._ident_input i using (feed_id, record_key, kind);
create unlogged table ident_naming_new as
select kind, master_key, method, code, name, birth_date, sum(n)::int as n
  from (select g.kind, g.master_key, g.method, g.code, g.name, g.birth_date, g.n
          from ident_touched t
          join staged._ident_naming g on (g.kind, g.master_key) = (t.kind, t.master_key)
        union all
        select kind, master_key, method, code, name, birth_date, -1 from ident_naming_old
        union all
        select kind, master_key, method, code, name, birth_date, 1 from ident_member) x
 group by 1, 2, 3, 4, 5, 6
having sum(n) <> 0;  -- a negative count: the kept rows drifted (lib/identity.py resolves every record then)
set local enable_hashjoin = on;
set local enable_mergejoin = on;
