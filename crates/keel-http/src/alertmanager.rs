//! Prometheus Alertmanager webhooks (`"version": "4"`) and Grafana alerting
//! webhooks (`"version": "1"`, the same shape with a few more fields). Every
//! alert of a notification is a signal keyed by its fingerprint; the
//! notification's `groupKey` correlates them, so one group is one incident
//! while it is open. Senders drop a notification on 4xx and retry on 5xx,
//! so only a really malformed notification gets a 4xx.

use std::collections::BTreeMap;

use axum::Json;
use std::time::Instant;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use keel_domain::Timestamp;
use keel_domain::detection::{Severity, SignalAction, check_dedup_key};
use keel_store::Signal;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};
use utoipa::ToSchema;

use crate::AppState;
use crate::error::{ApiError, ApiResult, Problem};
use crate::extract::{JsonBytes, parse_json};
use crate::ingest::{ingest_signals, integration_for, throttle};

type Labels = BTreeMap<String, String>;

/// A webhook notification (Alertmanager's fields; Grafana's extras accepted).
#[allow(dead_code)] // The whole format is accepted; keel reads part of it so far.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Notification {
    /// "4" from Alertmanager, "1" from Grafana.
    pub version: String,
    pub group_key: Option<String>,
    pub truncated_alerts: Option<u64>,
    pub status: Option<String>,
    pub receiver: Option<String>,
    pub group_labels: Option<Labels>,
    pub common_labels: Option<Labels>,
    pub common_annotations: Option<Labels>,
    #[serde(rename = "externalURL")]
    pub external_url: Option<String>,
    pub alerts: Vec<WebhookAlert>,
    // Grafana only.
    pub org_id: Option<i64>,
    pub title: Option<String>,
    pub state: Option<String>,
    pub message: Option<String>,
}

/// One alert of a notification.
#[allow(dead_code)] // The whole format is accepted; keel reads part of it so far.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct WebhookAlert {
    /// firing | resolved
    pub status: String,
    pub labels: Labels,
    pub annotations: Option<Labels>,
    pub starts_at: Option<String>,
    pub ends_at: Option<String>,
    #[serde(rename = "generatorURL")]
    pub generator_url: Option<String>,
    pub fingerprint: Option<String>,
    // Grafana only.
    #[schema(value_type = Object)]
    pub values: Option<Value>,
    pub value_string: Option<String>,
    #[serde(rename = "silenceURL")]
    pub silence_url: Option<String>,
    #[serde(rename = "dashboardURL")]
    pub dashboard_url: Option<String>,
    #[serde(rename = "panelURL")]
    pub panel_url: Option<String>,
    #[serde(rename = "imageURL")]
    pub image_url: Option<String>,
}

/// What a notification did.
#[derive(Debug, Serialize, ToSchema)]
pub struct NotificationAccepted {
    pub status: String,
    /// Alerts stored.
    pub alerts: usize,
    /// Incidents opened by them.
    pub opened: usize,
}

fn severity(labels: &Labels) -> Severity {
    match labels.get("severity").map(|s| s.to_ascii_lowercase()).as_deref() {
        Some("critical" | "page" | "fatal" | "emergency") => Severity::Critical,
        Some("warning" | "warn" | "minor") => Severity::Warning,
        Some("info" | "informational" | "low" | "none") => Severity::Info,
        _ => Severity::Error,
    }
}

/// The alert's identity: Alertmanager's fingerprint, or a hash of its labels.
fn fingerprint(alert: &WebhookAlert) -> String {
    alert.fingerprint.clone().filter(|f| !f.is_empty()).unwrap_or_else(|| {
        let text: Vec<String> = alert.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
        hex::encode(Sha256::digest(text.join("\u{1f}").as_bytes()))[..32].to_string()
    })
}

/// Checks a webhook's HMAC-SHA256 signature against the integration's
/// secret: `X-Grafana-Alerting-Signature` (or `X-Keel-Signature`), hex, over
/// the body — or over `TIMESTAMP:BODY` when `X-Grafana-Alerting-Timestamp`
/// is sent.
///
/// # Errors
/// 401 when the signature is missing or does not match.
pub(crate) fn check_signature(secret: &str, headers: &HeaderMap, body: &[u8]) -> ApiResult<()> {
    use hmac::Mac;
    let given = ["x-grafana-alerting-signature", "x-keel-signature"]
        .into_iter()
        .find_map(|name| headers.get(name).and_then(|v| v.to_str().ok()))
        .ok_or_else(|| {
            ApiError::unauthorized("this integration takes only signed webhooks: send X-Grafana-Alerting-Signature")
        })?
        .trim();
    let given = hex::decode(given.strip_prefix("sha256=").unwrap_or(given))
        .map_err(|_| ApiError::unauthorized("the webhook signature is not hex"))?;
    let mut mac = hmac::Hmac::<Sha256>::new_from_slice(secret.as_bytes())
        .map_err(|_| ApiError::unauthorized("the integration's signing secret is unusable"))?;
    if let Some(timestamp) = headers.get("x-grafana-alerting-timestamp") {
        mac.update(timestamp.as_bytes());
        mac.update(b":");
    }
    mac.update(body);
    mac.verify_slice(&given)
        .map_err(|_| ApiError::unauthorized("the webhook signature does not match the integration's secret"))
}

/// Parses a webhook notification of `version` ("4" Alertmanager, "1"
/// Grafana) into one signal per alert.
///
/// # Errors
/// 400 for broken JSON, 422 for another shape, 400 for a wrong version or
/// an alert status that is neither firing nor resolved.
pub fn parse_notification(bytes: &[u8], version: &str) -> ApiResult<Vec<Signal>> {
    let notification: Notification = parse_json(bytes)?;
    if notification.version != version {
        return Err(ApiError::bad_request(format!(
            "this endpoint takes webhook version {version:?}, not {:?}",
            notification.version
        )));
    }
    let group_key = notification.group_key;
    notification
        .alerts
        .into_iter()
        .map(|a| signal(a, group_key.as_ref()))
        .collect()
}

/// A label used as a short field: trimmed to 200 characters, blank → none.
fn short(value: Option<&String>) -> Option<String> {
    value
        .map(|v| v.trim().chars().take(200).collect::<String>())
        .filter(|v| !v.is_empty())
}

fn signal(alert: WebhookAlert, group_key: Option<&String>) -> ApiResult<Signal> {
    let action = match alert.status.as_str() {
        "firing" | "alerting" => SignalAction::Trigger,
        "resolved" | "ok" => SignalAction::Resolve,
        other => {
            return Err(ApiError::bad_request(format!(
                "alert status must be firing or resolved, not {other:?}"
            )));
        }
    };
    let dedup_key = fingerprint(&alert);
    check_dedup_key(&dedup_key)
        .map_err(|_| ApiError::bad_request("an alert's fingerprint must be 1 to 255 characters"))?;
    let annotations = alert.annotations.unwrap_or_default();
    for (what, map) in [("labels", &alert.labels), ("annotations", &annotations)] {
        if map.len() > 128 {
            return Err(ApiError::bad_request(format!("an alert has at most 128 {what}")));
        }
        if map
            .iter()
            .any(|(k, v)| k.contains('\0') || v.contains('\0') || k.len() > 1024 || v.len() > 16 * 1024)
        {
            return Err(ApiError::bad_request(format!(
                "alert {what} must be text without NUL, names under 1 KiB and values under 16 KiB"
            )));
        }
    }
    let name = alert
        .labels
        .get("alertname")
        .filter(|n| !n.trim().is_empty())
        .cloned()
        .unwrap_or_else(|| "alert".to_string());
    let text = annotations
        .get("summary")
        .or_else(|| annotations.get("description"))
        .cloned();
    let summary: String = match text {
        Some(text) => format!("{name}: {text}"),
        None => name,
    }
    .chars()
    .take(1024)
    .collect();
    // Alertmanager's zero time and Grafana's equivalents mean "unknown".
    let occurred_at = alert
        .starts_at
        .as_deref()
        .and_then(|s| s.parse::<Timestamp>().ok())
        .filter(|t| t.as_micros() > 0);
    Ok(Signal {
        dedup_key,
        action,
        summary,
        source: short(alert.labels.get("instance").or_else(|| alert.labels.get("job"))),
        severity: severity(&alert.labels),
        occurred_at,
        service: short(alert.labels.get("service")),
        group_key: group_key.map(|g| g.chars().take(1024).collect()),
        ci: short(alert.labels.get("ci")),
        links: [
            ("Source", alert.generator_url),
            ("Dashboard", alert.dashboard_url),
            ("Panel", alert.panel_url),
            ("Silence", alert.silence_url),
            ("Image", alert.image_url),
        ]
        .into_iter()
        .filter_map(|(text, url)| Some((text.to_string(), url.filter(|u| !u.is_empty())?)))
        .collect(),
        labels: alert.labels,
    })
}

async fn accept(
    state: &AppState,
    key: &str,
    headers: &HeaderMap,
    body: &[u8],
    version: &str,
) -> ApiResult<Json<NotificationAccepted>> {
    let started = Instant::now();
    let integration = integration_for(state, key).await?;
    if let Some(secret) = &integration.signing_secret {
        check_signature(secret, headers, body)?;
    }
    let signals = parse_notification(body, version)?;
    throttle(state, &integration, signals.len())?;
    let n_alerts = signals.len();
    let format = if version == "4" { "alertmanager" } else { "grafana" };
    let outcomes = ingest_signals(state, &integration, signals, format, started).await?;
    Ok(Json(NotificationAccepted {
        status: "success".into(),
        alerts: n_alerts,
        opened: outcomes.iter().filter(|o| o.opened_incident).count(),
    }))
}

/// Alertmanager webhook receiver (`webhook_configs.url`).
#[utoipa::path(post, path = "/api/v1/integrations/{key}/alertmanager", tag = "ingest", request_body = Notification,
    params(("key" = String, Path, description = "the integration's key")),
    responses((status = 200, body = NotificationAccepted), (status = 403, body = Problem), (status = 404, body = Problem),
              (status = 422, body = Problem), (status = 503, body = Problem)))]
pub async fn alertmanager(
    State(state): State<AppState>,
    Path(key): Path<String>,
    headers: HeaderMap,
    JsonBytes(body): JsonBytes,
) -> ApiResult<(StatusCode, Json<NotificationAccepted>)> {
    Ok((StatusCode::OK, accept(&state, &key, &headers, &body, "4").await?))
}

/// Grafana alerting webhook contact point (POST or PUT).
#[utoipa::path(post, path = "/api/v1/integrations/{key}/grafana", tag = "ingest", request_body = Notification,
    params(("key" = String, Path, description = "the integration's key")),
    responses((status = 200, body = NotificationAccepted), (status = 403, body = Problem), (status = 404, body = Problem),
              (status = 422, body = Problem), (status = 503, body = Problem)))]
pub async fn grafana(
    State(state): State<AppState>,
    Path(key): Path<String>,
    headers: HeaderMap,
    JsonBytes(body): JsonBytes,
) -> ApiResult<(StatusCode, Json<NotificationAccepted>)> {
    Ok((StatusCode::OK, accept(&state, &key, &headers, &body, "1").await?))
}

/// One alert of Alertmanager's push API (`postableAlert`).
#[allow(dead_code)] // The whole format is accepted; keel reads part of it so far.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct PostableAlert {
    labels: Labels,
    annotations: Option<Labels>,
    starts_at: Option<String>,
    ends_at: Option<String>,
    #[serde(rename = "generatorURL")]
    generator_url: Option<String>,
}

fn bad_push(detail: String) -> axum::response::Response {
    use axum::response::IntoResponse;
    (StatusCode::BAD_REQUEST, detail).into_response()
}

/// `POST /api/v2/alerts`: Alertmanager's own push API, so Prometheus (and
/// Grafana's Alertmanager contact point) can send straight to keel. The
/// integration key comes as the bearer token or basic-auth password. Labels
/// identify an alert; an `endsAt` in the past resolves it; alerts with one
/// `alertname` share an open incident. Answers as Alertmanager does: 200
/// with no body, 400 with a plain-text reason.
pub async fn push(
    State(state): State<AppState>,
    headers: axum::http::HeaderMap,
    body: Result<axum::body::Bytes, axum::extract::rejection::BytesRejection>,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let Some(key) = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ").map(str::to_string).or_else(|| {
                let encoded = v.strip_prefix("Basic ")?;
                let decoded =
                    base64::Engine::decode(&base64::engine::general_purpose::STANDARD, encoded.trim()).ok()?;
                let text = String::from_utf8(decoded).ok()?;
                text.split_once(':').map(|(_, password)| password.to_string())
            })
        })
    else {
        return ApiError::unauthorized("send the integration key as a bearer token or basic-auth password")
            .into_response();
    };
    let body = match body {
        Ok(body) => body,
        Err(rejection) => return (rejection.status(), rejection.to_string()).into_response(),
    };
    let started = Instant::now();
    let integration = match integration_for(&state, &key).await {
        Ok(integration) => integration,
        Err(error) => return error.into_response(),
    };
    let signals = match parse_push_body(&body, state.clock.now()) {
        Ok(signals) => signals,
        Err(detail) => return bad_push(detail),
    };
    if let Err(error) = throttle(&state, &integration, signals.len()) {
        return error.into_response();
    }
    match ingest_signals(&state, &integration, signals, "alertmanager_push", started).await {
        Ok(_) => StatusCode::OK.into_response(),
        Err(error) => ApiError::from(error).into_response(),
    }
}

/// Parses the push API's list of alerts as of `now` (an `endsAt` at or
/// before it resolves the alert).
///
/// # Errors
/// Alertmanager's plain-text reason.
pub fn parse_push_body(bytes: &[u8], now: Timestamp) -> Result<Vec<Signal>, String> {
    let alerts: Vec<PostableAlert> =
        serde_json::from_slice(bytes).map_err(|error| format!("the body is not a list of alerts: {error}"))?;
    let mut signals = Vec::with_capacity(alerts.len());
    for alert in alerts {
        let Some(name) = alert.labels.get("alertname").cloned() else {
            return Err("every alert needs an alertname label".to_string());
        };
        let ends_at = alert
            .ends_at
            .as_deref()
            .and_then(|t| t.parse::<Timestamp>().ok())
            .filter(|t| t.as_micros() > 0);
        let resolved = ends_at.is_some_and(|t| t <= now);
        let webhook = WebhookAlert {
            status: if resolved { "resolved" } else { "firing" }.to_string(),
            labels: alert.labels,
            annotations: alert.annotations,
            starts_at: alert.starts_at,
            ends_at: None,
            generator_url: alert.generator_url,
            fingerprint: None,
            values: None,
            value_string: None,
            silence_url: None,
            dashboard_url: None,
            panel_url: None,
            image_url: None,
        };
        signals.push(signal(webhook, Some(&name)).map_err(|error| error.detail)?);
    }
    Ok(signals)
}
