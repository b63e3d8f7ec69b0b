-- partnerflow's record: instances, their audit chain, tasks, timers, outbox, idempotency keys,
-- notifications and the definitions instances run on. Times are microseconds since the Unix
-- epoch (UTC) in bigint, so both backends compare them the same way; JSON is stored as text.

create table definitions (
    workflow_id text not null,
    version bigint not null,
    fingerprint text not null,
    source text not null,
    created_at bigint not null,
    primary key (workflow_id, version)
);

create table instances (
    id text primary key,
    workflow_id text not null,
    def_version bigint not null,
    business_key text not null,
    partner_id text,
    parent_id text,
    status text not null,
    current_step text,
    seq bigint not null,
    state text not null,
    version bigint not null,
    event_count bigint not null,
    last_hash text not null,
    created_at bigint not null,
    updated_at bigint not null,
    unique (workflow_id, business_key)
);
create index instances_status on instances (status, workflow_id);

create table events (
    instance_id text not null,
    seq bigint not null,
    kind text not null,
    actor text not null,
    at bigint not null,
    payload text not null,
    hash text not null,
    primary key (instance_id, seq)
);

create table tasks (
    id text primary key,
    instance_id text not null,
    step text not null,
    seq bigint not null,
    role text not null,
    status text not null,
    created_at bigint not null,
    due_at bigint not null,
    beyond_calendar bigint not null,
    escalation_level bigint not null,
    outcome text,
    closed_at bigint
);
create index tasks_open on tasks (status, role, due_at);
create index tasks_instance on tasks (instance_id);

create table timers (
    id bigserial primary key,
    instance_id text not null,
    seq bigint not null,
    kind text not null,
    due_at bigint not null,
    status text not null,
    claimed_until bigint
);
create index timers_due on timers (status, due_at);
create index timers_instance on timers (instance_id, seq);

create table outbox (
    id bigserial primary key,
    instance_id text not null,
    kind text not null,
    payload text not null,
    status text not null,
    available_at bigint not null,
    lease_until bigint,
    failures bigint not null,
    last_error text,
    created_at bigint not null,
    done_at bigint
);
create index outbox_due on outbox (status, available_at);

create table idempotency_keys (
    scope text not null,
    key text not null,
    request_hash text not null,
    response_status bigint not null,
    response_body text not null,
    created_at bigint not null,
    primary key (scope, key)
);

create table notifications (
    key text primary key,
    instance_id text not null,
    channel text not null,
    recipient text not null,
    address text not null,
    template text not null,
    payload text not null,
    sent_at bigint not null
);
create index notifications_instance on notifications (instance_id);
