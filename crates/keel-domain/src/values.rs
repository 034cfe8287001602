//! Small value types of the incident record, each parsed and checked once at
//! the edge so that the rest of the domain can trust them.

use serde::{Deserialize, Serialize};
use std::fmt;

use crate::DomainError;

/// The lifecycle state of an incident.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    New,
    Accepted,
    OnHold,
    Resolved,
    Closed,
    Cancelled,
}

impl State {
    /// Every state, in lifecycle order.
    pub const ALL: [State; 6] = [
        State::New,
        State::Accepted,
        State::OnHold,
        State::Resolved,
        State::Closed,
        State::Cancelled,
    ];

    /// The wire name of the state.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            State::New => "new",
            State::Accepted => "accepted",
            State::OnHold => "on_hold",
            State::Resolved => "resolved",
            State::Closed => "closed",
            State::Cancelled => "cancelled",
        }
    }

    /// Parses a wire name.
    #[must_use]
    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|state| state.as_str() == text)
    }

    /// Whether work on the incident is still going on (not resolved, closed or cancelled).
    #[must_use]
    pub const fn is_open(self) -> bool {
        matches!(self, State::New | State::Accepted | State::OnHold)
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

macro_rules! level {
    ($name:ident, $what:literal) => {
        #[doc = concat!("The ", $what, " of an incident: 1 (highest) to 4 (lowest).")]
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(try_from = "u8", into = "u8")]
        pub struct $name(u8);

        impl $name {
            #[doc = concat!("The ", $what, " used when none is given.")]
            pub const DEFAULT: $name = $name(3);

            /// The level as a number 1..=4.
            #[must_use]
            pub const fn get(self) -> u8 {
                self.0
            }
        }

        impl TryFrom<u8> for $name {
            type Error = DomainError;
            fn try_from(value: u8) -> Result<Self, Self::Error> {
                if (1..=4).contains(&value) {
                    Ok(Self(value))
                } else {
                    Err(DomainError::Invalid(format!(
                        concat!($what, " must be between 1 and 4, got {}"),
                        value
                    )))
                }
            }
        }

        impl From<$name> for u8 {
            fn from(value: $name) -> u8 {
                value.0
            }
        }
    };
}

level!(Impact, "impact");
level!(Urgency, "urgency");

/// Why an incident waits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HoldReason {
    AwaitingUser,
    AwaitingSupplier,
    AwaitingChange,
    Other,
}

/// Who or what reported the incident.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    User,
    Monitoring,
    Specialist,
    Supplier,
}

/// Through which channel the report came.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    Portal,
    Email,
    Api,
    Phone,
    EventIntegration,
}

/// Who may read a comment.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Visibility {
    /// Staff only.
    #[default]
    Internal,
    /// Also the reporting user.
    Public,
}

/// The identifier of a person (a user of keel).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct UserId(String);

impl UserId {
    /// Wraps an identifier the caller has already checked.
    #[must_use]
    pub fn new(id: impl Into<String>) -> Self {
        Self(id.into())
    }

    /// The identifier as text.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
