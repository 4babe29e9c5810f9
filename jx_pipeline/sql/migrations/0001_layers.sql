-- The warehouse layers (see README "What the pipeline does") and the extensions every layer relies on.
create extension if not exists postgis;
create extension if not exists pg_trgm;

create schema if not exists raw;      -- feeds as landed, with load lineage (contains PII)
create schema if not exists staged;   -- typed, standardized columns per feed (contains PII)
create schema if not exists quality;  -- rejects with reasons, load audit, scorecards
create schema if not exists core;     -- admin units, geographic entities, master indexes, links
create schema if not exists mart;     -- published PostGIS tables for the platform; no raw PII

comment on schema raw is 'Feeds as landed plus load lineage. Contains personal data: pipeline only.';
comment on schema staged is 'Typed, standardized canonical columns per feed. Contains personal data: pipeline only.';
comment on schema quality is 'Rejected rows with reasons, load audit and quality scorecards.';
comment on schema core is 'Admin units, geographic entities, master indexes and record-to-entity links.';
comment on schema mart is 'Entity-centric PostGIS tables for the spatial platform. Pseudonymous keys only.';
