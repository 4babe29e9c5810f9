-- HMAC for the pseudonymous master keys, computed where the records are (identity resolution in SQL).
create extension if not exists pgcrypto;
