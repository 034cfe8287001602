//! The incident domain of keel: what an incident is, how it moves through its
//! lifecycle, and the hash-chained timeline that is the single source of truth.
//!
//! This crate does no I/O, holds no async code and never reads the clock: the
//! current time and every identifier are parameters. Storage, HTTP and workers
//! are adapters around it (see `ARCHITECTURE.md`).
//!
//! The flow is always the same: a [`Command`] from an [`Actor`] is checked
//! against the current [`Incident`] by [`decide`], which yields [`Change`]s or a
//! [`DomainError`]; each change becomes a timeline [`Entry`] chained to its
//! predecessor by [`timeline::seal`]; the incident is the fold of its entries
//! by [`apply`].

mod access;
pub mod capability;
pub mod catalogue;
pub mod detection;
mod error;
pub mod escalation;
mod incident;
mod lifecycle;
pub mod metrics;
pub mod oncall;
mod priority;
pub mod rules;
pub mod sla;
pub mod sla_watch;
mod time;
pub mod timeline;
mod values;

pub use access::{Actor, Role, can_view, can_view_entry};
pub use error::DomainError;
pub use incident::{Closure, Incident, Resolution, SlaRecord, apply, fold};
pub use lifecycle::{
    Change, ClassificationPatch, ClosureInput, Command, MAX_SHORT, MAX_TEXT, MAX_TITLE, Registration,
    RegistrationInput, decide, register, register_classified,
};
pub use priority::{Priority, PriorityMatrix};
pub use time::Timestamp;
pub use timeline::{Claimed, Entry, VerifyReport};
pub use values::{Channel, HoldReason, Impact, Source, State, Urgency, UserId, Visibility};
