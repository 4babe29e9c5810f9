-- Linked records per entity over its departments (staged._mart_entity_rec, read by geo_entity_profile.sql): the
-- sums, and the count per department with and without the population records (left out where they describe too
-- few persons); a jsonb object orders its keys itself. From the kept sums per entity and department (entity.sql):
-- made whole, or again for the entities a refresh's link rows touched ({only}); at scale 0.1 the whole of it took
-- 2.3 s of the profile's 5.1 s every day.
select entity_id, sum(population) as population, sum(legal_person) as legal_person,
       sum(economy) as economy, sum(other) as other, max(last_record_date) as last_record_date,
       jsonb_object_agg(department, legal_person + economy + other + population)
           filter (where legal_person + economy + other + population > 0) as by_department,
       jsonb_object_agg(department, legal_person + economy + other)
           filter (where legal_person + economy + other > 0) as by_department_no_population
  from staged._mart_entity_sum
 where {only}
 group by 1
