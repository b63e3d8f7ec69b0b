-- A row is handed to the queue (`dispatched_until`: when it is pushed again if no worker took
-- it) and leased by the worker that takes it (`lease_token`, `lease_until`, renewed while the
-- work runs); only the lease holder may finish it. Indexes for the orders listings and the
-- claim sort by.
alter table outbox add column dispatched_until bigint;
alter table outbox add column lease_token text;
create index outbox_claim_order on outbox (status, id);
create index instances_created on instances (created_at);
