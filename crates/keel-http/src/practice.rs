//! `GET /api/v1/metrics`: the practice metrics of `keel_domain::metrics` for a
//! period, optionally grouped (team, service, CI, category, priority,
//! source) and filtered by the same contexts, each value with the count
//! behind it and the change against the previous period of the same length.
//! Computed from the timelines (JSON, or CSV with `format=csv`) through each
//! incident's facts, which every node holds in memory and keeps up to date
//! (`crate::facts`): a report is one pass over memory, off the async threads.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use keel_domain::metrics::{self, GroupKey, IncidentFacts, Period};
use keel_domain::sla::SlaPolicy;
use keel_domain::{Role, Source};
use serde::Deserialize;
use serde_json::{Value, json};
use utoipa::IntoParams;

use crate::AppState;
use crate::auth::Auth;
use crate::error::{ApiError, ApiResult, Problem};
use crate::extract::ApiQuery;

const DAY_MICROS: i64 = 24 * 3600 * 1_000_000;

/// Period, grouping and filters of `GET /api/v1/metrics`.
#[derive(Clone, Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct MetricsQuery {
    /// Start (RFC 3339); default: 30 days before `to`.
    pub from: Option<String>,
    /// End, exclusive (RFC 3339); default: now.
    pub to: Option<String>,
    /// team | service | ci | category | priority | source
    pub group_by: Option<String>,
    pub team: Option<String>,
    pub service: Option<String>,
    pub ci: Option<String>,
    pub category: Option<String>,
    /// P1..P5
    pub priority: Option<String>,
    /// user | monitoring | specialist | supplier
    pub source: Option<String>,
    /// json (default) | csv
    pub format: Option<String>,
}

fn group_key(name: &str) -> ApiResult<GroupKey> {
    Ok(match name {
        "team" => GroupKey::Team,
        "service" => GroupKey::Service,
        "ci" => GroupKey::Ci,
        "category" => GroupKey::Category,
        "priority" => GroupKey::Priority,
        "source" => GroupKey::Source,
        other => {
            return Err(ApiError::invalid(format!(
                "group_by must be one of team, service, ci, category, priority, source; not {other:?}"
            )));
        }
    })
}

/// The facts of every incident as of now, from this node's copy caught up
/// with every write (see `crate::facts`).
pub(crate) async fn gather(state: &AppState) -> ApiResult<crate::facts::Snapshot> {
    Ok(state.facts.current(&*state.store, state.clock.now()).await?)
}

/// The filters of a query, parsed once.
struct Filter {
    query: MetricsQuery,
    source: Option<Source>,
}

impl Filter {
    fn new(query: &MetricsQuery) -> ApiResult<Self> {
        let source = query
            .source
            .as_deref()
            .map(|s| {
                serde_json::from_value::<Source>(Value::String(s.to_string())).map_err(|_| {
                    ApiError::invalid(format!(
                        "source must be one of user, monitoring, specialist, supplier; not {s:?}"
                    ))
                })
            })
            .transpose()?;
        Ok(Self {
            query: query.clone(),
            source,
        })
    }

    fn matches(&self, f: &IncidentFacts) -> bool {
        let query = &self.query;
        let same = |want: &Option<String>, have: Option<&str>| want.as_deref().is_none_or(|w| Some(w) == have);
        same(&query.team, f.team.as_deref())
            && same(&query.service, f.service.as_deref())
            && same(&query.ci, f.ci.as_deref())
            && same(&query.category, f.category.as_deref())
            && query
                .priority
                .as_deref()
                .is_none_or(|p| p.eq_ignore_ascii_case(f.priority.as_str()))
            && self.source.is_none_or(|s| s == f.source)
    }
}
/// Practice metrics for a period: every metric of metrics.md with the count behind it and the change
/// against the previous period of the same length, optionally per team, service, CI, category, priority
/// or source.
#[utoipa::path(get, path = "/api/v1/metrics", tag = "metrics", params(MetricsQuery),
    responses((status = 200, description = "The report (JSON, or CSV with format=csv)", body = Object),
              (status = 422, body = Problem)),
    security(("bearer" = [])))]
pub async fn report(
    State(state): State<AppState>,
    auth: Auth,
    ApiQuery(query): ApiQuery<MetricsQuery>,
) -> ApiResult<Response> {
    auth.require(Role::Agent)?;
    let to = crate::dto::time("to", query.to.as_ref())?.unwrap_or_else(|| state.clock.now());
    let from = crate::dto::time("from", query.from.as_ref())?
        .unwrap_or_else(|| keel_domain::Timestamp::from_micros(to.as_micros() - 30 * DAY_MICROS));
    if from >= to {
        return Err(ApiError::invalid("from must be before to"));
    }
    let csv = match query.format.as_deref() {
        None | Some("json") => false,
        Some("csv") => true,
        Some(other) => return Err(ApiError::invalid(format!("format must be json or csv, not {other:?}"))),
    };
    let key = query.group_by.as_deref().map(group_key).transpose()?;
    let period = Period { from, to };
    let previous = period.previous();
    let filter = Filter::new(&query)?;
    let all = gather(&state).await?;
    // Business hours: each incident under its own SLA policy's calendar.
    let policies = Arc::clone(&state.routing().await?.sla);
    // A pass over every incident's facts: off the async threads.
    let out = tokio::task::spawn_blocking(move || {
        let facts: Vec<&IncidentFacts> = all.iter().map(Arc::as_ref).filter(|f| filter.matches(f)).collect();
        let groups: BTreeMap<String, Vec<&IncidentFacts>> = match key {
            Some(key) => metrics::group_by(facts.iter().copied(), key),
            None => BTreeMap::from([("all".to_string(), facts)]),
        };
        let policies = &*policies;
        let calendar_of = |f: &IncidentFacts| policies.for_service(f.service.as_deref()).map(SlaPolicy::calendar);
        let mut out = Vec::new();
        for (name, members) in &groups {
            let current = metrics::report_with(members.iter().copied(), period, calendar_of);
            let before = metrics::report_with(members.iter().copied(), previous, calendar_of);
            let trend = metrics::compare(&current, &before);
            out.push((name.clone(), current, trend));
        }
        out
    })
    .await
    .map_err(|e| keel_store::StoreError::Other(format!("metrics computation failed: {e}")))?;
    if csv {
        let mut text = String::from("group,metric,current,count,previous,change\n");
        for (name, _, trend) in &out {
            for (metric, t) in trend {
                let cell = |v: Option<f64>| v.map(|v| format!("{v}")).unwrap_or_default();
                text.push_str(&format!(
                    "{},{metric},{},{},{},{}\n",
                    csv_field(name),
                    cell(t.current),
                    t.count,
                    cell(t.previous),
                    cell(t.change)
                ));
            }
        }
        return Ok(([(header::CONTENT_TYPE, "text/csv; charset=utf-8")], text).into_response());
    }
    let groups: Vec<Value> = out
        .into_iter()
        .map(|(name, current, trend)| json!({"group": name, "metrics": current, "trend": trend}))
        .collect();
    Ok(Json(json!({
        "from": from.to_string(),
        "to": to.to_string(),
        "previous": {"from": previous.from.to_string(), "to": previous.to.to_string()},
        "group_by": query.group_by,
        "groups": groups,
    }))
    .into_response())
}

/// A CSV field, quoted when it holds a comma, quote or line break.
fn csv_field(text: &str) -> String {
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_string()
    }
}
