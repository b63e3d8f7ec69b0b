-- Audit events are tagged with HMAC-SHA256 under a configured key; each records the key's
-- version. Events recorded before keys existed keep version 0, the unkeyed SHA-256 chain.
alter table events add column key_version bigint not null default 0;
