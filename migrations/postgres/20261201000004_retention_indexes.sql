-- When a timer was fired or cancelled, and indexes for the retention purge: done outbox rows
-- by completion, closed timers and idempotency keys by age.
alter table timers add column closed_at bigint;
create index timers_closed on timers (status, closed_at);
create index outbox_done on outbox (status, done_at);
create index idempotency_keys_created on idempotency_keys (created_at);
