-- The `q` filter (text in number, title or description) through a trigram
-- index, so a search stays fast over years of incidents.
CREATE EXTENSION IF NOT EXISTS pg_trgm;
CREATE INDEX incidents_search_trgm ON incidents USING gin (search gin_trgm_ops);
