//! `GET /api/v1/metrics`: the practice metrics of `keel_domain::metrics` for a
//! period, optionally grouped (team, service, CI, category, priority,
//! source) and filtered by the same contexts, each value with the count
//! behind it and the change against the previous period of the same length.
//! Computed from the timelines (JSON, or CSV with `format=csv`); the facts
//! of finished incidents are kept per version (`incident_facts`), so a
//! history is folded once; incidents are read in pages.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use keel_domain::Role;
use keel_domain::metrics::{self, GroupKey, IncidentFacts, Period};
use keel_store::IncidentRef;
use serde::Deserialize;
use serde_json::{Value, json};
use utoipa::IntoParams;

use crate::AppState;
use crate::auth::Auth;
use crate::error::{ApiError, ApiResult, Problem};
use crate::extract::ApiQuery;

/// Incidents read per page while gathering facts.
const PAGE: u32 = 500;
const DAY_MICROS: i64 = 24 * 3600 * 1_000_000;

/// Period, grouping and filters of `GET /api/v1/metrics`.
#[derive(Debug, Default, Deserialize, IntoParams)]
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

/// The facts of every incident that may count in `since`..now. Facts of
/// finished incidents (closed or cancelled: nothing in them depends on now)
/// are kept per incident version and read back instead of refolding the
/// timeline; a newer version makes them stale, so they always match it.
pub(crate) async fn gather(state: &AppState, since: keel_domain::Timestamp) -> ApiResult<Vec<IncidentFacts>> {
    let system = keel_store::plan::system_actor().user;
    let now = state.clock.now();
    let mut facts = Vec::new();
    let mut after = 0;
    loop {
        let page = state.store.incidents_changed_since(since, after, PAGE).await?;
        let Some(last) = page.last().map(|c| c.number) else {
            break;
        };
        let mut computed = Vec::new();
        for changed in &page {
            if let Some(kept) = changed
                .facts
                .as_deref()
                .and_then(|json| serde_json::from_str::<IncidentFacts>(json).ok())
            {
                facts.push(kept);
                continue;
            }
            let entries = state
                .store
                .timeline(&IncidentRef::Id(changed.id.clone()), 0, None)
                .await?;
            if let Some(f) = metrics::facts(&entries, &system, now) {
                let finished = matches!(f.state, keel_domain::State::Closed | keel_domain::State::Cancelled);
                if finished && let Ok(json) = serde_json::to_string(&f) {
                    computed.push((changed.id.clone(), changed.version, json));
                }
                facts.push(f);
            }
        }
        state.store.put_facts(computed).await?;
        after = last;
    }
    Ok(facts)
}

fn matches(f: &IncidentFacts, query: &MetricsQuery) -> bool {
    let same = |want: &Option<String>, have: Option<&str>| want.as_deref().is_none_or(|w| Some(w) == have);
    let source = serde_json::to_value(f.source).ok();
    same(&query.team, f.team.as_deref())
        && same(&query.service, f.service.as_deref())
        && same(&query.ci, f.ci.as_deref())
        && same(&query.category, f.category.as_deref())
        && query
            .priority
            .as_deref()
            .is_none_or(|p| p.eq_ignore_ascii_case(f.priority.as_str()))
        && same(&query.source, source.as_ref().and_then(Value::as_str))
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
    let facts: Vec<IncidentFacts> = gather(&state, previous.from)
        .await?
        .into_iter()
        .filter(|f| matches(f, &query))
        .collect();
    let groups: BTreeMap<String, Vec<&IncidentFacts>> = match key {
        Some(key) => metrics::group_by(&facts, key),
        None => BTreeMap::from([("all".to_string(), facts.iter().collect())]),
    };
    let mut out = Vec::new();
    for (name, members) in &groups {
        let current = metrics::report(members.iter().copied(), period, None);
        let before = metrics::report(members.iter().copied(), previous, None);
        let trend = metrics::compare(&current, &before);
        out.push((name.clone(), current, trend));
    }
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
