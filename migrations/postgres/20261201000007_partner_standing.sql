-- Facts about a partner that transitions record (`record = { business_info = "certified" }`)
-- and validators of other workflows consult: one row per partner and fact, the latest state.
create table partner_standing (
    partner_id text not null,
    fact text not null,
    state text not null,
    instance_id text not null,
    updated_at bigint not null,
    primary key (partner_id, fact)
);

-- A partner's instances of a workflow, newest first (duplicate checks, partner views).
create index instances_partner_workflow on instances (partner_id, workflow_id, created_at);
