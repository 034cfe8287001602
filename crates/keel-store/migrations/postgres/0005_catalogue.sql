-- The service catalogue and configuration model: teams, services and CIs,
-- each a JSON document checked by keel_domain::catalogue before it is
-- written. Names are unique per kind; references inside documents are ids.
CREATE TABLE catalogue (
    id          TEXT PRIMARY KEY,
    kind        TEXT NOT NULL,
    name        TEXT NOT NULL,
    doc         TEXT NOT NULL,
    updated_at  BIGINT NOT NULL,
    UNIQUE (kind, name)
);
