//! Monitoring ingest and the alert list. An event authenticates by its
//! integration's key (in the path), is parsed into a `Signal`, and applied
//! by `Store::ingest` in one transaction; a 2xx is sent only after commit.
//! This module holds keel's generic JSON format (one event or a batch), the
//! key check and rate limit every format shares, and ingest metrics.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use base64::Engine as _;
use keel_domain::Role;
use keel_domain::detection::{AlertStatus, Reaction, Severity, SignalAction, check_dedup_key};
use keel_store::{Alert, AlertFilter, IngestOutcome, IngestRequest, Integration, Signal};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::auth::{Auth, hash_token};
use crate::dto::{Page, time};
use crate::error::{ApiError, ApiResult, Problem};
use crate::extract::{ApiQuery, JsonBytes, parse_json};
use crate::{AppState, new_id};

/// Longest summary kept, in characters.
const MAX_SUMMARY: usize = 1024;

/// `POST /api/v1/integrations/{key}/events`: keel's own event format.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GenericEvent {
    /// What is wrong; required when firing.
    pub summary: Option<String>,
    /// The host or system that emitted it.
    pub source: Option<String>,
    /// critical | error (default) | warning | info
    pub severity: Option<String>,
    /// Names the alert; repeats with the same key are one alert. Generated when absent.
    pub dedup_key: Option<String>,
    /// firing (default) | acknowledged | resolved
    pub status: Option<String>,
    /// Free labels, shown on the incident.
    pub labels: Option<BTreeMap<String, String>>,
    /// When the condition started (RFC 3339).
    #[schema(format = DateTime)]
    pub timestamp: Option<String>,
    /// The service concerned; default: the integration's.
    pub service: Option<String>,
    /// Correlation: new alerts of a group join the group's open incident.
    pub group: Option<String>,
    /// The configuration item concerned.
    pub ci: Option<String>,
}

/// Most events in one batch.
pub const MAX_BATCH: usize = 1000;

/// An alert.
#[derive(Debug, Serialize, ToSchema)]
pub struct AlertView {
    pub id: String,
    pub integration: String,
    pub dedup_key: String,
    /// triggered | acknowledged | resolved
    pub status: String,
    pub summary: String,
    pub severity: String,
    pub source: Option<String>,
    /// The incident the alert opened or joined.
    pub incident: Option<String>,
    /// How many times it triggered, repeats included.
    pub count: i64,
    pub first_seen: String,
    pub last_seen: String,
    /// The service and CI it was classified as.
    pub service: Option<String>,
    pub ci: Option<String>,
    /// Changing state too often: automatic resolution paused.
    pub flapping: bool,
    /// The maintenance window that kept it from opening an incident.
    pub suppressed_by: Option<String>,
}

impl From<&Alert> for AlertView {
    fn from(a: &Alert) -> Self {
        Self {
            id: a.id.clone(),
            integration: a.integration_id.clone(),
            dedup_key: a.dedup_key.clone(),
            status: a.status.as_str().to_string(),
            summary: a.summary.clone(),
            severity: a.severity.as_str().to_string(),
            source: a.source.clone(),
            incident: a.incident_id.clone(),
            count: a.count,
            first_seen: a.first_seen.to_string(),
            last_seen: a.last_seen.to_string(),
            service: a.service.clone(),
            ci: a.ci.clone(),
            flapping: a.flapping,
            suppressed_by: a.suppressed_by.clone(),
        }
    }
}

/// The answer to an accepted event.
#[derive(Debug, Serialize, ToSchema)]
pub struct EventAccepted {
    /// Always `accepted`: the event is stored.
    pub status: String,
    pub dedup_key: String,
    /// opened | joined | reopened | repeat | acknowledged | recovered | suppressed | ignored
    pub outcome: String,
    pub alert: Option<AlertView>,
}

/// The answer to an accepted batch: one outcome per event, in order.
#[derive(Debug, Serialize, ToSchema)]
pub struct BatchAccepted {
    /// Always `accepted`: every event is stored.
    pub status: String,
    pub events: Vec<EventAccepted>,
}

/// Stores parsed signals from one integration in one transaction and
/// counts them: events by format and outcome, repeats, incidents opened,
/// and the time from receipt to commit.
pub(crate) async fn ingest_signals(
    state: &AppState,
    integration: &Integration,
    signals: Vec<Signal>,
    format: &'static str,
    started: Instant,
) -> Result<Vec<IngestOutcome>, keel_store::StoreError> {
    let routing = state.routing().await?;
    let requests = signals
        .into_iter()
        .map(|signal| IngestRequest {
            integration: integration.clone(),
            signal,
            matrix: state.matrix.clone(),
            routing: Arc::clone(&routing),
        })
        .collect();
    let outcomes = state.store.ingest_batch(requests).await?;
    for outcome in &outcomes {
        metrics::counter!("keel_events_received_total", "format" => format, "outcome" => outcome.name()).increment(1);
        if outcome.reaction == Reaction::Repeat {
            metrics::counter!("keel_events_deduplicated_total").increment(1);
        }
        if outcome.opened_incident {
            metrics::counter!("keel_incidents_opened_by_events_total").increment(1);
        }
    }
    metrics::histogram!("keel_ingest_duration_seconds", "format" => format).record(started.elapsed().as_secs_f64());
    Ok(outcomes)
}

/// A token bucket per integration key (per node): `rate` events a second,
/// bursts of up to one second's worth. A batch larger than that passes when
/// the bucket is full and leaves it in debt, so the average still holds.
pub struct RateLimiter {
    rate: Option<f64>,
    buckets: Mutex<HashMap<String, (f64, Instant)>>,
}

impl RateLimiter {
    /// A limiter at `rate` events per second per key; `None` lets all through.
    #[must_use]
    pub fn new(rate: Option<f64>) -> Self {
        Self {
            rate: rate.filter(|r| *r > 0.0),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes `n` events from `key`'s bucket, or says how many seconds to wait.
    pub(crate) fn take(&self, key: &str, n: usize) -> Result<(), u64> {
        let Some(rate) = self.rate else { return Ok(()) };
        let Ok(mut buckets) = self.buckets.lock() else {
            return Ok(());
        };
        if buckets.len() > 100_000 {
            buckets.clear();
        }
        let now = Instant::now();
        let burst = rate.max(1.0);
        let n = n as f64;
        let (tokens, last) = buckets.entry(key.to_string()).or_insert((burst, now));
        *tokens = (*tokens + now.duration_since(*last).as_secs_f64() * rate).min(burst);
        *last = now;
        let needed = n.min(burst);
        if *tokens >= needed {
            *tokens -= n;
            Ok(())
        } else {
            Err(((needed - *tokens) / rate).ceil().max(1.0) as u64)
        }
    }
}

/// Takes `events` from the integration's rate budget, or answers 429.
pub(crate) fn throttle(state: &AppState, integration: &Integration, events: usize) -> ApiResult<()> {
    state
        .ingest_limit
        .take(&integration.key_hash, events)
        .map_err(|seconds| {
            metrics::counter!("keel_events_throttled_total").increment(events as u64);
            ApiError::too_many("this integration key is over its event rate; retry later", seconds)
        })
}

/// How long a node trusts an integration it looked up: a disabled, rotated
/// or re-configured integration takes effect on other nodes within this.
const INTEGRATION_TTL: std::time::Duration = std::time::Duration::from_secs(1);

/// Integrations by key hash, looked up recently, so that a stream of events
/// from one sender does not read the integration once per event.
#[derive(Default)]
pub struct IntegrationCache {
    entries: Mutex<HashMap<String, (Instant, Integration)>>,
}

impl IntegrationCache {
    fn get(&self, key_hash: &str) -> Option<Integration> {
        let entries = self.entries.lock().ok()?;
        entries
            .get(key_hash)
            .filter(|(at, _)| at.elapsed() < INTEGRATION_TTL)
            .map(|(_, integration)| integration.clone())
    }

    fn put(&self, integration: &Integration) {
        if let Ok(mut entries) = self.entries.lock() {
            if entries.len() >= 10_000 {
                entries.clear();
            }
            entries.insert(integration.key_hash.clone(), (Instant::now(), integration.clone()));
        }
    }

    /// Forgets everything: this node changed an integration.
    pub(crate) fn clear(&self) {
        if let Ok(mut entries) = self.entries.lock() {
            entries.clear();
        }
    }
}

/// The integration a key hash belongs to (enabled or not), through the cache.
pub(crate) async fn find_integration(state: &AppState, key_hash: &str) -> ApiResult<Option<Integration>> {
    if let Some(integration) = state.integrations.get(key_hash) {
        return Ok(Some(integration));
    }
    let found = state.store.find_integration_by_key(key_hash).await?;
    if let Some(integration) = &found {
        state.integrations.put(integration);
    }
    Ok(found)
}

/// The enabled integration a key belongs to.
pub(crate) async fn integration_for(state: &AppState, key: &str) -> ApiResult<Integration> {
    let key_hash = hash_token(key);
    let integration = find_integration(state, &key_hash)
        .await?
        .ok_or_else(|| ApiError::not_found("integration key"))?;
    if integration.disabled {
        return Err(ApiError::forbidden("this integration is disabled"));
    }
    Ok(integration)
}

/// Parses a generic body: one event, or a JSON array of 1 to [`MAX_BATCH`]
/// events. 400 for text that is not JSON, 422 for JSON that is not events.
///
/// # Errors
/// The problem with the first bad event, naming its index in a batch.
pub fn parse_generic_body(bytes: &[u8]) -> ApiResult<(Vec<Signal>, bool)> {
    let first = bytes.iter().find(|b| !b.is_ascii_whitespace());
    if first == Some(&b'[') {
        let events: Vec<GenericEvent> = parse_json(bytes)?;
        if events.is_empty() || events.len() > MAX_BATCH {
            return Err(ApiError::invalid(format!("a batch holds 1 to {MAX_BATCH} events")));
        }
        let signals = events
            .into_iter()
            .enumerate()
            .map(|(i, event)| {
                parse_generic(event).map_err(|mut e| {
                    e.detail = format!("event {i}: {}", e.detail);
                    e
                })
            })
            .collect::<ApiResult<Vec<_>>>()?;
        Ok((signals, true))
    } else {
        let event: GenericEvent = parse_json(bytes)?;
        Ok((vec![parse_generic(event)?], false))
    }
}

fn parse_generic(event: GenericEvent) -> ApiResult<Signal> {
    let action = match event.status.as_deref().unwrap_or("firing") {
        "firing" | "trigger" => SignalAction::Trigger,
        "acknowledged" | "acknowledge" => SignalAction::Acknowledge,
        "resolved" | "resolve" => SignalAction::Resolve,
        other => {
            return Err(ApiError::invalid(format!(
                "status must be firing, acknowledged or resolved, not {other:?}"
            )));
        }
    };
    let severity = match event.severity.as_deref() {
        None => Severity::Error,
        Some(text) => Severity::parse(text).ok_or_else(|| {
            ApiError::invalid(format!(
                "severity must be critical, error, warning or info, not {text:?}"
            ))
        })?,
    };
    let dedup_key = event.dedup_key.unwrap_or_else(new_id);
    check_dedup_key(&dedup_key)?;
    let summary = event.summary.map(|s| s.trim().to_string()).unwrap_or_default();
    if action == SignalAction::Trigger && summary.is_empty() {
        return Err(ApiError::invalid("a firing event needs a summary"));
    }
    if summary.chars().count() > MAX_SUMMARY || summary.contains('\0') {
        return Err(ApiError::invalid(format!(
            "summary must be at most {MAX_SUMMARY} characters of text"
        )));
    }
    let mut summary = summary;
    let labels = event.labels.unwrap_or_default();
    if !labels.is_empty() {
        if labels.len() > 64
            || labels
                .iter()
                .any(|(k, v)| k.len() + v.len() > 512 || k.contains('\0') || v.contains('\0'))
        {
            return Err(ApiError::invalid(
                "labels: at most 64, each key and value under 512 characters",
            ));
        }
        let shown: Vec<String> = labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
        // Labels are shown on the alert's summary and matched by rules.
        summary = format!("{summary} [{}]", shown.join(", "))
            .chars()
            .take(MAX_SUMMARY)
            .collect();
    }
    let short = |name: &str, value: Option<String>| -> ApiResult<Option<String>> {
        match value {
            Some(v) if v.chars().count() > 200 || v.contains('\0') => Err(ApiError::invalid(format!(
                "{name} must be at most 200 characters of text"
            ))),
            other => Ok(other.filter(|v| !v.trim().is_empty())),
        }
    };
    Ok(Signal {
        dedup_key,
        action,
        summary,
        source: short("source", event.source)?,
        severity,
        occurred_at: time("timestamp", event.timestamp.as_ref())?,
        service: short("service", event.service)?,
        group_key: short("group", event.group)?,
        ci: short("ci", event.ci)?,
        labels,
        links: Vec::new(),
    })
}

/// Send one event in keel's generic format, or a JSON array of up to 1000
/// (one transaction: all are stored or none). Answers 202 once stored;
/// repeats of an open alert only count; a resolved event recovers the alert
/// and, when it was the incident's last open alert, resolves the incident
/// (unless the integration's policy says to annotate only).
#[utoipa::path(post, path = "/api/v1/integrations/{key}/events", tag = "ingest", request_body = GenericEvent,
    params(("key" = String, Path, description = "the integration's key")),
    responses((status = 202, description = "one event: EventAccepted; a batch: BatchAccepted", body = EventAccepted),
              (status = 400, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem),
              (status = 422, body = Problem), (status = 429, body = Problem), (status = 503, body = Problem)))]
pub async fn generic(
    State(state): State<AppState>,
    Path(key): Path<String>,
    headers: axum::http::HeaderMap,
    JsonBytes(body): JsonBytes,
) -> ApiResult<axum::response::Response> {
    use axum::response::IntoResponse;
    let started = Instant::now();
    let integration = integration_for(&state, &key).await?;
    if let Some(secret) = &integration.signing_secret {
        crate::alertmanager::check_signature(secret, &headers, &body)?;
    }
    let (signals, batch) = parse_generic_body(&body)?;
    throttle(&state, &integration, signals.len())?;
    let keys: Vec<String> = signals.iter().map(|s| s.dedup_key.clone()).collect();
    let outcomes = ingest_signals(&state, &integration, signals, "generic", started).await?;
    let mut events: Vec<EventAccepted> = keys
        .into_iter()
        .zip(&outcomes)
        .map(|(dedup_key, outcome)| EventAccepted {
            status: "accepted".into(),
            dedup_key,
            outcome: outcome.name().into(),
            alert: outcome.alert.as_ref().map(AlertView::from),
        })
        .collect();
    let response = if batch {
        Json(BatchAccepted {
            status: "accepted".into(),
            events,
        })
        .into_response()
    } else {
        let event = events
            .pop()
            .ok_or_else(|| ApiError::from(keel_store::StoreError::Other("no outcome for the event".into())))?;
        Json(event).into_response()
    };
    Ok((StatusCode::ACCEPTED, response).into_response())
}

/// Filters of `GET /api/v1/alerts`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct AlertQuery {
    pub dedup_key: Option<String>,
    /// An incident id.
    pub incident: Option<String>,
    /// triggered | acknowledged | resolved
    pub status: Option<String>,
    /// 1..500, default 50.
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<u32>,
    pub cursor: Option<String>,
}

/// List alerts, newest first (agents and above).
#[utoipa::path(get, path = "/api/v1/alerts", tag = "ingest", params(AlertQuery),
    responses((status = 200, body = Page<AlertView>), (status = 403, body = Problem)), security(("bearer" = [])))]
pub async fn list(
    State(state): State<AppState>,
    auth: Auth,
    ApiQuery(query): ApiQuery<AlertQuery>,
) -> ApiResult<Json<Page<AlertView>>> {
    auth.require(Role::Agent)?;
    let limit = query.limit.unwrap_or(50);
    if !(1..=500).contains(&limit) {
        return Err(ApiError::invalid("limit must be between 1 and 500"));
    }
    let status = query
        .status
        .as_deref()
        .map(|s| {
            AlertStatus::parse(s).ok_or_else(|| ApiError::invalid("status must be triggered, acknowledged or resolved"))
        })
        .transpose()?;
    let before_id = query
        .cursor
        .as_deref()
        .map(|c| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(c)
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
                .and_then(|t| t.strip_prefix("a:").map(str::to_string))
                .ok_or_else(|| ApiError::bad_request("cursor is not one this server handed out"))
        })
        .transpose()?;
    let filter = AlertFilter {
        dedup_key: query.dedup_key,
        incident_id: query.incident,
        status,
        before_id,
        limit: limit + 1,
    };
    let mut alerts = state.store.list_alerts(&filter).await?;
    let has_more = alerts.len() > limit as usize;
    alerts.truncate(limit as usize);
    let next_cursor = if has_more {
        alerts
            .last()
            .map(|a| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("a:{}", a.id)))
    } else {
        None
    };
    Ok(Json(Page {
        items: alerts.iter().map(AlertView::from).collect(),
        next_cursor,
    }))
}
