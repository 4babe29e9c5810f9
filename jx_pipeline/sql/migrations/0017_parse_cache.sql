-- What the address parser made of each text linking has read (addresses, village names), so that a run parses
-- only texts it has not seen: linking's work follows the change. Valid for one parser and gazetteer
-- (staged._parse_cache_key); raw texts may carry names and phones, so it lives in the personal-data layer.
create table staged._parse_cache (
    text_md5     uuid primary key,    -- md5(text): a text of any length (a btree key holds ~2.7 kB)
    text         text not null,
    entity_id    text,                -- the door plate the text resolves to (null when outside or unresolved)
    fuzzy        boolean not null,    -- a one-character typo was fixed to get there
    outside      boolean not null,    -- the text names a place outside the city
    village_code text                 -- the village it names (read as a village name: parse, then the city's names)
);
create table staged._parse_cache_key (key text not null);
comment on table staged._parse_cache is 'Address parser output per distinct text read by linking, for the parser and gazetteer in staged._parse_cache_key.';
