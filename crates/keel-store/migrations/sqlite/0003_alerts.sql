-- Alerts: one row per (integration, dedup key). The unique key is what makes
-- a retried or concurrently delivered event a repeat, never a second alert.
CREATE TABLE alerts (
    id             TEXT PRIMARY KEY,
    integration_id TEXT NOT NULL REFERENCES integrations(id),
    dedup_key      TEXT NOT NULL,
    group_key      TEXT,
    status         TEXT NOT NULL,
    summary        TEXT NOT NULL,
    severity       TEXT NOT NULL,
    source         TEXT,
    incident_id    TEXT REFERENCES incidents(id),
    count          INTEGER NOT NULL,
    first_seen     INTEGER NOT NULL,
    last_seen      INTEGER NOT NULL,
    UNIQUE (integration_id, dedup_key)
);
CREATE INDEX alerts_incident ON alerts(incident_id);
CREATE INDEX alerts_status ON alerts(status, id);
-- Correlation: the alerts of one group (e.g. Alertmanager's groupKey) share an open incident.
CREATE INDEX alerts_group ON alerts(integration_id, group_key);
