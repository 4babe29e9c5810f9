-- Units whose parent is missing, of the wrong level, or whose code does not extend the parent's code.
select u.code, u.level, u.parent_code,
       case when p.code is null then 'parent missing'
            when p.level <> case u.level when 'county' then 'city' when 'town' then 'county' else 'town' end
                 then 'parent is a ' || p.level
            else 'code does not extend parent code' end as problem
  from core.admin_unit u
  left join core.admin_unit p on p.code = u.parent_code
 where u.level <> 'city'
   and (p.code is null
        or p.level <> case u.level when 'county' then 'city' when 'town' then 'county' else 'town' end
        or left(u.code, case u.level when 'county' then 4 else length(p.code) end)
           <> left(p.code, case u.level when 'county' then 4 else length(p.code) end))
 order by u.code;
