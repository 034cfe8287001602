-- keel schema v1 on SQLite. Times are integer microseconds since the epoch (UTC).
CREATE TABLE users (
    id            TEXT PRIMARY KEY,
    name          TEXT NOT NULL,
    email         TEXT NOT NULL UNIQUE,
    role          TEXT NOT NULL,
    time_zone     TEXT,
    password_hash TEXT,
    disabled      INTEGER NOT NULL DEFAULT 0,
    created_at    INTEGER NOT NULL
);

CREATE TABLE api_tokens (
    id           TEXT PRIMARY KEY,
    user_id      TEXT NOT NULL REFERENCES users(id),
    name         TEXT NOT NULL,
    token_hash   TEXT NOT NULL UNIQUE,
    created_at   INTEGER NOT NULL
);

-- The projection of each incident: derived from its timeline, rewritten only
-- in the transaction that appends the entries it reflects.
CREATE TABLE incidents (
    id          TEXT PRIMARY KEY,
    number      INTEGER NOT NULL UNIQUE,
    state       TEXT NOT NULL,
    priority    TEXT NOT NULL,
    service     TEXT,
    team        TEXT,
    owner       TEXT NOT NULL,
    reported_by TEXT NOT NULL,
    major       INTEGER NOT NULL,
    search      TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL,
    version     INTEGER NOT NULL,
    head_hash   TEXT NOT NULL,
    doc         TEXT NOT NULL
);
CREATE INDEX incidents_state ON incidents(state, number);
CREATE INDEX incidents_owner ON incidents(owner, number);
CREATE INDEX incidents_team ON incidents(team, number);
CREATE INDEX incidents_reported_by ON incidents(reported_by, number);

CREATE TABLE timeline_entries (
    incident_id  TEXT NOT NULL REFERENCES incidents(id),
    seq          INTEGER NOT NULL,
    kind         TEXT NOT NULL,
    actor        TEXT NOT NULL,
    recorded_at  INTEGER NOT NULL,
    occurred_at  INTEGER,
    started_at   INTEGER,
    completed_at INTEGER,
    data         TEXT NOT NULL,
    prev_hash    TEXT NOT NULL,
    hash         TEXT NOT NULL,
    PRIMARY KEY (incident_id, seq)
) WITHOUT ROWID;

-- The timeline is append-only: corrections are new entries.
CREATE TRIGGER timeline_entries_no_update BEFORE UPDATE ON timeline_entries
BEGIN
    SELECT RAISE(ABORT, 'timeline entries are append-only: add a correcting entry instead');
END;
CREATE TRIGGER timeline_entries_no_delete BEFORE DELETE ON timeline_entries
BEGIN
    SELECT RAISE(ABORT, 'timeline entries are append-only: add a correcting entry instead');
END;
