//! An integration's ingest policy: how the signals it receives are
//! classified (severity mapping, ordered rules on the signal's fields and
//! labels), correlated (time windows), how recovery ends an incident, and
//! when an alert counts as flapping. Pure data and pure functions; the store
//! keeps the policy as JSON on the integration.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::Severity;
use crate::{DomainError, Impact, Timestamp, Urgency};

/// Longest window a policy may set, in seconds (30 days).
const MAX_WINDOW_SECS: u32 = 30 * 24 * 3600;
/// Most rules one integration may have.
const MAX_RULES: usize = 200;

/// What recovery of an incident's last open alert does.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RecoveryPolicy {
    /// Resolve the incident ("recovered (monitoring)", automated).
    #[default]
    Resolve,
    /// Only record the recovery in the timeline; people resolve.
    Annotate,
}

/// When an alert counts as flapping: `changes` state changes (fire or
/// recover) within `within_secs`. `changes = 0` turns detection off.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FlapPolicy {
    pub changes: u32,
    #[serde(deserialize_with = "seconds")]
    pub within_secs: u32,
}

impl Default for FlapPolicy {
    fn default() -> Self {
        Self {
            changes: 6,
            within_secs: 3600,
        }
    }
}

/// The impact and urgency a severity maps to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Levels {
    pub impact: Impact,
    pub urgency: Urgency,
}

/// What a matching rule sets on the incident a signal opens.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleActions {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ci: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub team: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub impact: Option<Impact>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub urgency: Option<Urgency>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub major: Option<bool>,
}

/// A classification rule: when every condition holds, its actions apply.
/// Conditions name a signal field (`summary`, `source`, `severity`,
/// `service`, `ci`, `dedup_key`) or a label (`labels.NAME`) and give a
/// case-insensitive glob (`*` matches any run of characters).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventRule {
    pub name: String,
    #[serde(default)]
    pub when: BTreeMap<String, String>,
    pub set: RuleActions,
}

/// How an integration's signals are classified, correlated and closed. Fields
/// left out of a stored or submitted policy take the standard values.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IngestPolicy {
    /// Overrides of the default severity → impact/urgency mapping.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub severity_map: BTreeMap<Severity, Levels>,
    /// Tried in order; the first that matches classifies.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub rules: Vec<EventRule>,
    pub on_recovery: RecoveryPolicy,
    /// A new alert for a service or CI that has an open incident with an
    /// alert seen within this many seconds joins that incident (0: off).
    #[serde(deserialize_with = "seconds")]
    pub correlation_window_secs: u32,
    /// A trigger within this many seconds of its incident's automatic or
    /// manual resolution reopens it; later ones open a new incident.
    #[serde(deserialize_with = "seconds")]
    pub reopen_window_secs: u32,
    pub flapping: FlapPolicy,
}

/// A window in seconds: a number, or a duration like the rest of the API
/// writes them ("90s", "15m", "4h", "2d").
fn seconds<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<u32, D::Error> {
    use serde::de::Error;
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Window {
        Seconds(u32),
        Text(String),
    }
    match Window::deserialize(deserializer)? {
        Window::Seconds(n) => Ok(n),
        Window::Text(text) => {
            let text = text.trim();
            let micros = match text.strip_suffix('d').map(str::trim).map(str::parse::<i64>) {
                Some(Ok(days)) => days.saturating_mul(86_400_000_000),
                _ => text
                    .parse::<crate::sla::Duration>()
                    .map_err(|e| D::Error::custom(format!("{text:?} is not a duration: {e}")))?
                    .as_micros(),
            };
            if micros < 0 || micros % 1_000_000 != 0 {
                return Err(D::Error::custom(format!(
                    "{text:?} must be whole seconds, not negative"
                )));
            }
            u32::try_from(micros / 1_000_000).map_err(|_| D::Error::custom(format!("{text:?} is too long")))
        }
    }
}

const SIGNAL_FIELDS: [&str; 6] = ["summary", "source", "severity", "service", "ci", "dedup_key"];

impl Default for IngestPolicy {
    fn default() -> Self {
        Self::standard()
    }
}

impl IngestPolicy {
    /// The policy a new integration gets: severity defaults, no rules,
    /// resolve on recovery, no correlation window, reopen within an hour,
    /// flapping at 6 changes an hour.
    #[must_use]
    pub fn standard() -> Self {
        Self {
            severity_map: BTreeMap::new(),
            rules: Vec::new(),
            on_recovery: RecoveryPolicy::Resolve,
            correlation_window_secs: 0,
            reopen_window_secs: 3600,
            flapping: FlapPolicy::default(),
        }
    }

    /// Checks limits and condition names.
    ///
    /// # Errors
    /// [`DomainError::Invalid`] naming the first problem.
    pub fn check(&self) -> Result<(), DomainError> {
        let invalid = |text: String| Err(DomainError::Invalid(text));
        if self.rules.len() > MAX_RULES {
            return invalid(format!("at most {MAX_RULES} rules"));
        }
        for (name, value) in [
            ("correlation_window_secs", self.correlation_window_secs),
            ("reopen_window_secs", self.reopen_window_secs),
            ("flapping.within_secs", self.flapping.within_secs),
        ] {
            if value > MAX_WINDOW_SECS {
                return invalid(format!("{name} must be at most {MAX_WINDOW_SECS} (30 days)"));
            }
        }
        if self.flapping.changes == 1 || self.flapping.changes > 1000 {
            return invalid("flapping.changes must be 0 (off) or 2 to 1000".into());
        }
        for rule in &self.rules {
            let name = rule.name.trim();
            if name.is_empty() || name.chars().count() > 100 {
                return invalid("every rule needs a name of 1 to 100 characters".into());
            }
            if rule.when.len() > 20 {
                return invalid(format!("rule {name:?}: at most 20 conditions"));
            }
            for (field, pattern) in &rule.when {
                let known = SIGNAL_FIELDS.contains(&field.as_str())
                    || field.strip_prefix("labels.").is_some_and(|label| !label.is_empty());
                if !known {
                    return invalid(format!(
                        "rule {name:?}: unknown field {field:?}; use one of {} or labels.NAME",
                        SIGNAL_FIELDS.join(", ")
                    ));
                }
                if pattern.chars().count() > 500 {
                    return invalid(format!("rule {name:?}: patterns are at most 500 characters"));
                }
            }
            for (what, text) in [
                ("category", &rule.set.category),
                ("service", &rule.set.service),
                ("ci", &rule.set.ci),
                ("team", &rule.set.team),
            ] {
                if text
                    .as_ref()
                    .is_some_and(|t| t.trim().is_empty() || t.chars().count() > crate::MAX_SHORT)
                {
                    return invalid(format!(
                        "rule {name:?}: {what} must be 1 to {} characters",
                        crate::MAX_SHORT
                    ));
                }
            }
        }
        Ok(())
    }
}

/// What classification decided for an incident a signal opens.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Classification {
    pub impact: Impact,
    pub urgency: Urgency,
    pub category: Option<String>,
    pub service: Option<String>,
    pub ci: Option<String>,
    pub team: Option<String>,
    pub major: bool,
    /// The rule that matched, if any.
    pub rule: Option<String>,
}

/// Classifies a signal: severity mapping first, then the first matching
/// rule's actions on top. `field` answers a condition's field name
/// (`labels.NAME` included) for this signal; `service`, `ci` and `team` are
/// the values before any rule (from the signal or the integration).
#[must_use]
pub fn classify<'a>(
    policy: &IngestPolicy,
    severity: Severity,
    field: impl Fn(&str) -> Option<&'a str>,
    defaults: (Option<String>, Option<String>, Option<String>),
) -> Classification {
    let (impact, urgency) = policy
        .severity_map
        .get(&severity)
        .map_or_else(|| severity.impact_urgency(), |l| (l.impact, l.urgency));
    let (service, ci, team) = defaults;
    let mut out = Classification {
        impact,
        urgency,
        category: None,
        service,
        ci,
        team,
        major: false,
        rule: None,
    };
    let matched = policy.rules.iter().find(|rule| {
        rule.when
            .iter()
            .all(|(name, pattern)| field(name).is_some_and(|value| glob_match(pattern, value)))
    });
    if let Some(rule) = matched {
        let set = &rule.set;
        out.impact = set.impact.unwrap_or(out.impact);
        out.urgency = set.urgency.unwrap_or(out.urgency);
        out.category = set.category.clone().or(out.category);
        out.service = set.service.clone().or(out.service);
        out.ci = set.ci.clone().or(out.ci);
        out.team = set.team.clone().or(out.team);
        out.major = set.major.unwrap_or(out.major);
        out.rule = Some(rule.name.clone());
    }
    out
}

/// Case-insensitive glob: `*` matches any run of characters (also none);
/// everything else matches itself.
#[must_use]
pub fn glob_match(pattern: &str, value: &str) -> bool {
    let pattern: Vec<char> = pattern.to_lowercase().chars().collect();
    let value: Vec<char> = value.to_lowercase().chars().collect();
    let (mut p, mut v) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while v < value.len() {
        if p < pattern.len() && pattern[p] == '*' {
            star = Some((p, v));
            p += 1;
        } else if p < pattern.len() && pattern[p] == value[v] {
            p += 1;
            v += 1;
        } else if let Some((star_p, star_v)) = star {
            p = star_p + 1;
            v = star_v + 1;
            star = Some((star_p, star_v + 1));
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|c| *c == '*')
}

/// Records a state change of an alert at `now`, keeping only the changes
/// inside the flapping window (and never more than the policy counts).
pub fn record_change(changes: &mut Vec<Timestamp>, now: Timestamp, policy: &FlapPolicy) {
    changes.push(now);
    let since = now.as_micros() - i64::from(policy.within_secs) * 1_000_000;
    changes.retain(|t| t.as_micros() > since);
    let keep = (policy.changes as usize).max(1);
    if changes.len() > keep {
        let drop = changes.len() - keep;
        changes.drain(..drop);
    }
}

/// Whether the recorded changes make the alert flapping as of `now`.
#[must_use]
pub fn is_flapping(changes: &[Timestamp], now: Timestamp, policy: &FlapPolicy) -> bool {
    if policy.changes < 2 {
        return false;
    }
    let since = now.as_micros() - i64::from(policy.within_secs) * 1_000_000;
    changes.iter().filter(|t| t.as_micros() > since).count() >= policy.changes as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    fn level(n: u8) -> (Impact, Urgency) {
        (
            Impact::try_from(n).expect("level 1..4"),
            Urgency::try_from(n).expect("level 1..4"),
        )
    }

    fn rule(name: &str, when: &[(&str, &str)], set: RuleActions) -> EventRule {
        EventRule {
            name: name.into(),
            when: when.iter().map(|(k, v)| ((*k).to_string(), (*v).to_string())).collect(),
            set,
        }
    }

    #[test]
    fn glob_matches_stars_anywhere_and_ignores_case() {
        assert!(glob_match("db-*", "DB-primary"));
        assert!(glob_match("*disk*full*", "the disk is full now"));
        assert!(glob_match("*", ""));
        assert!(glob_match("a*b*c", "aXbYbc"));
        assert!(!glob_match("db-*", "web-1"));
        assert!(!glob_match("abc", "abcd"));
        assert!(!glob_match("a*c", "ab"));
    }

    #[test]
    fn severity_map_overrides_the_default_levels() {
        let mut policy = IngestPolicy::standard();
        let (impact, urgency) = level(2);
        policy
            .severity_map
            .insert(Severity::Warning, Levels { impact, urgency });
        let c = classify(&policy, Severity::Warning, |_| None, (None, None, None));
        assert_eq!((c.impact.get(), c.urgency.get()), (2, 2));
        let c = classify(&policy, Severity::Info, |_| None, (None, None, None));
        assert_eq!((c.impact.get(), c.urgency.get()), (4, 4));
    }

    #[test]
    fn the_first_matching_rule_classifies_and_is_named() {
        let mut policy = IngestPolicy::standard();
        policy.rules = vec![
            rule(
                "disks",
                &[("summary", "*disk*"), ("labels.env", "prod")],
                RuleActions {
                    category: Some("storage".into()),
                    team: Some("platform".into()),
                    impact: Some(level(1).0),
                    ..RuleActions::default()
                },
            ),
            rule(
                "everything prod",
                &[("labels.env", "prod")],
                RuleActions {
                    category: Some("other".into()),
                    ..RuleActions::default()
                },
            ),
        ];
        let labels = |env: &'static str, summary: &'static str| {
            move |name: &str| match name {
                "labels.env" => Some(env),
                "summary" => Some(summary),
                _ => None,
            }
        };
        let c = classify(
            &policy,
            Severity::Warning,
            labels("prod", "Disk almost full"),
            (Some("svc".into()), None, Some("ops".into())),
        );
        assert_eq!(c.rule.as_deref(), Some("disks"));
        assert_eq!(c.category.as_deref(), Some("storage"));
        assert_eq!(c.team.as_deref(), Some("platform"));
        assert_eq!(c.service.as_deref(), Some("svc"), "unset actions keep the defaults");
        assert_eq!((c.impact.get(), c.urgency.get()), (1, 3));

        let c = classify(
            &policy,
            Severity::Warning,
            labels("prod", "CPU hot"),
            (None, None, None),
        );
        assert_eq!(c.rule.as_deref(), Some("everything prod"));
        let c = classify(
            &policy,
            Severity::Warning,
            labels("staging", "Disk full"),
            (None, None, None),
        );
        assert_eq!(c.rule, None);
        assert_eq!(c.category, None);
    }

    #[test]
    fn a_condition_on_a_missing_field_does_not_match() {
        let mut policy = IngestPolicy::standard();
        policy.rules = vec![rule("needs env", &[("labels.env", "*")], RuleActions::default())];
        let c = classify(&policy, Severity::Error, |_| None, (None, None, None));
        assert_eq!(c.rule, None);
    }

    #[test]
    fn policies_refuse_unknown_fields_and_silly_windows() {
        let mut policy = IngestPolicy::standard();
        policy.rules = vec![rule("x", &[("colour", "red")], RuleActions::default())];
        assert!(policy.check().is_err());
        policy.rules = vec![rule("x", &[("labels.colour", "red")], RuleActions::default())];
        assert!(policy.check().is_ok());
        policy.reopen_window_secs = MAX_WINDOW_SECS + 1;
        assert!(policy.check().is_err());
        let parsed: Result<IngestPolicy, _> = serde_json::from_str(r#"{"on_recovery":"annotate","bogus":1}"#);
        assert!(parsed.is_err(), "unknown keys are refused");
        let parsed: IngestPolicy = serde_json::from_str(r#"{"severity_map":{"warning":{"impact":2,"urgency":1}}}"#)
            .expect("a severity map parses");
        assert_eq!(parsed.severity_map.len(), 1);
        let windows: IngestPolicy = serde_json::from_str(
            r#"{"correlation_window_secs":"5m","reopen_window_secs":"2d","flapping":{"changes":4,"within_secs":"1h"}}"#,
        )
        .expect("durations as text parse");
        assert_eq!(
            (
                windows.correlation_window_secs,
                windows.reopen_window_secs,
                windows.flapping.within_secs
            ),
            (300, 172_800, 3600)
        );
        assert!(serde_json::from_str::<IngestPolicy>(r#"{"reopen_window_secs":"soon"}"#).is_err());
    }

    #[test]
    fn flapping_needs_enough_changes_inside_the_window() {
        let policy = FlapPolicy {
            changes: 3,
            within_secs: 60,
        };
        let at = |s: i64| Timestamp::from_micros(s * 1_000_000);
        let mut changes = Vec::new();
        record_change(&mut changes, at(0), &policy);
        record_change(&mut changes, at(10), &policy);
        assert!(!is_flapping(&changes, at(10), &policy));
        record_change(&mut changes, at(20), &policy);
        assert!(is_flapping(&changes, at(20), &policy));
        // A minute later the first change has left the window.
        assert!(!is_flapping(&changes, at(61), &policy));
        // The history never grows past what the policy counts.
        for s in 100..200 {
            record_change(&mut changes, at(s), &policy);
        }
        assert_eq!(changes.len(), 3);
        let off = FlapPolicy {
            changes: 0,
            within_secs: 60,
        };
        assert!(!is_flapping(&changes, at(199), &off));
    }
}
