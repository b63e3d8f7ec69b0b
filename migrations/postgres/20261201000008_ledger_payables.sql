-- The payable a posting sets aside or pays out (`mdf:<instance>`, `nre:<instance>:<n>`), so a
-- partner's payables and payments are read from the postings themselves.
alter table ledger_entries add column payable text;
create index ledger_entries_payable on ledger_entries (payable);
