-- Detection policy: per-integration classification, correlation, recovery
-- and flapping settings (JSON), the optional signing secret for webhook
-- signatures (Grafana's HMAC), what each alert was classified as (service,
-- CI: correlation looks them up), its recent state changes (flapping), and
-- maintenance windows.
ALTER TABLE integrations ADD COLUMN policy TEXT NOT NULL DEFAULT '{"reopen_window_secs":3600}';
ALTER TABLE integrations ADD COLUMN signing_secret TEXT;
ALTER TABLE alerts ADD COLUMN service TEXT;
ALTER TABLE alerts ADD COLUMN ci TEXT;
ALTER TABLE alerts ADD COLUMN changes TEXT NOT NULL DEFAULT '[]';
ALTER TABLE alerts ADD COLUMN flapping BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE alerts ADD COLUMN suppressed_by TEXT;
CREATE INDEX alerts_service ON alerts(service, last_seen);
CREATE INDEX alerts_ci ON alerts(ci, last_seen);

CREATE TABLE maintenance_windows (
    id          TEXT PRIMARY KEY,
    service     TEXT,
    ci          TEXT,
    starts_at   BIGINT NOT NULL,
    ends_at     BIGINT NOT NULL,
    reason      TEXT NOT NULL,
    created_by  TEXT NOT NULL REFERENCES users(id),
    created_at  BIGINT NOT NULL,
    CHECK (service IS NOT NULL OR ci IS NOT NULL),
    CHECK (ends_at > starts_at)
);
CREATE INDEX maintenance_windows_service ON maintenance_windows(service, ends_at);
CREATE INDEX maintenance_windows_ci ON maintenance_windows(ci, ends_at);
