-- The `q` filter (text in number, title or description) through a trigram
-- index, so a search stays fast over years of incidents. FTS5 keeps it in
-- step with incidents.search by triggers; its rowid is the incident number.
CREATE VIRTUAL TABLE incidents_search USING fts5(
    search, content='incidents', content_rowid='number', tokenize='trigram'
);
INSERT INTO incidents_search(incidents_search) VALUES ('rebuild');

CREATE TRIGGER incidents_search_insert AFTER INSERT ON incidents
BEGIN
    INSERT INTO incidents_search(rowid, search) VALUES (new.number, new.search);
END;

CREATE TRIGGER incidents_search_update AFTER UPDATE OF search ON incidents
WHEN old.search IS NOT new.search
BEGIN
    INSERT INTO incidents_search(incidents_search, rowid, search) VALUES ('delete', old.number, old.search);
    INSERT INTO incidents_search(rowid, search) VALUES (new.number, new.search);
END;
