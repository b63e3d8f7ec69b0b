-- Monthly rebate settlement. Transactions are imported once per (source, order id); amounts are
-- decimal text here (the settlement sums them exactly in Rust). A run settles one programme's
-- period up to the transactions imported when it began (its cutoff); a statement exists once
-- per (programme, partner, period), which makes the settlement exactly once.
create table transactions (
    id integer primary key autoincrement,
    source text not null,
    order_id text not null,
    partner_id text not null,
    customer_id text not null,
    product text not null,
    family text not null,
    amount text not null,
    currency text not null,
    tax_rate text not null,
    kind text not null,
    booked_at bigint not null,
    original_order_id text,
    imported_at bigint not null,
    unique (source, order_id)
);
create index transactions_booked on transactions (booked_at, partner_id);
create index transactions_partner on transactions (partner_id, booked_at);
-- Refunds that name their order: the clawbacks of a month.
create index transactions_refunds on transactions (booked_at) where original_order_id is not null;

create table settlement_runs (
    id text primary key,
    programme text not null,
    period text not null,
    status text not null,
    cutoff bigint not null,
    previous_cutoff bigint,
    partners_total bigint not null,
    partners_done bigint not null,
    statements bigint not null,
    total text not null,
    started_at bigint not null,
    finished_at bigint,
    unique (programme, period)
);

create table statements (
    id text primary key,
    programme text not null,
    partner_id text not null,
    period text not null,
    run_id text not null,
    total text not null,
    carried_in text not null,
    payable text not null,
    lines text not null,
    instance_id text,
    carried_into text,
    created_at bigint not null,
    unique (programme, partner_id, period)
);
create index statements_unstarted on statements (run_id, partner_id) where instance_id is null;
