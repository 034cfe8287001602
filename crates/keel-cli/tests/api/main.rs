//! The integration suite: every test runs against SQLite and PostgreSQL
//! through real HTTP (and, for the CLI and `keel serve`, the real binary).

mod harness;

mod access;
mod binary;
mod catalogue;
mod cli_catalogue;
mod cli_ingest;
mod concurrency;
mod detection;
mod import;
mod ingest;
mod ingest_crash;
mod input;
mod integrations;
mod lifecycle;
mod listing;
mod metrics;
mod oncall;
mod operations;
mod sla;
mod timeline;
mod web;
