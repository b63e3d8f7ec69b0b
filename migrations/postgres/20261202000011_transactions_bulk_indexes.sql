-- Indexes that a bulk import can afford. Each btree in random order cost an import more than the
-- rows themselves, so:
-- * the order key (source, order id) becomes the primary key; `id` keeps its sequence and, as it
--   grows with the table's physical order, a BRIN index serves its ranges (a run's cutoff);
-- * a month is found by booking time through BRIN as well (imports arrive roughly in booking
--   order);
-- * a partner's transactions (an explanation's) through the partner alone: its entries share a
--   key, which btree deduplication keeps in a few pages, instead of being ordered by time too.
drop index transactions_booked;
drop index transactions_partner;
create unique index transactions_order_key on transactions (source, order_id);
alter table transactions drop constraint transactions_source_order_id_key;
alter table transactions drop constraint transactions_pkey;
alter table transactions add constraint transactions_pkey
    primary key using index transactions_order_key;
create index transactions_id_brin on transactions using brin (id);
create index transactions_booked_brin on transactions using brin (booked_at);
create index transactions_partner on transactions (partner_id);
