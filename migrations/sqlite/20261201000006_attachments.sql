-- Uploaded attachments: the file is kept once under its SHA-256 in the attachment directory;
-- each upload is a row naming it.
create table attachments (
    id text primary key,
    sha256 text not null,
    filename text not null,
    screen text not null,
    size bigint not null,
    uploaded_by text not null,
    partner_id text,
    created_at bigint not null
);
create index attachments_sha256 on attachments (sha256);
