//! Classification rules for every new incident, from a person or from
//! monitoring: ordered by `position`, each with conditions on the record
//! (and, for events, the signal's labels) and the fields it sets. The first
//! enabled rule whose conditions all hold fills the fields the registration
//! left empty, and the registration records its name (`classified_by`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::detection::glob_match;
use crate::{DomainError, Impact, MAX_SHORT, RegistrationInput, Urgency};

/// Fields a condition may name (besides `labels.NAME`).
const FIELDS: [&str; 13] = [
    "title",
    "description",
    "category",
    "subcategory",
    "service",
    "ci",
    "team",
    "impact",
    "urgency",
    "source",
    "channel",
    "location",
    "symptoms",
];

/// Fields a rule may set.
const SETTABLE: [&str; 8] = [
    "category",
    "subcategory",
    "service",
    "ci",
    "team",
    "impact",
    "urgency",
    "major",
];

/// A classification rule.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    pub id: String,
    pub name: String,
    /// Lower positions are tried first.
    #[serde(default)]
    pub position: i64,
    #[serde(default = "enabled")]
    pub enabled: bool,
    /// Field → what it must be: a text (case-insensitive glob, `*` for any
    /// run of characters), a number, or a list of either (any of them).
    #[serde(default)]
    pub when: BTreeMap<String, Value>,
    /// Field → value to set when the registration left it empty.
    pub then: BTreeMap<String, Value>,
}

const fn enabled() -> bool {
    true
}

fn text_of(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn matches(expected: &Value, actual: &str) -> bool {
    match expected {
        Value::Array(options) => options.iter().any(|o| matches(o, actual)),
        other => text_of(other).is_some_and(|pattern| glob_match(&pattern, actual)),
    }
}

impl Rule {
    /// Checks the rule's name, condition fields and the values it sets.
    ///
    /// # Errors
    /// [`DomainError::Invalid`] naming the first problem.
    pub fn checked(mut self) -> Result<Self, DomainError> {
        self.name = self.name.trim().to_string();
        if self.name.is_empty() || self.name.chars().count() > MAX_SHORT || self.name.contains('\0') {
            return Err(DomainError::Invalid(format!(
                "a rule needs a name of 1 to {MAX_SHORT} characters"
            )));
        }
        for (field, expected) in &self.when {
            let known =
                FIELDS.contains(&field.as_str()) || field.strip_prefix("labels.").is_some_and(|l| !l.is_empty());
            if !known {
                return Err(DomainError::Invalid(format!(
                    "rule {:?}: cannot match on {field:?}; use one of {} or labels.NAME",
                    self.name,
                    FIELDS.join(", ")
                )));
            }
            let simple = |v: &Value| matches!(v, Value::String(_) | Value::Number(_) | Value::Bool(_));
            let ok = simple(expected)
                || matches!(expected, Value::Array(list) if !list.is_empty() && list.iter().all(simple));
            if !ok {
                return Err(DomainError::Invalid(format!(
                    "rule {:?}: {field} must be a text, a number or a list of them",
                    self.name
                )));
            }
        }
        if !(-1_000_000_000..=1_000_000_000).contains(&self.position) {
            return Err(DomainError::Invalid(format!(
                "rule {:?}: position must be between -1000000000 and 1000000000",
                self.name
            )));
        }
        if self.when.len() > 50 {
            return Err(DomainError::Invalid(format!(
                "rule {:?}: at most 50 conditions",
                self.name
            )));
        }
        if self.then.is_empty() {
            return Err(DomainError::Invalid(format!("rule {:?} sets nothing", self.name)));
        }
        for (field, value) in &self.then {
            if !SETTABLE.contains(&field.as_str()) {
                return Err(DomainError::Invalid(format!(
                    "rule {:?}: cannot set {field:?}; it may set {}",
                    self.name,
                    SETTABLE.join(", ")
                )));
            }
            let valid = match field.as_str() {
                "impact" => value
                    .as_u64()
                    .and_then(|n| u8::try_from(n).ok())
                    .is_some_and(|n| Impact::try_from(n).is_ok()),
                "urgency" => value
                    .as_u64()
                    .and_then(|n| u8::try_from(n).ok())
                    .is_some_and(|n| Urgency::try_from(n).is_ok()),
                "major" => value.is_boolean(),
                _ => value
                    .as_str()
                    .is_some_and(|s| !s.trim().is_empty() && s.chars().count() <= MAX_SHORT && !s.contains('\0')),
            };
            if !valid {
                return Err(DomainError::Invalid(format!(
                    "rule {:?}: {field} cannot be {value}",
                    self.name
                )));
            }
        }
        Ok(self)
    }

    /// Whether every condition holds for `field` (which answers a field's
    /// current value as text, `None` when empty).
    #[must_use]
    pub fn matches(&self, field: &dyn Fn(&str) -> Option<String>) -> bool {
        self.enabled
            && self
                .when
                .iter()
                .all(|(name, expected)| field(name).is_some_and(|actual| matches(expected, &actual)))
    }
}

/// A field of a registration as text, for matching.
fn registration_field(input: &RegistrationInput, name: &str) -> Option<String> {
    let text = |v: &Option<String>| v.clone().filter(|s| !s.trim().is_empty());
    match name {
        "title" => Some(input.title.clone()),
        "description" => text(&input.description),
        "category" => text(&input.category),
        "subcategory" => text(&input.subcategory),
        "service" => text(&input.service),
        "ci" => text(&input.ci),
        "team" => text(&input.team),
        "impact" => input.impact.map(|i| i.get().to_string()),
        "urgency" => input.urgency.map(|u| u.get().to_string()),
        "source" => input
            .source
            .and_then(|s| serde_json::to_value(s).ok())
            .and_then(|v| v.as_str().map(str::to_string)),
        "channel" => input
            .channel
            .and_then(|c| serde_json::to_value(c).ok())
            .and_then(|v| v.as_str().map(str::to_string)),
        "location" => text(&input.location),
        "symptoms" => text(&input.symptoms),
        _ => None,
    }
}

/// Applies the first matching rule (by position, then name) to a new
/// incident's registration: it fills the fields left empty. `labels` are the
/// signal's labels for event incidents (empty for people's reports).
/// Returns the rule's name, also recorded in `input.classified_by`.
pub fn classify(rules: &[Rule], input: &mut RegistrationInput, labels: &BTreeMap<String, String>) -> Option<String> {
    let mut ordered: Vec<&Rule> = rules.iter().filter(|r| r.enabled).collect();
    ordered.sort_by(|a, b| a.position.cmp(&b.position).then_with(|| a.name.cmp(&b.name)));
    let snapshot = input.clone();
    let field = |name: &str| -> Option<String> {
        match name.strip_prefix("labels.") {
            Some(label) => labels.get(label).cloned(),
            None => registration_field(&snapshot, name),
        }
    };
    let rule = ordered.into_iter().find(|rule| rule.matches(&field))?;
    for (name, value) in &rule.then {
        let text = value.as_str().map(|s| s.trim().to_string());
        let level = value.as_u64().and_then(|n| u8::try_from(n).ok());
        match name.as_str() {
            "category" if input.category.is_none() => input.category = text,
            "subcategory" if input.subcategory.is_none() => input.subcategory = text,
            "service" if input.service.is_none() => input.service = text,
            "ci" if input.ci.is_none() => input.ci = text,
            "team" if input.team.is_none() => input.team = text,
            "impact" if input.impact.is_none() => input.impact = level.and_then(|n| Impact::try_from(n).ok()),
            "urgency" if input.urgency.is_none() => input.urgency = level.and_then(|n| Urgency::try_from(n).ok()),
            "major" if !input.major => input.major = value.as_bool().unwrap_or(false),
            _ => {}
        }
    }
    let name = match &input.classified_by {
        Some(earlier) => format!("{earlier}, {}", rule.name),
        None => rule.name.clone(),
    };
    input.classified_by = Some(name.clone());
    Some(name)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn rule(name: &str, position: i64, when: Value, then: Value) -> Rule {
        serde_json::from_value(json!({"id": name, "name": name, "position": position, "when": when, "then": then}))
            .expect("a rule")
    }

    fn input(title: &str) -> RegistrationInput {
        RegistrationInput {
            title: title.into(),
            ..RegistrationInput::default()
        }
    }

    #[test]
    fn the_first_matching_rule_by_position_fills_empty_fields() {
        let rules = vec![
            rule("catch-all", 100, json!({}), json!({"category": "other"})),
            rule(
                "vpn",
                10,
                json!({"title": "*vpn*"}),
                json!({"category": "network", "team": "Net", "impact": 2}),
            ),
        ];
        let mut vpn = input("VPN drops every hour");
        assert_eq!(classify(&rules, &mut vpn, &BTreeMap::new()).as_deref(), Some("vpn"));
        assert_eq!(vpn.category.as_deref(), Some("network"));
        assert_eq!(vpn.team.as_deref(), Some("Net"));
        assert_eq!(vpn.impact.map(Impact::get), Some(2));
        assert_eq!(vpn.classified_by.as_deref(), Some("vpn"));
        let mut other = input("Printer jam");
        assert_eq!(
            classify(&rules, &mut other, &BTreeMap::new()).as_deref(),
            Some("catch-all")
        );
    }

    #[test]
    fn what_the_reporter_set_is_kept() {
        let rules = vec![rule(
            "vpn",
            0,
            json!({"title": "*vpn*"}),
            json!({"category": "network"}),
        )];
        let mut mine = RegistrationInput {
            category: Some("access".into()),
            ..input("vpn login fails")
        };
        classify(&rules, &mut mine, &BTreeMap::new());
        assert_eq!(mine.category.as_deref(), Some("access"));
    }

    #[test]
    fn lists_numbers_and_labels_match() {
        let rules = vec![rule(
            "prod db",
            0,
            json!({"impact": [1, 2], "labels.env": "prod", "service": ["db*", "storage"]}),
            json!({"team": "DBA", "major": true}),
        )];
        let labels = BTreeMap::from([("env".to_string(), "prod".to_string())]);
        let mut event = RegistrationInput {
            impact: Impact::try_from(2).ok(),
            service: Some("db-main".into()),
            ..input("Replication lag")
        };
        assert!(classify(&rules, &mut event, &labels).is_some());
        assert!(event.major);
        let mut staging = RegistrationInput {
            impact: Impact::try_from(2).ok(),
            service: Some("db-main".into()),
            ..input("Replication lag")
        };
        assert!(
            classify(&rules, &mut staging, &BTreeMap::new()).is_none(),
            "the label is missing"
        );
    }

    #[test]
    fn disabled_rules_and_bad_rules() {
        let mut off = rule("off", 0, json!({}), json!({"category": "x"}));
        off.enabled = false;
        assert!(classify(&[off], &mut input("t"), &BTreeMap::new()).is_none());
        assert!(
            rule("r", 0, json!({"colour": "red"}), json!({"category": "x"}))
                .checked()
                .is_err()
        );
        assert!(rule("r", 0, json!({}), json!({"owner": "x"})).checked().is_err());
        assert!(rule("r", 0, json!({}), json!({"impact": 9})).checked().is_err());
        assert!(
            rule("r", 0, json!({"title": {"op": "x"}}), json!({"category": "x"}))
                .checked()
                .is_err()
        );
        assert!(rule("r", 0, json!({}), json!({})).checked().is_err());
        assert!(
            rule("r", 0, json!({"labels.env": ["a", 1]}), json!({"major": true}))
                .checked()
                .is_ok()
        );
    }
}
