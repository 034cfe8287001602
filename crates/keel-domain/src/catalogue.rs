//! The service catalogue and configuration model: teams (members, a lead,
//! work-in-progress limits), services (owner team, criticality) and
//! configuration items (the services they support, the CIs they depend
//! on), stored with the classification rules that refer to them. Pure data with its rules: names unique per kind, references that
//! resolve, a dependency graph without cycles — and the questions an
//! incident asks of it: which services does a failing CI impact, and which
//! similar systems may be affected too.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use serde::{Deserialize, Serialize};

use crate::rules::Rule;
use crate::{DomainError, MAX_SHORT, MAX_TEXT, State, UserId};

/// The kinds of catalogue object.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Team,
    Service,
    Ci,
    /// A classification rule (kept with the catalogue it refers to).
    Rule,
    /// A team's on-call schedule.
    Schedule,
    /// An SLA policy (per service, or the default).
    SlaPolicy,
    /// A team's escalation policy.
    EscalationPolicy,
}

impl Kind {
    /// The wire name.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Kind::Team => "team",
            Kind::Service => "service",
            Kind::Ci => "ci",
            Kind::Rule => "rule",
            Kind::Schedule => "schedule",
            Kind::SlaPolicy => "sla_policy",
            Kind::EscalationPolicy => "escalation_policy",
        }
    }

    /// Parses a wire name.
    #[must_use]
    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == text)
    }

    /// Every kind (a new kind must be added here, or stored rows of it
    /// would not load: the test below checks the names round-trip).
    pub const ALL: [Kind; 7] = [
        Kind::Team,
        Kind::Service,
        Kind::Ci,
        Kind::Rule,
        Kind::Schedule,
        Kind::SlaPolicy,
        Kind::EscalationPolicy,
    ];
}

/// A team: people who own incidents together.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Team {
    pub id: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Owns the team's event incidents until on-call answers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lead: Option<UserId>,
    #[serde(default)]
    pub members: Vec<UserId>,
    /// Most open incidents per state on the team's board.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub wip_limits: BTreeMap<String, u32>,
}

/// How much the business depends on a service.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Criticality {
    Critical,
    High,
    #[default]
    Medium,
    Low,
}

/// A service users rely on.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Service {
    pub id: String,
    pub name: String,
    /// The owning team's id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub team: Option<String>,
    #[serde(default)]
    pub criticality: Criticality,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// A configuration item: a component that services run on.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ci {
    pub id: String,
    pub name: String,
    /// server, database, network, application, …
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    /// Ids of the services it supports.
    #[serde(default)]
    pub services: Vec<String>,
    /// Ids of the CIs it needs to work.
    #[serde(default)]
    pub depends_on: Vec<String>,
}

/// A team's on-call schedule.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TeamSchedule {
    pub id: String,
    pub name: String,
    /// The team's id.
    pub team: String,
    pub schedule: crate::oncall::Schedule,
}

/// An SLA policy as stored: for one service, or the default (no service).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlaPolicyDoc {
    pub id: String,
    pub name: String,
    /// The service's id; `None`: the default for incidents of other services.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    pub spec: crate::sla::SlaPolicySpec,
}

/// The whole catalogue, as loaded for a check or a question.
#[derive(Clone, Debug, Default)]
pub struct Catalogue {
    pub teams: Vec<Team>,
    pub services: Vec<Service>,
    pub cis: Vec<Ci>,
    pub rules: Vec<Rule>,
    pub schedules: Vec<TeamSchedule>,
    pub sla_policies: Vec<SlaPolicyDoc>,
    pub escalation_policies: Vec<crate::escalation::EscalationPolicy>,
}

/// A write to the catalogue.
#[derive(Clone, Debug)]
pub enum Change {
    PutTeam(Team),
    PutService(Service),
    PutCi(Ci),
    PutRule(Rule),
    PutSchedule(TeamSchedule),
    /// The spec must already have been checked with its time zone loaded
    /// (`SlaPolicy::from_spec`): that needs the time zone database.
    PutSlaPolicy(SlaPolicyDoc),
    PutEscalationPolicy(crate::escalation::EscalationPolicy),
    Delete(Kind, String),
}

/// One stored object: its kind, id, unique name and JSON document.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Row {
    pub kind: Kind,
    pub id: String,
    pub name: String,
    pub doc: String,
}

/// What a failing CI (or a service) touches.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Impact {
    /// Services that the CI supports, directly or through CIs that depend on it.
    pub impacted_services: Vec<String>,
    /// CIs that depend on the failing one (directly or not): they may fail next.
    pub dependants: Vec<String>,
    /// CIs of the same kind that share a dependency or a service with it:
    /// the same weakness may hit them.
    pub similar_systems: Vec<String>,
}

fn name(what: &str, value: &str) -> Result<String, DomainError> {
    let value = value.trim();
    if value.is_empty() || value.chars().count() > MAX_SHORT || value.contains('\0') {
        return Err(DomainError::Invalid(format!(
            "{what} name must be 1 to {MAX_SHORT} characters"
        )));
    }
    Ok(value.to_string())
}

fn text(what: &str, value: Option<&String>, max: usize) -> Result<Option<String>, DomainError> {
    match value.map(|v| v.trim()) {
        Some(v) if v.chars().count() > max || v.contains('\0') => {
            Err(DomainError::Invalid(format!("{what} must be at most {max} characters")))
        }
        Some("") | None => Ok(None),
        Some(v) => Ok(Some(v.to_string())),
    }
}

impl Team {
    /// Checks and normalises the team: trimmed name, members unique, the
    /// lead a member (added if missing), WIP limits only for open states.
    ///
    /// # Errors
    /// [`DomainError::Invalid`] naming the problem.
    pub fn checked(mut self) -> Result<Self, DomainError> {
        self.name = name("team", &self.name)?;
        self.description = text("description", self.description.as_ref(), MAX_TEXT)?;
        let mut seen = BTreeSet::new();
        self.members.retain(|m| seen.insert(m.clone()));
        if let Some(lead) = &self.lead
            && !self.members.contains(lead)
        {
            self.members.insert(0, lead.clone());
        }
        if self.members.len() > 1000 {
            return Err(DomainError::Invalid("a team has at most 1000 members".into()));
        }
        if self.wip_limits.values().any(|n| *n > 100_000) {
            return Err(DomainError::Invalid("WIP limits are at most 100000".into()));
        }
        for state in self.wip_limits.keys() {
            if !State::parse(state).is_some_and(State::is_open) {
                return Err(DomainError::Invalid(format!(
                    "WIP limits apply to open states (new, accepted, on_hold), not {state:?}"
                )));
            }
        }
        Ok(self)
    }
}

impl Service {
    /// Checks and normalises the service's own fields.
    ///
    /// # Errors
    /// [`DomainError::Invalid`] naming the problem.
    pub fn checked(mut self) -> Result<Self, DomainError> {
        self.name = name("service", &self.name)?;
        self.description = text("description", self.description.as_ref(), MAX_TEXT)?;
        Ok(self)
    }
}

impl Ci {
    /// Checks and normalises the CI's own fields.
    ///
    /// # Errors
    /// [`DomainError::Invalid`] naming the problem.
    pub fn checked(mut self) -> Result<Self, DomainError> {
        self.name = name("CI", &self.name)?;
        self.kind = name("CI kind", &self.kind)?;
        self.location = text("location", self.location.as_ref(), MAX_SHORT)?;
        let mut seen = BTreeSet::new();
        self.services.retain(|s| seen.insert(s.clone()));
        let mut seen = BTreeSet::new();
        self.depends_on.retain(|c| seen.insert(c.clone()));
        if self.depends_on.contains(&self.id) {
            return Err(DomainError::Invalid("a CI cannot depend on itself".into()));
        }
        Ok(self)
    }
}

impl Catalogue {
    /// The team with this id or name.
    #[must_use]
    pub fn team(&self, key: &str) -> Option<&Team> {
        self.teams.iter().find(|t| t.id == key || t.name == key)
    }

    /// The service with this id or name.
    #[must_use]
    pub fn service(&self, key: &str) -> Option<&Service> {
        self.services.iter().find(|s| s.id == key || s.name == key)
    }

    /// The rule with this id or name.
    #[must_use]
    pub fn rule(&self, key: &str) -> Option<&Rule> {
        self.rules.iter().find(|r| r.id == key || r.name == key)
    }

    /// The schedule with this id or name.
    #[must_use]
    pub fn schedule(&self, key: &str) -> Option<&TeamSchedule> {
        self.schedules.iter().find(|s| s.id == key || s.name == key)
    }

    /// The SLA policy with this id or name.
    #[must_use]
    pub fn sla_policy(&self, key: &str) -> Option<&SlaPolicyDoc> {
        self.sla_policies.iter().find(|p| p.id == key || p.name == key)
    }

    /// The escalation policy with this id or name.
    #[must_use]
    pub fn escalation_policy(&self, key: &str) -> Option<&crate::escalation::EscalationPolicy> {
        self.escalation_policies.iter().find(|p| p.id == key || p.name == key)
    }

    /// The CI with this id or name.
    #[must_use]
    pub fn ci(&self, key: &str) -> Option<&Ci> {
        self.cis.iter().find(|c| c.id == key || c.name == key)
    }

    /// Checks the references of a service about to be stored: its team exists.
    ///
    /// # Errors
    /// [`DomainError::Invalid`] naming the missing team.
    pub fn check_service(&self, service: &Service) -> Result<(), DomainError> {
        if let Some(team) = &service.team
            && self.team(team).is_none()
        {
            return Err(DomainError::Invalid(format!("no team {team:?}")));
        }
        Ok(())
    }

    /// Checks the references of a CI about to be stored: its services and
    /// dependencies exist, and it closes no dependency cycle.
    ///
    /// # Errors
    /// [`DomainError::Invalid`] naming the missing reference or the cycle.
    pub fn check_ci(&self, ci: &Ci) -> Result<(), DomainError> {
        for service in &ci.services {
            if self.service(service).is_none() {
                return Err(DomainError::Invalid(format!("no service {service:?}")));
            }
        }
        for dependency in &ci.depends_on {
            if self.ci(dependency).is_none() {
                return Err(DomainError::Invalid(format!("no CI {dependency:?}")));
            }
        }
        // A cycle through the new edges: from any dependency, can we reach the CI?
        let mut with = self.clone();
        with.cis.retain(|c| c.id != ci.id);
        with.cis.push(ci.clone());
        if with.depends_transitively(&ci.id, &ci.id) {
            return Err(DomainError::Invalid(format!(
                "CI {:?} would depend on itself through its dependencies",
                ci.name
            )));
        }
        Ok(())
    }

    /// Whether `from` needs `target` through one or more dependencies.
    fn depends_transitively(&self, from: &str, target: &str) -> bool {
        let mut queue: VecDeque<&str> = VecDeque::new();
        let mut seen = BTreeSet::new();
        if let Some(ci) = self.ci(from) {
            queue.extend(ci.depends_on.iter().map(String::as_str));
        }
        while let Some(next) = queue.pop_front() {
            let Some(ci) = self.ci(next) else { continue };
            if ci.id == target {
                return true;
            }
            if seen.insert(ci.id.clone()) {
                queue.extend(ci.depends_on.iter().map(String::as_str));
            }
        }
        false
    }

    /// Checks `change` against the whole catalogue and applies it; returns
    /// the row to store (`None` for a delete).
    ///
    /// # Errors
    /// [`DomainError::Invalid`] for bad fields, unknown references, cycles or
    /// a name already taken; [`DomainError::InUse`] when deleting what is
    /// still referred to (named in the message).
    pub fn apply(&mut self, change: Change) -> Result<Option<Row>, DomainError> {
        let taken = |kind: Kind, id: &str, name: &str, catalogue: &Catalogue| {
            let clash = match kind {
                Kind::Team => catalogue.teams.iter().any(|t| t.id != id && t.name == name),
                Kind::Service => catalogue.services.iter().any(|s| s.id != id && s.name == name),
                Kind::Ci => catalogue.cis.iter().any(|c| c.id != id && c.name == name),
                Kind::Rule => catalogue.rules.iter().any(|r| r.id != id && r.name == name),
                Kind::Schedule => catalogue.schedules.iter().any(|r| r.id != id && r.name == name),
                Kind::SlaPolicy => catalogue.sla_policies.iter().any(|r| r.id != id && r.name == name),
                Kind::EscalationPolicy => catalogue
                    .escalation_policies
                    .iter()
                    .any(|r| r.id != id && r.name == name),
            };
            if clash {
                Err(DomainError::Invalid(format!(
                    "a {} named {name:?} already exists",
                    kind.as_str()
                )))
            } else {
                Ok(())
            }
        };
        let row = |kind: Kind, id: &str, name: &str, doc: Result<String, serde_json::Error>| {
            doc.map(|doc| Row {
                kind,
                id: id.to_string(),
                name: name.to_string(),
                doc,
            })
            .map_err(|e| DomainError::Invalid(e.to_string()))
        };
        match change {
            Change::PutTeam(team) => {
                let team = team.checked()?;
                taken(Kind::Team, &team.id, &team.name, self)?;
                let stored = row(Kind::Team, &team.id, &team.name, serde_json::to_string(&team))?;
                self.teams.retain(|t| t.id != team.id);
                self.teams.push(team);
                Ok(Some(stored))
            }
            Change::PutService(service) => {
                let mut service = service.checked()?;
                self.check_service(&service)?;
                // Store the team's id even when it was named.
                service.team = service.team.as_deref().and_then(|t| self.team(t)).map(|t| t.id.clone());
                taken(Kind::Service, &service.id, &service.name, self)?;
                let stored = row(
                    Kind::Service,
                    &service.id,
                    &service.name,
                    serde_json::to_string(&service),
                )?;
                self.services.retain(|s| s.id != service.id);
                self.services.push(service);
                Ok(Some(stored))
            }
            Change::PutCi(ci) => {
                let mut ci = ci.checked()?;
                self.check_ci(&ci)?;
                ci.services = ci
                    .services
                    .iter()
                    .filter_map(|s| self.service(s).map(|s| s.id.clone()))
                    .collect();
                ci.depends_on = ci
                    .depends_on
                    .iter()
                    .filter_map(|c| self.ci(c).map(|c| c.id.clone()))
                    .collect();
                taken(Kind::Ci, &ci.id, &ci.name, self)?;
                let stored = row(Kind::Ci, &ci.id, &ci.name, serde_json::to_string(&ci))?;
                self.cis.retain(|c| c.id != ci.id);
                self.cis.push(ci);
                Ok(Some(stored))
            }
            Change::PutRule(rule) => {
                let rule = rule.checked()?;
                taken(Kind::Rule, &rule.id, &rule.name, self)?;
                let stored = row(Kind::Rule, &rule.id, &rule.name, serde_json::to_string(&rule))?;
                self.rules.retain(|r| r.id != rule.id);
                self.rules.push(rule);
                Ok(Some(stored))
            }
            Change::PutSchedule(mut schedule) => {
                schedule.name = name("schedule", &schedule.name)?;
                schedule.team = self
                    .team(&schedule.team)
                    .map(|t| t.id.clone())
                    .ok_or_else(|| DomainError::Invalid(format!("no team {:?}", schedule.team)))?;
                schedule.schedule.validate()?;
                taken(Kind::Schedule, &schedule.id, &schedule.name, self)?;
                let stored = row(
                    Kind::Schedule,
                    &schedule.id,
                    &schedule.name,
                    serde_json::to_string(&schedule),
                )?;
                self.schedules.retain(|s| s.id != schedule.id);
                self.schedules.push(schedule);
                Ok(Some(stored))
            }
            Change::PutSlaPolicy(mut policy) => {
                policy.name = name("SLA policy", &policy.name)?;
                policy.service = match &policy.service {
                    Some(service) => Some(
                        self.service(service)
                            .map(|s| s.id.clone())
                            .ok_or_else(|| DomainError::Invalid(format!("no service {service:?}")))?,
                    ),
                    None => None,
                };
                if let Some(other) = self
                    .sla_policies
                    .iter()
                    .find(|p| p.id != policy.id && p.service == policy.service)
                {
                    return Err(DomainError::Invalid(format!(
                        "{} already has an SLA policy: {:?}",
                        policy.service.as_deref().map_or("the default", |_| "this service"),
                        other.name
                    )));
                }
                taken(Kind::SlaPolicy, &policy.id, &policy.name, self)?;
                let stored = row(
                    Kind::SlaPolicy,
                    &policy.id,
                    &policy.name,
                    serde_json::to_string(&policy),
                )?;
                self.sla_policies.retain(|p| p.id != policy.id);
                self.sla_policies.push(policy);
                Ok(Some(stored))
            }
            Change::PutEscalationPolicy(policy) => {
                let mut policy = policy.checked()?;
                policy.team = self
                    .team(&policy.team)
                    .map(|t| t.id.clone())
                    .ok_or_else(|| DomainError::Invalid(format!("no team {:?}", policy.team)))?;
                for level in &mut policy.levels {
                    for target in &mut level.targets {
                        if let crate::escalation::Target::Schedule(key) = target {
                            *key = self
                                .schedule(key)
                                .map(|s| s.id.clone())
                                .ok_or_else(|| DomainError::Invalid(format!("no schedule {key:?}")))?;
                        }
                    }
                }
                if let Some(other) = self
                    .escalation_policies
                    .iter()
                    .find(|p| p.id != policy.id && p.team == policy.team)
                {
                    return Err(DomainError::Invalid(format!(
                        "the team already has an escalation policy: {:?}",
                        other.name
                    )));
                }
                taken(Kind::EscalationPolicy, &policy.id, &policy.name, self)?;
                let stored = row(
                    Kind::EscalationPolicy,
                    &policy.id,
                    &policy.name,
                    serde_json::to_string(&policy),
                )?;
                self.escalation_policies.retain(|p| p.id != policy.id);
                self.escalation_policies.push(policy);
                Ok(Some(stored))
            }
            Change::Delete(kind, id) => {
                let referrers = self.referrers(kind, &id);
                if !referrers.is_empty() {
                    return Err(DomainError::InUse(format!(
                        "still referred to by {}; change those first",
                        referrers.join(", ")
                    )));
                }
                match kind {
                    Kind::Team => self.teams.retain(|t| t.id != id),
                    Kind::Service => self.services.retain(|s| s.id != id),
                    Kind::Ci => self.cis.retain(|c| c.id != id),
                    Kind::Rule => self.rules.retain(|r| r.id != id),
                    Kind::Schedule => self.schedules.retain(|s| s.id != id),
                    Kind::SlaPolicy => self.sla_policies.retain(|p| p.id != id),
                    Kind::EscalationPolicy => self.escalation_policies.retain(|p| p.id != id),
                }
                Ok(None)
            }
        }
    }

    /// Builds the catalogue from stored rows.
    ///
    /// # Errors
    /// When a stored document does not parse (corrupted data).
    pub fn from_rows(rows: &[Row]) -> Result<Self, serde_json::Error> {
        let mut catalogue = Catalogue::default();
        for row in rows {
            match row.kind {
                Kind::Team => catalogue.teams.push(serde_json::from_str(&row.doc)?),
                Kind::Service => catalogue.services.push(serde_json::from_str(&row.doc)?),
                Kind::Ci => catalogue.cis.push(serde_json::from_str(&row.doc)?),
                Kind::Rule => catalogue.rules.push(serde_json::from_str(&row.doc)?),
                Kind::Schedule => catalogue.schedules.push(serde_json::from_str(&row.doc)?),
                Kind::SlaPolicy => catalogue.sla_policies.push(serde_json::from_str(&row.doc)?),
                Kind::EscalationPolicy => catalogue.escalation_policies.push(serde_json::from_str(&row.doc)?),
            }
        }
        Ok(catalogue)
    }

    /// Names of the objects that refer to `id`, so that deleting it is refused
    /// while they do.
    #[must_use]
    pub fn referrers(&self, kind: Kind, id: &str) -> Vec<String> {
        match kind {
            Kind::Team => self
                .services
                .iter()
                .filter(|s| s.team.as_deref() == Some(id))
                .map(|s| format!("service {}", s.name))
                .chain(
                    self.schedules
                        .iter()
                        .filter(|s| s.team == id)
                        .map(|s| format!("schedule {}", s.name)),
                )
                .chain(
                    self.escalation_policies
                        .iter()
                        .filter(|p| p.team == id)
                        .map(|p| format!("escalation policy {}", p.name)),
                )
                .collect(),
            Kind::Service => self
                .cis
                .iter()
                .filter(|c| c.services.iter().any(|s| s == id))
                .map(|c| format!("CI {}", c.name))
                .chain(
                    self.sla_policies
                        .iter()
                        .filter(|p| p.service.as_deref() == Some(id))
                        .map(|p| format!("SLA policy {}", p.name)),
                )
                .collect(),
            Kind::Ci => self
                .cis
                .iter()
                .filter(|c| c.depends_on.iter().any(|d| d == id))
                .map(|c| format!("CI {}", c.name))
                .collect(),
            Kind::Schedule => self
                .escalation_policies
                .iter()
                .filter(|p| {
                    p.levels
                        .iter()
                        .flat_map(|l| &l.targets)
                        .any(|t| matches!(t, crate::escalation::Target::Schedule(s) if s == id))
                })
                .map(|p| format!("escalation policy {}", p.name))
                .collect(),
            Kind::Rule | Kind::SlaPolicy | Kind::EscalationPolicy => Vec::new(),
        }
    }

    /// CIs that need `ci_id`, directly or not, nearest first.
    fn dependants(&self, ci_id: &str) -> Vec<&Ci> {
        let mut found: Vec<&Ci> = Vec::new();
        let mut seen = BTreeSet::from([ci_id.to_string()]);
        let mut queue = VecDeque::from([ci_id.to_string()]);
        while let Some(current) = queue.pop_front() {
            for ci in self.cis.iter().filter(|c| c.depends_on.contains(&current)) {
                if seen.insert(ci.id.clone()) {
                    found.push(ci);
                    queue.push_back(ci.id.clone());
                }
            }
        }
        found
    }

    /// What an incident on `ci` (id or name) and/or `service` touches.
    /// Unknown names give an empty answer, not an error: incidents may name
    /// things the catalogue does not hold (yet).
    #[must_use]
    pub fn impact(&self, ci: Option<&str>, service: Option<&str>) -> Impact {
        let mut services = BTreeSet::new();
        let mut dependants = Vec::new();
        let mut similar = BTreeSet::new();
        if let Some(service) = service.and_then(|s| self.service(s)) {
            services.insert(service.name.clone());
        }
        if let Some(failing) = ci.and_then(|c| self.ci(c)) {
            let affected = self.dependants(&failing.id);
            for c in std::iter::once(failing).chain(affected.iter().copied()) {
                for id in &c.services {
                    if let Some(s) = self.service(id) {
                        services.insert(s.name.clone());
                    }
                }
            }
            dependants = affected.iter().map(|c| c.name.clone()).collect();
            for other in &self.cis {
                if other.id == failing.id || other.kind != failing.kind {
                    continue;
                }
                let shares_dependency = other.depends_on.iter().any(|d| failing.depends_on.contains(d));
                let shares_service = other.services.iter().any(|s| failing.services.contains(s));
                if shares_dependency || shares_service {
                    similar.insert(other.name.clone());
                }
            }
        }
        Impact {
            impacted_services: services.into_iter().collect(),
            dependants,
            similar_systems: similar.into_iter().collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ci(id: &str, kind: &str, services: &[&str], depends_on: &[&str]) -> Ci {
        Ci {
            id: id.into(),
            name: format!("{id}-name"),
            kind: kind.into(),
            location: None,
            services: services.iter().map(|s| (*s).to_string()).collect(),
            depends_on: depends_on.iter().map(|s| (*s).to_string()).collect(),
        }
    }

    fn service(id: &str) -> Service {
        Service {
            id: id.into(),
            name: format!("{id}-service"),
            team: None,
            criticality: Criticality::High,
            description: None,
        }
    }

    /// shop and search run on app-1/app-2, which use db-1; db-1 and db-2 sit on san.
    fn sample() -> Catalogue {
        Catalogue {
            teams: Vec::new(),
            services: vec![service("shop"), service("search"), service("reports")],
            cis: vec![
                ci("san", "storage", &[], &[]),
                ci("db-1", "database", &[], &["san"]),
                ci("db-2", "database", &["reports"], &["san"]),
                ci("app-1", "server", &["shop"], &["db-1"]),
                ci("app-2", "server", &["search"], &["db-1"]),
            ],
            rules: Vec::new(),
            schedules: Vec::new(),
            sla_policies: Vec::new(),
            escalation_policies: Vec::new(),
        }
    }

    #[test]
    fn a_failing_ci_impacts_the_services_of_everything_that_depends_on_it() {
        let impact = sample().impact(Some("san"), None);
        assert_eq!(
            impact.impacted_services,
            ["reports-service", "search-service", "shop-service"]
        );
        assert_eq!(
            impact.dependants,
            ["db-1-name", "db-2-name", "app-1-name", "app-2-name"]
        );
    }

    #[test]
    fn similar_systems_share_kind_and_a_dependency_or_service() {
        let catalogue = sample();
        assert_eq!(catalogue.impact(Some("db-1"), None).similar_systems, ["db-2-name"]);
        assert_eq!(
            catalogue.impact(Some("app-1-name"), None).similar_systems,
            ["app-2-name"]
        );
        assert!(catalogue.impact(Some("san"), None).similar_systems.is_empty());
    }

    #[test]
    fn unknown_names_answer_nothing_rather_than_fail() {
        assert_eq!(sample().impact(Some("nope"), Some("nope")), Impact::default());
        assert_eq!(sample().impact(None, Some("shop")).impacted_services, ["shop-service"]);
    }

    #[test]
    fn dependency_cycles_and_dangling_references_are_refused() {
        let catalogue = sample();
        let cyclic = Ci {
            depends_on: vec!["app-1".into()],
            ..ci("san", "storage", &[], &[])
        };
        assert!(catalogue.check_ci(&cyclic).is_err());
        assert!(catalogue.check_ci(&ci("new", "server", &["nope"], &[])).is_err());
        assert!(catalogue.check_ci(&ci("new", "server", &[], &["nope"])).is_err());
        assert!(catalogue.check_ci(&ci("new", "server", &["shop"], &["db-2"])).is_ok());
        assert!(ci("x", "server", &[], &["x"]).checked().is_err());
    }

    #[test]
    fn deleting_is_refused_while_others_refer() {
        let catalogue = sample();
        assert_eq!(
            catalogue.referrers(Kind::Ci, "db-1"),
            ["CI app-1-name", "CI app-2-name"]
        );
        assert_eq!(catalogue.referrers(Kind::Service, "reports"), ["CI db-2-name"]);
        assert!(catalogue.referrers(Kind::Ci, "app-1").is_empty());
    }

    #[test]
    fn every_kind_name_round_trips() {
        for kind in Kind::ALL {
            assert_eq!(Kind::parse(kind.as_str()), Some(kind));
        }
        // A kind missing from ALL would be caught here by the match.
        let count = |kind: Kind| match kind {
            Kind::Team
            | Kind::Service
            | Kind::Ci
            | Kind::Rule
            | Kind::Schedule
            | Kind::SlaPolicy
            | Kind::EscalationPolicy => 1,
        };
        assert_eq!(Kind::ALL.iter().map(|k| count(*k)).sum::<usize>(), 7);
    }

    #[test]
    fn names_are_unique_per_kind_and_references_are_stored_as_ids() {
        let mut catalogue = sample();
        let clash = Change::PutService(Service {
            name: "shop-service".into(),
            ..service("other")
        });
        assert!(catalogue.apply(clash).is_err());
        let named = Change::PutCi(ci("app-3", "server", &["shop-service"], &["db-1-name"]));
        let row = catalogue.apply(named).expect("stored").expect("a row");
        assert!(row.doc.contains(r#""services":["shop"]"#), "{}", row.doc);
        assert!(row.doc.contains(r#""depends_on":["db-1"]"#), "{}", row.doc);
        let back = Catalogue::from_rows(&[row]).expect("parses");
        assert_eq!(back.cis[0].depends_on, ["db-1"]);
        assert!(catalogue.apply(Change::Delete(Kind::Ci, "db-1".into())).is_err());
        assert!(catalogue.apply(Change::Delete(Kind::Ci, "app-3".into())).is_ok());
    }

    #[test]
    fn a_team_lead_is_a_member_and_wip_limits_are_for_open_states() {
        let team = Team {
            id: "t".into(),
            name: "  Web  ".into(),
            description: None,
            lead: Some(UserId::new("ann")),
            members: vec![UserId::new("bob"), UserId::new("bob")],
            wip_limits: BTreeMap::from([("accepted".to_string(), 5)]),
        }
        .checked()
        .expect("valid");
        assert_eq!(team.name, "Web");
        assert_eq!(team.members, [UserId::new("ann"), UserId::new("bob")]);
        let bad = Team {
            wip_limits: BTreeMap::from([("closed".to_string(), 5)]),
            ..team
        };
        assert!(bad.checked().is_err());
    }
}
