-- A record whose address lies outside the configured city is kept with method 'outside_city' (no entity):
-- counted apart from 'unmatched', and never attached to a local entity by identity.
alter table core.entity_link drop constraint entity_link_method_check;
alter table core.entity_link add constraint entity_link_method_check check (method in (
    'address_exact', 'address_fuzzy', 'name_in_village', 'coordinate_polygon', 'coordinate_nearest', 'identity',
    'outside_city', 'unmatched'));
comment on column core.entity_link.method is 'How the record was attached: address_exact, address_fuzzy, name_in_village, coordinate_polygon, coordinate_nearest, identity; or outside_city (its address lies outside the city) / unmatched, with no entity.';
