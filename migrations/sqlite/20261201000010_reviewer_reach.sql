-- Signed links in emails and SMS: one row per (notification, decision), found by the SHA-256
-- of its token (the token itself is never stored). Single use: `used_at` is set in the same
-- transaction as the decision it records.
create table task_links (
    token_hash text primary key,
    task_id text not null,
    instance_id text not null,
    decision text not null,
    person text not null,
    created_at bigint not null,
    expires_at bigint not null,
    used_at bigint,
    used_ip text,
    used_agent text
);
create index task_links_task on task_links (task_id);

-- Outbound webhooks. Rows sharing an ordering key (instance and subscriber) are carried out one
-- at a time, in id order: a later event waits while an earlier one is retried.
alter table outbox add column ordering_key text;
create index outbox_ordering on outbox (ordering_key, id) where status = 'pending' and ordering_key is not null;

-- The delivery log of outbound webhooks: one row per event and subscriber, with its body (for
-- replay), the attempts made and the receiver's last answer.
create table webhook_deliveries (
    id text primary key,
    subscriber text not null,
    instance_id text not null,
    event text not null,
    body text not null,
    status text not null,
    attempts bigint not null,
    last_status bigint,
    last_error text,
    created_at bigint not null,
    updated_at bigint not null
);
create index webhook_deliveries_subscriber on webhook_deliveries (subscriber, created_at);

-- A notification sent on the other channel after its own failed for good names the one it
-- stands in for.
alter table notifications add column fallback_for text;

-- Out-of-office: while a delegation runs, tasks and escalations meant for `person` go to
-- `delegate` (optionally for one role only), and the person is copied.
create table delegations (
    id text primary key,
    person text not null,
    delegate text not null,
    role text,
    starts_at bigint not null,
    ends_at bigint not null,
    created_by text not null,
    created_at bigint not null,
    revoked_at bigint
);
create index delegations_person on delegations (person, ends_at);

-- The person a task is assigned to (by delegation or an operator's reassignment); null: the
-- role's queue.
alter table tasks add column assignee text;
