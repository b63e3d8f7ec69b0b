-- PostgreSQL moves its transactions indexes to kinds a bulk import can afford (BRIN, fewer btrees).
-- SQLite has no BRIN and keeps its btrees; this file keeps the two directories in step.
select 1;
