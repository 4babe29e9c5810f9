-- Staging's fast path (lib/staging.py): a raw value already written the standard way is standardized here, in the
-- statement that copies its row from raw to staged. Each function returns the standard value of such a value and
-- NULL for every other (the empty string too): a row goes this way only when each of its values is empty or
-- non-NULL here; every other row goes through lib/standardize.py in Python, which decides rejects and reasons.
-- So each function must give exactly what its Python standardizer gives, for the values it accepts:
-- test_staging_fast.py checks both on real and generated values. Session functions: plain SQL, so the planner
-- inlines them into the statement.

-- Python's whitespace (str.isspace, which re's \s and str.strip use) but the ASCII space
create or replace function pg_temp.jx_text(v text) returns text language sql immutable parallel safe as $$
  select case when v !~ '[\t\n\x0b\x0c\r\x1c-\x1f\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]'
              and strpos(v, '  ') = 0 and left(v, 1) <> ' ' and right(v, 1) <> ' ' then nullif(v, '') end
$$;

-- a record key: text with no whitespace at either end (Python strips it)
create or replace function pg_temp.jx_key(v text) returns text language sql immutable parallel safe as $$
  select case when v !~ ('^[\t\n\x0b\x0c\r\x1c-\x20\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]'
                         '|[\t\n\x0b\x0c\r\x1c-\x20\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]$')
         then nullif(v, '') end
$$;

-- A date's digits yyyymmdd as one int, read once per value (lib/staging_fast.py computes it in a subquery): an
-- expression given to an inlined function is repeated wherever the function names its parameter. PostgreSQL's
-- regular expressions with counts ({4}) cost a microsecond a value: shapes are tested with like and one short one.

-- the date as a date when ymd is a calendar date from lo to hi (all yyyymmdd), else NULL
create or replace function pg_temp.jx_ymd(ymd int, lo int, hi int) returns date
language sql immutable parallel safe as $$
  select case when ymd between lo and hi and ymd / 100 % 100 between 1 and 12 and ymd % 100 >= 1
               and ymd % 100 <= case when ymd / 100 % 100 in (4, 6, 9, 11) then 30 when ymd / 100 % 100 <> 2 then 31
                                     when ymd / 10000 % 4 = 0 and (ymd / 10000 % 100 <> 0 or ymd / 10000 % 400 = 0)
                                     then 29 else 28 end
              then make_date(ymd / 10000, ymd / 100 % 100, ymd % 100) end
$$;

-- the birth date's digits of an ID of 18 characters, 17 digits and a check character
create or replace function pg_temp.jx_id_ymd(v text) returns int language sql immutable parallel safe as $$
  select case when length(v) = 18 and v ~ '^[0-9]+X?$' then substr(v, 7, 8)::int end
$$;

-- the ID when its check character is right (GB 11643), its birth date (ymd, from jx_id_ymd) a calendar date from
-- 1880-01-01 to latest, and its area code in use in some year from the birth year on: area_last is the last
-- year stdnum's table gives the code (the caller joins pg_temp.jx_area; NULL when the table does not know it)
create or replace function pg_temp.jx_resident_id(v text, ymd int, latest int, area_last int) returns text
language sql immutable parallel safe as $$
  select case when area_last >= ymd / 10000
    and pg_temp.jx_ymd(ymd, 18800101, latest) is not null
    and substr('10X98765432', (
        7 * (ascii(substr(v, 1, 1)) - 48) + 9 * (ascii(substr(v, 2, 1)) - 48) + 10 * (ascii(substr(v, 3, 1)) - 48)
      + 5 * (ascii(substr(v, 4, 1)) - 48) + 8 * (ascii(substr(v, 5, 1)) - 48) + 4 * (ascii(substr(v, 6, 1)) - 48)
      + 2 * (ascii(substr(v, 7, 1)) - 48) + 1 * (ascii(substr(v, 8, 1)) - 48) + 6 * (ascii(substr(v, 9, 1)) - 48)
      + 3 * (ascii(substr(v, 10, 1)) - 48) + 7 * (ascii(substr(v, 11, 1)) - 48) + 9 * (ascii(substr(v, 12, 1)) - 48)
      + 10 * (ascii(substr(v, 13, 1)) - 48) + 5 * (ascii(substr(v, 14, 1)) - 48) + 8 * (ascii(substr(v, 15, 1)) - 48)
      + 4 * (ascii(substr(v, 16, 1)) - 48) + 2 * (ascii(substr(v, 17, 1)) - 48)) % 11 + 1, 1) = substr(v, 18, 1)
  then v end
$$;

-- the digits yyyymmdd of a date written in one of the feeds' y-m-d forms (with or without a time, which does not
-- change the day): 20240307, 2024-03-07, 2024/03/07, 2024.03.07, 2024年03月07日, 2024-03-07 08:00:00
create or replace function pg_temp.jx_date_ymd(v text) returns int language sql immutable parallel safe as $$
  select case
    when length(v) = 8 and v ~ '^[0-9]+$' then v::int
    when (length(v) = 10 and (v like '____-__-__' or v like '____/__/__' or v like '____.__.__')
          or length(v) = 11 and v like '____年__月__日'
          or length(v) = 19 and v like '____-__-__ __:__:__' and substr(v, 12) ~ '^[0-9:]+$')
     and (left(v, 4) || substr(v, 6, 2) || substr(v, 9, 2)) ~ '^[0-9]+$'
    then (left(v, 4) || substr(v, 6, 2) || substr(v, 9, 2))::int end
$$;

-- a character's place in GB 32100's alphabet by its ASCII code, 48 ('0') to 89 ('Y'); NULL for another character
-- (an array look-up: strpos in the alphabet cost 0.2 us a character, 3 us a code)
create or replace function pg_temp.jx_uscc_index(code int) returns int language sql immutable parallel safe as $$
  select ('{0,1,2,3,4,5,6,7,8,9,null,null,null,null,null,null,null,10,11,12,13,14,15,16,17,null,18,19,20,21,22,null,23,24,25,null,26,27,null,28,29,30}'::int[])[code - 47]
$$;

-- GB 32100: 18 characters of its alphabet, places 3-8 digits, check character right (weights 3^i mod 31)
create or replace function pg_temp.jx_credit_code(v text) returns text language sql immutable parallel safe as $$
  select case when length(v) = 18 and v ~ '^[0123456789ABCDEFGHJKLMNPQRTUWXY]+$' and substr(v, 3, 6) ~ '^[0-9]+$'
    and substr('0123456789ABCDEFGHJKLMNPQRTUWXY', (31 - (
        1 * pg_temp.jx_uscc_index(ascii(substr(v, 1, 1)))
      + 3 * pg_temp.jx_uscc_index(ascii(substr(v, 2, 1)))
      + 9 * pg_temp.jx_uscc_index(ascii(substr(v, 3, 1)))
      + 27 * pg_temp.jx_uscc_index(ascii(substr(v, 4, 1)))
      + 19 * pg_temp.jx_uscc_index(ascii(substr(v, 5, 1)))
      + 26 * pg_temp.jx_uscc_index(ascii(substr(v, 6, 1)))
      + 16 * pg_temp.jx_uscc_index(ascii(substr(v, 7, 1)))
      + 17 * pg_temp.jx_uscc_index(ascii(substr(v, 8, 1)))
      + 20 * pg_temp.jx_uscc_index(ascii(substr(v, 9, 1)))
      + 29 * pg_temp.jx_uscc_index(ascii(substr(v, 10, 1)))
      + 25 * pg_temp.jx_uscc_index(ascii(substr(v, 11, 1)))
      + 13 * pg_temp.jx_uscc_index(ascii(substr(v, 12, 1)))
      + 8 * pg_temp.jx_uscc_index(ascii(substr(v, 13, 1)))
      + 24 * pg_temp.jx_uscc_index(ascii(substr(v, 14, 1)))
      + 10 * pg_temp.jx_uscc_index(ascii(substr(v, 15, 1)))
      + 30 * pg_temp.jx_uscc_index(ascii(substr(v, 16, 1)))
      + 28 * pg_temp.jx_uscc_index(ascii(substr(v, 17, 1)))) % 31) % 31 + 1, 1) = substr(v, 18, 1)
  then v end
$$;

-- a mobile number as it is written most often
create or replace function pg_temp.jx_phone(v text) returns text language sql immutable parallel safe as $$
  select case when length(v) = 11 and v ~ '^1[3-9][0-9]+$' then v end
$$;

-- a month written 202403 or 2024-03
create or replace function pg_temp.jx_period(v text) returns date language sql immutable parallel safe as $$
  select case when (length(v) = 6 and v ~ '^[0-9]+$' or length(v) = 7 and v ~ '^[0-9]+-[0-9]+$' and v like '____-__')
               and left(v, 4)::int between 1949 and 2100
               and right(v, 2)::int between 1 and 12 then make_date(left(v, 4)::int, right(v, 2)::int, 1) end
$$;

-- an amount in plain digits
create or replace function pg_temp.jx_amount(v text) returns numeric language sql immutable parallel safe as $$
  select case when v ~ '^[0-9]+(\.[0-9]+)?$' then v::numeric end
$$;

-- y-m-d h:m:s, a real date and time
create or replace function pg_temp.jx_timestamp_ymd(v text) returns int language sql immutable parallel safe as $$
  select case when length(v) = 19 and v like '____-__-__ __:__:__' and v ~ '^[0-9]+-[0-9]+-[0-9]+ [0-9]+:[0-9]+:[0-9]+$'
              then (left(v, 4) || substr(v, 6, 2) || substr(v, 9, 2))::int end
$$;

-- stable, as the text-to-timestamp cast is (a function declared immutable is not inlined when its body is not)
create or replace function pg_temp.jx_timestamp(v text, ymd int) returns timestamp
language sql stable parallel safe as $$
  select case when pg_temp.jx_ymd(ymd, 10101, 99991231) is not null
               and substr(v, 12, 2)::int <= 23 and substr(v, 15, 2)::int <= 59 and substr(v, 18, 2)::int <= 59
              then v::timestamp end
$$;

create or replace function pg_temp.jx_gender(v text) returns text language sql immutable parallel safe as $$
  select case when v in ('男', '男性', '1', 'M', 'm', 'MALE', 'male', 'Male') then 'M'
              when v in ('女', '女性', '2', 'F', 'f', 'FEMALE', 'female', 'Female') then 'F' end
$$;

create or replace function pg_temp.jx_deleted(v text) returns boolean language sql immutable parallel safe as $$
  select case when v in ('1', 'Y', 'y', 'TRUE', 'true', 'True', '是') then true
              when v in ('0', 'N', 'n', 'FALSE', 'false', 'False', '否') then false end
$$;

create or replace function pg_temp.jx_change_type(v text) returns text language sql immutable parallel safe as $$
  select case when v in ('I', 'U', 'D') then v when v in ('i', 'u', 'd') then upper(v) end
$$;

-- a coordinate in plain decimal degrees
create or replace function pg_temp.jx_degrees(v text) returns double precision language sql immutable parallel safe as $$
  select case when v ~ '^-?[0-9]+(\.[0-9]+)?$' and length(v) < 30 then v::double precision end
$$;
