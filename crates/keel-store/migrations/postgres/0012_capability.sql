-- The organisation's part of the capability self-assessment, per criterion
-- (keel_domain::capability): its own threshold for a measured criterion, and
-- a person's verdict with a note for what no timeline can tell.
CREATE TABLE capability_settings (
    criterion   TEXT PRIMARY KEY,
    threshold   DOUBLE PRECISION,
    met         BOOLEAN,
    note        TEXT,
    recorded_by TEXT,
    recorded_at BIGINT
);
