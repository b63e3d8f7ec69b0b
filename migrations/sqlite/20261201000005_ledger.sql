-- The ledger: one row per account with its balance per bucket (locked by the transition that
-- posts to it), and every posting, append-only. Amounts are decimal text, exact in both
-- backends.
create table ledger_accounts (
    account text primary key,
    currency text not null,
    quota text not null,
    supplements text not null,
    reserved text not null,
    consumed text not null,
    updated_at bigint not null
);

create table ledger_entries (
    id integer primary key autoincrement,
    account text not null,
    movement text not null,
    amount text not null,
    currency text not null,
    instance_id text not null,
    seq bigint not null,
    step text,
    created_at bigint not null
);
create index ledger_entries_account on ledger_entries (account, id);
create index ledger_entries_instance on ledger_entries (instance_id);
