//! The capability self-assessment (`keel_domain::capability`) over HTTP:
//! `GET /api/v1/capability` shows every criterion with the evidence keel
//! holds (metrics over the last `days`, 90 by default) and the level
//! reached; `PUT /api/v1/capability/{criterion}` records the organisation's
//! part — a threshold for a measured criterion, a verdict with a note for
//! an attested one (incident managers and admins).

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use keel_domain::capability::{self, Assessment, Evidence, Setting};
use keel_domain::metrics::{self, Period};
use keel_domain::sla::SlaPolicy;
use keel_domain::{MAX_TEXT, Role, Timestamp};
use serde::Deserialize;
use serde_json::{Value, json};
use utoipa::{IntoParams, ToSchema};

use crate::AppState;
use crate::auth::Auth;
use crate::error::{ApiError, ApiResult, Problem};
use crate::extract::{ApiJson, ApiQuery};

const DAY_MICROS: i64 = 24 * 3600 * 1_000_000;
/// The window when none is asked for.
pub const DEFAULT_DAYS: u32 = 90;

/// The window of `GET /api/v1/capability`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct CapabilityQuery {
    /// Days of history behind the measured evidence (1–3650; default 90).
    pub days: Option<u32>,
}

/// The organisation's part of one criterion (replaces what was recorded).
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CapabilityInput {
    /// Measured criteria with a threshold: the organisation's own (null: the default).
    pub threshold: Option<f64>,
    /// Attested criteria: met or not (null: no verdict).
    pub met: Option<bool>,
    /// Attested criteria: the evidence, in words.
    pub note: Option<String>,
}

/// The assessment as of now over the last `days`.
pub(crate) async fn assessment(state: &AppState, days: u32) -> ApiResult<(Period, Assessment)> {
    let to = state.clock.now();
    let period = Period {
        from: Timestamp::from_micros(to.as_micros() - i64::from(days) * DAY_MICROS),
        to,
    };
    let facts = crate::practice::gather(state).await?;
    // Business hours: each incident under its own SLA policy's calendar.
    let policies = Arc::clone(&state.routing().await?.sla);
    let headlines = tokio::task::spawn_blocking(move || {
        let policies = &*policies;
        metrics::report_with(facts.iter().map(AsRef::as_ref), period, |f| {
            policies.for_service(f.service.as_deref()).map(SlaPolicy::calendar)
        })
        .headlines()
    })
    .await
    .map_err(|e| keel_store::StoreError::Other(format!("capability assessment failed: {e}")))?;
    let settings = state.store.capability_settings().await?;
    Ok((period, capability::assess(&headlines, &settings)))
}

fn window(days: Option<u32>) -> ApiResult<u32> {
    match days.unwrap_or(DEFAULT_DAYS) {
        d @ 1..=3650 => Ok(d),
        other => Err(ApiError::invalid(format!("days must be 1 to 3650, not {other}"))),
    }
}

/// The capability self-assessment: every criterion of levels 2–5 with the evidence keel holds (metrics over
/// the last `days`, against thresholds the organisation sets), the verdicts people recorded, and the level
/// reached (a level counts when all its criteria and those below are met).
#[utoipa::path(get, path = "/api/v1/capability", tag = "metrics", params(CapabilityQuery),
    responses((status = 200, description = "The assessment", body = Object), (status = 422, body = Problem)),
    security(("bearer" = [])))]
pub async fn show(
    State(state): State<AppState>,
    auth: Auth,
    ApiQuery(query): ApiQuery<CapabilityQuery>,
) -> ApiResult<Json<Value>> {
    auth.require(Role::Agent)?;
    let days = window(query.days)?;
    let (period, assessment) = assessment(&state, days).await?;
    Ok(Json(json!({
        "from": period.from.to_string(),
        "to": period.to.to_string(),
        "days": days,
        "level": assessment.level,
        "criteria": assessment.criteria,
    })))
}

/// Checks an input against its criterion; the setting to store.
pub(crate) fn setting_for(id: &str, input: CapabilityInput, auth: &Auth, now: Timestamp) -> ApiResult<Setting> {
    let criterion = capability::find(id).ok_or_else(|| ApiError::not_found(&format!("criterion {id:?}")))?;
    let note = input.note.map(|n| n.trim().to_string()).filter(|n| !n.is_empty());
    match criterion.evidence {
        Evidence::Attested => {
            if input.threshold.is_some() {
                return Err(ApiError::invalid(format!(
                    "{id} is shown by a person's verdict: send met and note, not a threshold"
                )));
            }
            if note.as_ref().is_some_and(|n| n.chars().count() > MAX_TEXT) {
                return Err(ApiError::invalid(format!("note is longer than {MAX_TEXT} characters")));
            }
        }
        Evidence::AtLeast { metric, .. } | Evidence::AtMost { metric, .. } => {
            if input.met.is_some() || note.is_some() {
                return Err(ApiError::invalid(format!(
                    "{id} is measured ({metric}): send a threshold, not a verdict"
                )));
            }
            if let Some(t) = input.threshold {
                let share = !(metric.ends_with("_secs") || metric.starts_with("reassignments"));
                let fits = t.is_finite() && t >= 0.0 && (!share || t <= 1.0);
                if !fits {
                    return Err(ApiError::invalid(if share {
                        format!("the threshold of {id} is a share: 0 to 1, not {t}")
                    } else {
                        format!("the threshold of {id} must be 0 or more, not {t}")
                    }));
                }
            }
        }
        Evidence::Measured { metric } => {
            return Err(ApiError::invalid(format!(
                "{id} is met when keel measures {metric}: there is nothing to set"
            )));
        }
    }
    Ok(Setting {
        threshold: input.threshold,
        met: input.met,
        note,
        recorded_by: Some(auth.actor.user.clone()),
        recorded_at: Some(now),
    })
}

/// Record the organisation's part of one criterion (incident manager): a threshold for a measured criterion
/// (null: the default), or a verdict with a note for one only a person can tell. Replaces what was recorded.
#[utoipa::path(put, path = "/api/v1/capability/{criterion}", tag = "metrics", request_body = CapabilityInput,
    params(("criterion" = String, Path, description = "criterion id, e.g. resolve-in-target")),
    responses((status = 200, description = "The assessment after the change", body = Object),
              (status = 403, body = Problem), (status = 404, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
pub async fn record(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
    ApiJson(input): ApiJson<CapabilityInput>,
) -> ApiResult<Json<Value>> {
    auth.require(Role::IncidentManager)?;
    let setting = setting_for(&id, input, &auth, state.clock.now())?;
    state.store.put_capability_setting(&id, setting).await?;
    show(State(state), auth, ApiQuery(CapabilityQuery::default())).await
}

/// Level reached per criterion level, for views: how many of each level's criteria are met.
#[must_use]
pub(crate) fn met_by_level(assessment: &Assessment) -> BTreeMap<u8, (usize, usize)> {
    let mut out: BTreeMap<u8, (usize, usize)> = BTreeMap::new();
    for a in &assessment.criteria {
        let entry = out.entry(a.criterion.level).or_default();
        entry.1 += 1;
        entry.0 += usize::from(a.met == Some(true));
    }
    out
}
