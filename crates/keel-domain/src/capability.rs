//! Capability self-assessment of the incident management practice: the
//! criteria of each capability level (2–5), what keel can show for each from
//! its own metrics, and the level reached by the rule "a level is reached
//! when all its criteria and those of the levels below are met".
//!
//! A criterion is shown by a metric against a threshold the organisation
//! sets (e.g. "resolved within target" ← resolution target met over the last
//! 90 days, at least 90 %), by a metric merely having data (the practice
//! measures it), or — for what no timeline can tell — by a person's
//! attestation with a note. A criterion whose evidence is missing (no data,
//! nobody attested) is not met. The wording is keel's own.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::{Timestamp, UserId};

/// The four dimensions of service management a criterion belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Dimension {
    OrganizationsAndPeople,
    InformationAndTechnology,
    PartnersAndSuppliers,
    ValueStreamsAndProcesses,
}

/// What the practice is trying to be good at.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Factor {
    DetectingEarly,
    ResolvingQuickly,
    ImprovingContinually,
}

/// How a criterion is shown.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Evidence {
    /// The metric (a `metrics::Report::headlines` key) is at least the threshold.
    AtLeast { metric: &'static str, default: f64 },
    /// The metric is at most the threshold.
    AtMost { metric: &'static str, default: f64 },
    /// The metric has data in the window: the practice measures it.
    Measured { metric: &'static str },
    /// Only a person can tell.
    Attested,
}

impl Evidence {
    /// Whether the organisation can set a threshold for it.
    #[must_use]
    pub const fn has_threshold(self) -> bool {
        matches!(self, Evidence::AtLeast { .. } | Evidence::AtMost { .. })
    }
}

/// One criterion.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Criterion {
    pub id: &'static str,
    pub level: u8,
    pub factor: Factor,
    pub dimension: Dimension,
    pub text: &'static str,
    pub evidence: Evidence,
}

const fn criterion(
    id: &'static str,
    level: u8,
    factor: Factor,
    dimension: Dimension,
    text: &'static str,
    evidence: Evidence,
) -> Criterion {
    Criterion {
        id,
        level,
        factor,
        dimension,
        text,
        evidence,
    }
}

use Dimension::ValueStreamsAndProcesses as Process;
use Dimension::{InformationAndTechnology as It, OrganizationsAndPeople as People, PartnersAndSuppliers as Partners};
use Factor::{DetectingEarly as Detect, ImprovingContinually as Improve, ResolvingQuickly as Resolve};

/// Every criterion, by level.
pub const CRITERIA: [Criterion; 24] = [
    criterion(
        "detect-soon",
        2,
        Detect,
        Process,
        "Most incidents are noticed within minutes of starting",
        Evidence::AtMost {
            metric: "detection_lag.median_secs",
            default: 900.0,
        },
    ),
    criterion(
        "detect-automated",
        2,
        Detect,
        It,
        "Monitoring raises incidents by itself wherever it can",
        Evidence::AtLeast {
            metric: "detected_by_monitoring",
            default: 0.2,
        },
    ),
    criterion(
        "detect-reporting",
        2,
        Detect,
        People,
        "Users and stakeholders know how to report an incident and do it promptly",
        Evidence::Attested,
    ),
    criterion(
        "resolve-fast",
        2,
        Resolve,
        Process,
        "Incidents are usually restored by the fastest route available",
        Evidence::AtMost {
            metric: "time_to_resolve.median_secs",
            default: 28_800.0,
        },
    ),
    criterion(
        "resolve-in-target",
        2,
        Resolve,
        Process,
        "Most incidents are resolved within their agreed target times",
        Evidence::AtLeast {
            metric: "resolution_target_met",
            default: 0.9,
        },
    ),
    criterion(
        "detect-in-streams",
        3,
        Detect,
        Process,
        "Noticing incidents is part of how each value stream works",
        Evidence::Attested,
    ),
    criterion(
        "detect-suppliers",
        3,
        Detect,
        Partners,
        "Incidents at suppliers reach us quickly",
        Evidence::Attested,
    ),
    criterion(
        "detect-one-system",
        3,
        Detect,
        It,
        "Every detected incident is recorded and followed in one connected system",
        Evidence::Measured {
            metric: "detected_by_monitoring",
        },
    ),
    criterion(
        "resolve-standard",
        3,
        Resolve,
        It,
        "Recurring kinds of incident are resolved in a standard, recorded way",
        Evidence::AtLeast {
            metric: "known_solution_reuse",
            default: 0.2,
        },
    ),
    criterion(
        "resolve-skills",
        3,
        Resolve,
        People,
        "The skills resolution needs are known, and people who have them are available",
        Evidence::Attested,
    ),
    criterion(
        "resolve-suppliers",
        3,
        Resolve,
        Partners,
        "The suppliers resolution depends on are known and can be called on",
        Evidence::Attested,
    ),
    criterion(
        "resolve-one-system",
        3,
        Resolve,
        It,
        "Resolution work is recorded and followed in one connected system",
        Evidence::Measured {
            metric: "time_to_resolve.median_secs",
        },
    ),
    criterion(
        "approach-agreed",
        3,
        Improve,
        Process,
        "How incidents are managed is written down and agreed by those it concerns",
        Evidence::Attested,
    ),
    criterion(
        "approach-owned",
        3,
        Improve,
        Process,
        "Someone is plainly accountable for how incidents are managed",
        Evidence::Attested,
    ),
    criterion(
        "approach-skills",
        3,
        Improve,
        People,
        "The skills the practice itself needs are known and staffed",
        Evidence::Attested,
    ),
    criterion(
        "detect-measured",
        4,
        Detect,
        Process,
        "How well incidents are detected is measured and reported",
        Evidence::Measured {
            metric: "detection_lag.median_secs",
        },
    ),
    criterion(
        "resolve-fit",
        4,
        Resolve,
        Process,
        "Resolution fits the complexity of the landscape: incidents rarely bounce between teams",
        Evidence::AtMost {
            metric: "reassignments.team_changes",
            default: 0.5,
        },
    ),
    criterion(
        "resolve-in-streams",
        4,
        Resolve,
        Process,
        "Resolving incidents is part of the value streams it serves",
        Evidence::Attested,
    ),
    criterion(
        "resolve-measured",
        4,
        Resolve,
        Process,
        "How well incidents are resolved is measured and reported",
        Evidence::Measured { metric: "reopen_rate" },
    ),
    criterion(
        "approach-integrated",
        4,
        Improve,
        Process,
        "The approach fits the organisation's other standards and ways of working",
        Evidence::Attested,
    ),
    criterion(
        "approach-measured",
        4,
        Improve,
        Process,
        "How well the practice works is measured and reported",
        Evidence::Measured {
            metric: "first_time_resolution",
        },
    ),
    criterion(
        "detect-improved",
        5,
        Detect,
        Process,
        "Detection is reviewed on a schedule and made better",
        Evidence::Attested,
    ),
    criterion(
        "resolve-improved",
        5,
        Resolve,
        Process,
        "Resolution is reviewed on a schedule and made better",
        Evidence::Attested,
    ),
    criterion(
        "approach-improved",
        5,
        Improve,
        Process,
        "The whole approach is reviewed on a schedule and made better",
        Evidence::Attested,
    ),
];

/// The criterion with this id.
#[must_use]
pub fn find(id: &str) -> Option<&'static Criterion> {
    CRITERIA.iter().find(|c| c.id == id)
}

/// What the organisation recorded for one criterion.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Setting {
    /// Its own threshold instead of the default.
    pub threshold: Option<f64>,
    /// A person's verdict (attested criteria).
    pub met: Option<bool>,
    pub note: Option<String>,
    pub recorded_by: Option<UserId>,
    pub recorded_at: Option<Timestamp>,
}

/// One criterion, assessed.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Assessed {
    pub criterion: Criterion,
    /// The threshold in force (measured criteria with one).
    pub threshold: Option<f64>,
    /// The metric's value and the incidents behind it (measured criteria).
    pub value: Option<f64>,
    pub count: usize,
    pub setting: Setting,
    /// Met, not met, or `None`: no evidence yet (counts as not met).
    pub met: Option<bool>,
}

/// The whole assessment.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Assessment {
    /// 1 to 5.
    pub level: u8,
    pub criteria: Vec<Assessed>,
}

/// Assesses every criterion from `headlines` (of a report over the window)
/// and the organisation's `settings` (by criterion id).
#[must_use]
pub fn assess(headlines: &BTreeMap<String, (Option<f64>, usize)>, settings: &BTreeMap<String, Setting>) -> Assessment {
    let criteria: Vec<Assessed> = CRITERIA
        .iter()
        .map(|c| {
            let setting = settings.get(c.id).cloned().unwrap_or_default();
            let metric = match c.evidence {
                Evidence::AtLeast { metric, .. } | Evidence::AtMost { metric, .. } | Evidence::Measured { metric } => {
                    Some(metric)
                }
                Evidence::Attested => None,
            };
            let (value, count) = metric.and_then(|m| headlines.get(m).copied()).unwrap_or((None, 0));
            let threshold = match c.evidence {
                Evidence::AtLeast { default, .. } | Evidence::AtMost { default, .. } => {
                    Some(setting.threshold.unwrap_or(default))
                }
                _ => None,
            };
            let met = match (c.evidence, value, threshold) {
                (Evidence::AtLeast { .. }, Some(v), Some(t)) => Some(v >= t),
                (Evidence::AtMost { .. }, Some(v), Some(t)) => Some(v <= t),
                (Evidence::Measured { .. }, Some(_), _) => Some(true),
                (Evidence::Attested, _, _) => setting.met,
                _ => None,
            };
            Assessed {
                criterion: *c,
                threshold,
                value,
                count,
                setting,
                met,
            }
        })
        .collect();
    Assessment {
        level: level_reached(&criteria),
        criteria,
    }
}

/// The highest level whose criteria, and those of every level below, are
/// all met; 1 when level 2 is not.
#[must_use]
pub fn level_reached(criteria: &[Assessed]) -> u8 {
    let mut level = 1;
    for next in 2..=5u8 {
        let all_met = criteria
            .iter()
            .filter(|a| a.criterion.level == next)
            .all(|a| a.met == Some(true));
        if !all_met {
            break;
        }
        level = next;
    }
    level
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attest_all(met: bool, up_to: u8) -> BTreeMap<String, Setting> {
        CRITERIA
            .iter()
            .filter(|c| c.evidence == Evidence::Attested && c.level <= up_to)
            .map(|c| {
                (
                    c.id.to_string(),
                    Setting {
                        met: Some(met),
                        ..Setting::default()
                    },
                )
            })
            .collect()
    }

    fn good_metrics() -> BTreeMap<String, (Option<f64>, usize)> {
        [
            ("detection_lag.median_secs", 60.0),
            ("detected_by_monitoring", 0.6),
            ("time_to_resolve.median_secs", 3_600.0),
            ("resolution_target_met", 0.95),
            ("known_solution_reuse", 0.4),
            ("reassignments.team_changes", 0.2),
            ("reopen_rate", 0.01),
            ("first_time_resolution", 0.8),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), (Some(v), 100)))
        .collect()
    }

    #[test]
    fn criteria_cover_levels_two_to_five_with_unique_ids() {
        let mut ids: Vec<&str> = CRITERIA.iter().map(|c| c.id).collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), CRITERIA.len());
        for level in 2..=5 {
            assert!(CRITERIA.iter().any(|c| c.level == level), "level {level}");
        }
    }

    #[test]
    fn a_level_is_reached_only_with_every_criterion_of_it_and_below() {
        // Good metrics, attested up to level 3: level 3 (level 4 attestations missing).
        assert_eq!(assess(&good_metrics(), &attest_all(true, 3)).level, 3);
        assert_eq!(assess(&good_metrics(), &attest_all(true, 5)).level, 5);
        // Nothing attested: level 2 already needs a person's word.
        assert_eq!(assess(&good_metrics(), &BTreeMap::new()).level, 1);
        // One level-2 metric below its threshold holds everything at 1, even with all else met.
        let mut slow = good_metrics();
        slow.insert("resolution_target_met".into(), (Some(0.5), 100));
        assert_eq!(assess(&slow, &attest_all(true, 5)).level, 1);
        // A level-4 attestation of "not met" stops at 3 though level 5 is attested.
        let mut settings = attest_all(true, 5);
        settings.insert(
            "resolve-in-streams".into(),
            Setting {
                met: Some(false),
                note: Some("not yet".into()),
                ..Setting::default()
            },
        );
        assert_eq!(assess(&good_metrics(), &settings).level, 3);
    }

    #[test]
    fn thresholds_set_by_the_organisation_replace_the_defaults_and_no_data_is_not_met() {
        let mut settings = attest_all(true, 5);
        settings.insert(
            "resolve-in-target".into(),
            Setting {
                threshold: Some(0.99),
                ..Setting::default()
            },
        );
        let a = assess(&good_metrics(), &settings);
        let target = a
            .criteria
            .iter()
            .find(|c| c.criterion.id == "resolve-in-target")
            .expect("criterion");
        assert_eq!(
            (target.threshold, target.value, target.met),
            (Some(0.99), Some(0.95), Some(false))
        );
        assert_eq!(a.level, 1);
        let mut empty = good_metrics();
        empty.remove("detection_lag.median_secs");
        let b = assess(&empty, &attest_all(true, 5));
        let lag = b
            .criteria
            .iter()
            .find(|c| c.criterion.id == "detect-soon")
            .expect("criterion");
        assert_eq!(lag.met, None);
        assert_eq!(b.level, 1);
    }
}
