-- `GET /v1/tasks` pages through the due-ordered list with a cursor (due time, id): an index in
-- that order answers each page from its first rows, however many tasks are open.
create index tasks_due on tasks (due_at, id);
