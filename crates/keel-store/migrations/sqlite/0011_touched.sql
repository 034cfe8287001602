-- Finds the incidents written since a moment (`updated_at` is the server's
-- clock at the write), so that each node's in-memory metrics facts catch up
-- with what any node wrote without rereading every incident.
CREATE INDEX incidents_updated ON incidents(updated_at, number);
