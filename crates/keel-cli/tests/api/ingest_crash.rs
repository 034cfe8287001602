//! kill -9 under ingest load (written next).
