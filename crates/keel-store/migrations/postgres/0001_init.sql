-- keel schema v1 on PostgreSQL. Times are BIGINT microseconds since the epoch (UTC).
CREATE TABLE users (
    id            TEXT PRIMARY KEY,
    name          TEXT NOT NULL,
    email         TEXT NOT NULL UNIQUE,
    role          TEXT NOT NULL,
    time_zone     TEXT,
    password_hash TEXT,
    disabled      BOOLEAN NOT NULL DEFAULT FALSE,
    created_at    BIGINT NOT NULL
);

CREATE TABLE api_tokens (
    id           TEXT PRIMARY KEY,
    user_id      TEXT NOT NULL REFERENCES users(id),
    name         TEXT NOT NULL,
    token_hash   TEXT NOT NULL UNIQUE,
    created_at   BIGINT NOT NULL
);

CREATE SEQUENCE incident_number_seq;

-- The projection of each incident: derived from its timeline, rewritten only
-- in the transaction that appends the entries it reflects.
CREATE TABLE incidents (
    id          TEXT PRIMARY KEY,
    number      BIGINT NOT NULL UNIQUE,
    state       TEXT NOT NULL,
    priority    TEXT NOT NULL,
    service     TEXT,
    team        TEXT,
    owner       TEXT NOT NULL,
    reported_by TEXT NOT NULL,
    major       BOOLEAN NOT NULL,
    search      TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL,
    version     BIGINT NOT NULL,
    head_hash   TEXT NOT NULL,
    doc         JSONB NOT NULL
);
CREATE INDEX incidents_state ON incidents(state, number);
CREATE INDEX incidents_owner ON incidents(owner, number);
CREATE INDEX incidents_team ON incidents(team, number);
CREATE INDEX incidents_reported_by ON incidents(reported_by, number);

CREATE TABLE timeline_entries (
    incident_id  TEXT NOT NULL REFERENCES incidents(id),
    seq          BIGINT NOT NULL,
    kind         TEXT NOT NULL,
    actor        TEXT NOT NULL,
    recorded_at  BIGINT NOT NULL,
    occurred_at  BIGINT,
    started_at   BIGINT,
    completed_at BIGINT,
    data         JSONB NOT NULL,
    prev_hash    TEXT NOT NULL,
    hash         TEXT NOT NULL,
    PRIMARY KEY (incident_id, seq)
);

-- The timeline is append-only: corrections are new entries.
CREATE FUNCTION keel_timeline_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'timeline entries are append-only: add a correcting entry instead'
        USING ERRCODE = 'integrity_constraint_violation';
END;
$$;
CREATE TRIGGER timeline_entries_no_update BEFORE UPDATE OR DELETE ON timeline_entries
    FOR EACH ROW EXECUTE FUNCTION keel_timeline_append_only();
CREATE TRIGGER timeline_entries_no_truncate BEFORE TRUNCATE ON timeline_entries
    FOR EACH STATEMENT EXECUTE FUNCTION keel_timeline_append_only();
