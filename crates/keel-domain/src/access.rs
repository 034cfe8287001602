//! Who may do what. Roles are coarse (end user, agent, incident manager,
//! admin); on top, end users act only on incidents they reported and never
//! see internal notes. Every adapter asks these functions; none decides alone.

use serde::{Deserialize, Serialize};

use crate::{Entry, Incident, UserId};

/// The role of a user; each includes the rights of the ones before it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    EndUser,
    Agent,
    IncidentManager,
    Admin,
}

impl Role {
    /// Every role, least powerful first.
    pub const ALL: [Role; 4] = [Role::EndUser, Role::Agent, Role::IncidentManager, Role::Admin];

    /// The wire name.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Role::EndUser => "end_user",
            Role::Agent => "agent",
            Role::IncidentManager => "incident_manager",
            Role::Admin => "admin",
        }
    }

    /// Parses a wire name.
    #[must_use]
    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|role| role.as_str() == text)
    }

    /// Whether this role works incidents (agent or above).
    #[must_use]
    pub fn is_staff(self) -> bool {
        self >= Role::Agent
    }
}

/// Somebody acting: a user and the role they act in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Actor {
    pub user: UserId,
    pub role: Role,
}

impl Actor {
    /// Whether the actor's role is at least `role`.
    #[must_use]
    pub fn at_least(&self, role: Role) -> bool {
        self.role >= role
    }
}

/// Whether the actor may see the incident at all. End users see only the
/// incidents they reported; staff see all.
#[must_use]
pub fn can_view(actor: &Actor, incident: &Incident) -> bool {
    actor.role.is_staff() || incident.reported_by == actor.user
}

/// Whether the actor may see this timeline entry of a visible incident:
/// internal comments are for staff only.
#[must_use]
pub fn can_view_entry(actor: &Actor, entry: &Entry) -> bool {
    if actor.role.is_staff() {
        return true;
    }
    !(entry.kind == "commented" && entry.data.get("visibility").and_then(serde_json::Value::as_str) != Some("public"))
}
