-- On a re-resolution: the masters the scope's records left or joined (ident_touched_person / _org, the keys
-- lib/rebuild.py writes), and their other members as they are in core.identity_member, with the fields the
-- master is named from taken from the memory (ident_other_member, read by identity_masters.sql): a record out
-- of the scope is as it was when last resolved, and the memory is written after this.
-- ident_member holds the scope's memberships only (identity_member_new has them all): the records of its names
-- read for the per-name keys were not resolved (identity_scope.sql: resolve false) and keep theirs as they are.

-- a master's name and count change only with a member that is new, changed or gone, or that moved to or from
-- it: a record resolved again to the master and method it had, with the fields it had, is left to
-- ident_other_member (most of the records sharing a changed name: 100k of 157k resolved at scale 0.1)
delete from ident_member m
 where not exists (select 1 from ident_changed c
                    where (c.feed_id, c.record_key, c.kind) = (m.feed_id, m.record_key, m.kind))
   and exists (select 1 from core.identity_member o
                where (o.feed_id, o.record_key, o.kind) = (m.feed_id, m.record_key, m.kind)
                  and o.master_key = m.master_key and o.method = m.method);

-- their old masters found by key, one by one (113k at scale 0.1: 0.5 s; a hash join read all 8.1M: 3.8 s)
set local enable_hashjoin = off;
set local enable_mergejoin = off;
create temp table ident_touched on commit drop as
select kind, master_key from ident_member
union
select m.kind, m.master_key
  from core.identity_member m
  join (select feed_id, record_key, kind from ident_member
        union all select feed_id, record_key, kind from ident_changed) s using (feed_id, record_key, kind);
set local enable_hashjoin = on;
set local enable_mergejoin = on;
analyze ident_touched;
create temp table ident_touched_person on commit drop as
select master_key as person_key from ident_touched where kind = 'person';
create temp table ident_touched_org on commit drop as
select master_key as org_key from ident_touched where kind = 'legal_person';

-- hash joins: a touched master has many members (1.2M for 127k masters at 0.1), found by index one by one in 15 s
set local enable_nestloop = off;
create temp table ident_other_member on commit drop as
select m.kind, m.master_key, m.method,
       case when m.method in ('id_number', 'credit_code') then i.code end as code, i.given as name, i.birth_date
  from core.identity_member m
  join ident_touched t on (t.kind, t.master_key) = (m.kind, m.master_key)
  left join staged._ident_input i on (i.feed_id, i.record_key, i.kind) = (m.feed_id, m.record_key, m.kind)
 where not exists (select 1 from ident_member s
                    where (s.feed_id, s.record_key, s.kind) = (m.feed_id, m.record_key, m.kind))
   and not exists (select 1 from ident_changed c  -- a gone record
                    where (c.feed_id, c.record_key, c.kind) = (m.feed_id, m.record_key, m.kind));
set local enable_nestloop = on;
