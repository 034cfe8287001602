//! Detection: what a monitoring signal does to its alert and incident.
//! A signal triggers, acknowledges or resolves an alert named by its dedup
//! key; an open alert that triggers again is only a repeat; an incident
//! resolves by itself when its last open alert recovers. Pure rules: the
//! store keeps alerts, the timeline keeps what happened to incidents.

use serde::{Deserialize, Serialize};

use crate::{DomainError, Impact, Urgency};

mod policy;

pub use policy::{
    Classification, EventRule, FlapPolicy, IngestPolicy, RecoveryPolicy, RuleActions, classify, glob_match,
    is_flapping, record_change,
};

/// How bad a signal says things are (PagerDuty's four levels).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Critical,
    Error,
    Warning,
    Info,
}

impl Severity {
    /// Every severity, worst first.
    pub const ALL: [Severity; 4] = [Severity::Critical, Severity::Error, Severity::Warning, Severity::Info];

    /// The wire name.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Severity::Critical => "critical",
            Severity::Error => "error",
            Severity::Warning => "warning",
            Severity::Info => "info",
        }
    }

    /// Parses a wire name (case-insensitive).
    #[must_use]
    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str().eq_ignore_ascii_case(text))
    }

    /// The default classification of an incident a signal of this severity
    /// opens: critical → impact 1 / urgency 1 … info → 4 / 4.
    #[must_use]
    pub fn impact_urgency(self) -> (Impact, Urgency) {
        let level = match self {
            Severity::Critical => 1,
            Severity::Error => 2,
            Severity::Warning => 3,
            Severity::Info => 4,
        };
        match (Impact::try_from(level), Urgency::try_from(level)) {
            (Ok(impact), Ok(urgency)) => (impact, urgency),
            _ => (Impact::DEFAULT, Urgency::DEFAULT),
        }
    }
}

/// What a signal asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SignalAction {
    Trigger,
    Acknowledge,
    Resolve,
}

/// The state of an alert.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertStatus {
    Triggered,
    Acknowledged,
    Resolved,
}

impl AlertStatus {
    /// The wire name.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            AlertStatus::Triggered => "triggered",
            AlertStatus::Acknowledged => "acknowledged",
            AlertStatus::Resolved => "resolved",
        }
    }

    /// Parses a wire name.
    #[must_use]
    pub fn parse(text: &str) -> Option<Self> {
        [AlertStatus::Triggered, AlertStatus::Acknowledged, AlertStatus::Resolved]
            .into_iter()
            .find(|s| s.as_str() == text)
    }

    /// Whether the alert still signals trouble.
    #[must_use]
    pub const fn is_open(self) -> bool {
        !matches!(self, AlertStatus::Resolved)
    }
}

/// What a signal does, given the status of its alert (if the alert exists).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reaction {
    /// A trigger for an alert that is still open: count the repeat, nothing more.
    Repeat,
    /// A trigger for a new or recovered alert: it opens (joins) an incident.
    Open,
    /// The monitoring side acknowledged an open alert.
    Acknowledge,
    /// An open alert recovered.
    Recover,
    /// Nothing to do: acknowledging or resolving an alert that is not open.
    Ignore,
}

/// Decides what a signal does to its alert.
#[must_use]
pub fn react(current: Option<AlertStatus>, action: SignalAction) -> Reaction {
    let open = current.is_some_and(AlertStatus::is_open);
    match (action, open) {
        (SignalAction::Trigger, true) => Reaction::Repeat,
        (SignalAction::Trigger, false) => Reaction::Open,
        (SignalAction::Acknowledge, true) if current == Some(AlertStatus::Triggered) => Reaction::Acknowledge,
        (SignalAction::Resolve, true) => Reaction::Recover,
        _ => Reaction::Ignore,
    }
}

/// Checks a dedup key: 1 to 255 characters, no NUL.
///
/// # Errors
/// [`DomainError::Invalid`] naming what is wrong.
pub fn check_dedup_key(key: &str) -> Result<(), DomainError> {
    if key.is_empty() || key.chars().count() > 255 || key.contains('\0') {
        return Err(DomainError::Invalid("dedup_key must be 1 to 255 characters".into()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeats_of_an_open_alert_only_count() {
        assert_eq!(
            react(Some(AlertStatus::Triggered), SignalAction::Trigger),
            Reaction::Repeat
        );
        assert_eq!(
            react(Some(AlertStatus::Acknowledged), SignalAction::Trigger),
            Reaction::Repeat
        );
    }

    #[test]
    fn a_new_or_recovered_alert_opens() {
        assert_eq!(react(None, SignalAction::Trigger), Reaction::Open);
        assert_eq!(
            react(Some(AlertStatus::Resolved), SignalAction::Trigger),
            Reaction::Open
        );
    }

    #[test]
    fn acknowledge_and_resolve_act_only_on_open_alerts() {
        assert_eq!(
            react(Some(AlertStatus::Triggered), SignalAction::Acknowledge),
            Reaction::Acknowledge
        );
        assert_eq!(
            react(Some(AlertStatus::Acknowledged), SignalAction::Acknowledge),
            Reaction::Ignore
        );
        assert_eq!(
            react(Some(AlertStatus::Acknowledged), SignalAction::Resolve),
            Reaction::Recover
        );
        assert_eq!(react(None, SignalAction::Resolve), Reaction::Ignore);
        assert_eq!(
            react(Some(AlertStatus::Resolved), SignalAction::Resolve),
            Reaction::Ignore
        );
    }

    #[test]
    fn severity_sets_the_default_classification() {
        let (impact, urgency) = Severity::Critical.impact_urgency();
        assert_eq!((impact.get(), urgency.get()), (1, 1));
        assert_eq!(Severity::parse("WARNING"), Some(Severity::Warning));
        assert_eq!(Severity::parse("fatal"), None);
    }
}
