-- SLA timers and the notification outbox. Every incident row carries when
-- the SLA sweep must look at it next (`sla_next_at`; 0 = as soon as
-- possible, NULL = only after it changes), the worst state of its open
-- clocks and its earliest due time (for the list filter and the backlog).
-- New rows start at 0; writes that change what SLA clocks depend on set it
-- back to 0. The sweep reads the index, never every incident.
ALTER TABLE incidents ADD COLUMN sla_next_at INTEGER DEFAULT 0;
ALTER TABLE incidents ADD COLUMN sla_state TEXT;
ALTER TABLE incidents ADD COLUMN sla_due_at INTEGER;
CREATE INDEX incidents_sla_next ON incidents(sla_next_at);

-- Notifications to deliver (by webhook today; e-mail later), written in the
-- same transaction as the timeline entry that causes them.
CREATE TABLE notifications (
    id              TEXT PRIMARY KEY,
    incident_id     TEXT NOT NULL REFERENCES incidents(id),
    kind            TEXT NOT NULL,
    recipients      TEXT NOT NULL,
    payload         TEXT NOT NULL,
    created_at      INTEGER NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    delivered_at    INTEGER,
    last_error      TEXT
);
CREATE INDEX notifications_pending ON notifications(next_attempt_at) WHERE delivered_at IS NULL;
