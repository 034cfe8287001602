//! Errors of the domain: a rule was broken. Each one is the user's to fix, and
//! adapters map them to 4xx answers.

use crate::values::State;

/// A rule of the domain refused a command.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DomainError {
    /// The command is not allowed in the incident's current state.
    #[error("cannot {action} an incident that is {state}")]
    IllegalTransition { action: &'static str, state: State },
    /// The input broke a rule of the record (missing field, bad value).
    #[error("{0}")]
    Invalid(String),
    /// The actor's role does not allow this.
    #[error("{0}")]
    Forbidden(String),
    /// The command would change nothing.
    #[error("{0}")]
    NoChange(String),
    /// Something else still depends on what the command would remove.
    #[error("{0}")]
    InUse(String),
}
