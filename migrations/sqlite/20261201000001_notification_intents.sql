-- A notification is recorded as an intent (`sending`, with its key and a claim) before the
-- provider is called outside any transaction, and marked `sent` after; a crash in between is
-- retried under the same key. Rows recorded before this migration were sent.
alter table notifications add column status text not null default 'sent';
alter table notifications add column claimed_until bigint;
alter table notifications add column attempts bigint not null default 1;
alter table notifications add column last_error text;
