-- A run that read every current record: link_scope.sql compares them with all that staged._link_input remembers.
-- Views inside the rebuild's transaction (rolled back with it); lib/linking.py drops them before it commits.
create temp view link_known as select * from staged._link_input;
create temp view link_links as select * from core.entity_link;
