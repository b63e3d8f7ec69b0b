-- The dispatcher's claim walks the pending rows in id order through an index of pending rows
-- only. An index scan marks the entries of rows that have left `pending` dead as it passes them,
-- so the next claim skips them without visiting the table; a bitmap scan over `(status, …)`
-- visited every row version left behind by the rows' updates until vacuum came (tens of
-- milliseconds per claim under load).
drop index outbox_claim_order;
drop index outbox_due;
create index outbox_pending on outbox (id) where status = 'pending';
-- Rows held until later (a retry's backoff, quiet hours) are passed over by their due time.
create index outbox_pending_due on outbox (available_at) where status = 'pending';
