-- The fingerprints of what linking and identity resolution last read are a memory, not data: a crash that
-- loses them (PostgreSQL empties an unlogged table on crash recovery) only makes the next run redo every
-- record (lib/fingerprints.py). Unlogged, rewriting them after a run writes no WAL (a full run writes every row).
alter table staged._link_input set unlogged;
alter table staged._ident_input set unlogged;
