//! The integration suite: every test runs against SQLite and PostgreSQL
//! through real HTTP (and, for the CLI and `keel serve`, the real binary).

mod harness;

mod access;
mod binary;
mod concurrency;
mod ingest;
mod input;
mod integrations;
mod lifecycle;
mod listing;
mod operations;
mod timeline;
