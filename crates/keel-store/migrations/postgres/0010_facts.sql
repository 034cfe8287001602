-- The metrics' per-incident facts (keel_domain::metrics::IncidentFacts as
-- JSON), derived from the timeline and kept for the incident version they
-- were computed at: a row whose version is not the incident's is stale and
-- recomputed. Only finished incidents are kept (open ones depend on now).
-- Deleting every row is a full rebuild.
CREATE TABLE incident_facts (
    incident_id TEXT PRIMARY KEY,
    version     BIGINT NOT NULL,
    facts       TEXT NOT NULL
);
