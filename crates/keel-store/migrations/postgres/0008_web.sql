-- The web interface: sign-in lock-out, browser sessions, per-user
-- preferences (saved queue views, followed incidents), and partial indexes
-- that keep pages fast however much history there is: open incidents (the
-- queue, boards, the status page) and major ones (status page, portal).
ALTER TABLE users ADD COLUMN failed_logins INTEGER NOT NULL DEFAULT 0;
ALTER TABLE users ADD COLUMN locked_until BIGINT;

-- Only the SHA-256 of the cookie secret is stored.
CREATE TABLE web_sessions (
    id_hash    TEXT PRIMARY KEY,
    user_id    TEXT NOT NULL REFERENCES users(id),
    csrf_token TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX web_sessions_user ON web_sessions(user_id);
CREATE INDEX web_sessions_expiry ON web_sessions(expires_at);

CREATE TABLE user_prefs (
    user_id    TEXT NOT NULL REFERENCES users(id),
    kind       TEXT NOT NULL,
    name       TEXT NOT NULL,
    value      TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (user_id, kind, name)
);

CREATE INDEX incidents_open_service ON incidents(service, priority, major)
    WHERE state IN ('new', 'accepted', 'on_hold');
CREATE INDEX incidents_open_team ON incidents(team, priority, sla_due_at, number)
    WHERE state IN ('new', 'accepted', 'on_hold');
CREATE INDEX incidents_open_number ON incidents(number)
    WHERE state IN ('new', 'accepted', 'on_hold');
CREATE INDEX incidents_major ON incidents(number) WHERE major = TRUE;
