//! PagerDuty Events API v2 (`POST /v2/enqueue`), answered the way PagerDuty
//! answers, so that anything that can page PagerDuty (Alertmanager's and
//! Grafana's PagerDuty receivers, agents, scripts) can send to keel
//! unchanged: 202 `{"status":"success",…,"dedup_key"}` once stored; 400
//! `{"status":"invalid event","message":…,"errors":[…]}` for a bad event.
//! The routing key is an integration key.

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use keel_domain::Timestamp;
use keel_domain::detection::{Severity, SignalAction, check_dedup_key};
use keel_store::Signal;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::auth::hash_token;
use crate::error::ApiError;
use crate::{AppState, new_id};

/// The event as PagerDuty documents it. Fields keel does not use yet are
/// accepted (senders always send them) but anything else is refused.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Event {
    routing_key: Option<String>,
    event_action: Option<String>,
    dedup_key: Option<String>,
    payload: Option<Payload>,
    /// The monitoring tool's name and its page: a link on the incident.
    client: Option<String>,
    client_url: Option<String>,
    /// `{"href", "text"}`: links on the incident.
    links: Option<Vec<Value>>,
    /// `{"src", "href", "alt"}`: shown as links on the incident.
    images: Option<Vec<Value>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Payload {
    summary: Option<String>,
    source: Option<String>,
    severity: Option<String>,
    timestamp: Option<String>,
    component: Option<String>,
    group: Option<String>,
    class: Option<String>,
    /// Its top-level scalar fields become labels that rules can match.
    custom_details: Option<Value>,
}

fn invalid(errors: Vec<String>) -> Response {
    (
        StatusCode::BAD_REQUEST,
        Json(json!({"status": "invalid event", "message": "Event object is invalid", "errors": errors})),
    )
        .into_response()
}

/// PagerDuty's examples write offsets as `+0000`; RFC 3339 wants `+00:00`.
fn parse_timestamp(text: &str) -> Option<Timestamp> {
    if let Ok(ts) = text.parse() {
        return Some(ts);
    }
    let bytes = text.as_bytes();
    let n = bytes.len();
    if n > 5 && matches!(bytes[n - 5], b'+' | b'-') && bytes[n - 4..].iter().all(u8::is_ascii_digit) {
        return format!("{}:{}", &text[..n - 2], &text[n - 2..]).parse().ok();
    }
    None
}

/// Parses a request body into (routing key, signal), or PagerDuty's list of
/// what is wrong with it.
///
/// # Errors
/// Every problem found, in PagerDuty's words.
pub fn parse_event_body(bytes: &[u8]) -> Result<(String, Signal), Vec<String>> {
    let event: Event = serde_json::from_slice(bytes).map_err(|error| vec![error.to_string()])?;
    parse(event)
}

/// Checks the event and turns it into a signal, collecting every problem
/// the way PagerDuty lists them.
fn parse(event: Event) -> Result<(String, Signal), Vec<String>> {
    let mut errors = Vec::new();
    let routing_key = event.routing_key.unwrap_or_default();
    if routing_key.len() != 32 {
        errors.push("Length of 'routing_key' is incorrect (should be 32 characters)".to_string());
    }
    if !routing_key.chars().all(|c| c.is_ascii_alphanumeric()) {
        errors.push("'routing_key' cannot contain non-alphanumeric characters.".to_string());
    }
    let action = match event.event_action.as_deref() {
        Some("trigger") => Some(SignalAction::Trigger),
        Some("acknowledge") => Some(SignalAction::Acknowledge),
        Some("resolve") => Some(SignalAction::Resolve),
        Some(_) => {
            errors.push("'event_action' must be one of trigger, acknowledge, resolve".to_string());
            None
        }
        None => {
            errors.push("'event_action' is missing or blank".to_string());
            None
        }
    };
    let dedup_key = match (event.dedup_key.filter(|k| !k.is_empty()), action) {
        (Some(key), _) => key,
        (None, Some(SignalAction::Trigger)) => new_id(),
        (None, _) => {
            errors.push("'dedup_key' is required for acknowledge and resolve events".to_string());
            String::new()
        }
    };
    if !dedup_key.is_empty() && check_dedup_key(&dedup_key).is_err() {
        errors.push("'dedup_key' must be at most 255 characters".to_string());
    }
    let mut links = Vec::new();
    if let Some(url) = event.client_url.filter(|u| !u.trim().is_empty()) {
        let client = event.client.unwrap_or_else(|| "Source".to_string());
        links.push((client.chars().take(200).collect(), url.chars().take(2000).collect()));
    }
    for (list, url_field, text_field) in [(&event.links, "href", "text"), (&event.images, "src", "alt")] {
        for item in list.iter().flatten().take(20) {
            if let Some(url) = item.get(url_field).and_then(Value::as_str) {
                let text = item.get(text_field).and_then(Value::as_str).unwrap_or(url_field);
                links.push((text.chars().take(200).collect(), url.chars().take(2000).collect()));
            }
        }
    }
    let payload = event.payload;
    let mut summary = String::new();
    let mut source = None;
    let mut severity = Severity::Error;
    let mut occurred_at = None;
    let mut labels = std::collections::BTreeMap::new();
    match (&payload, action) {
        (None, Some(SignalAction::Trigger)) => errors.push("'payload' is missing".to_string()),
        (Some(p), _) => {
            summary = p.summary.clone().unwrap_or_default().trim().to_string();
            source = p.source.clone().filter(|s| !s.trim().is_empty());
            let triggering = action == Some(SignalAction::Trigger);
            if triggering && summary.is_empty() {
                errors.push("'payload.summary' is missing or blank".to_string());
            }
            if summary.chars().count() > 1024 || summary.contains('\0') {
                errors.push("'payload.summary' must be at most 1024 characters".to_string());
            }
            if triggering && source.is_none() {
                errors.push("'payload.source' is missing or blank".to_string());
            }
            match p.severity.as_deref().map(Severity::parse) {
                Some(Some(s)) => severity = s,
                Some(None) => {
                    errors.push("'payload.severity' must be one of critical, error, warning, info".to_string())
                }
                None if triggering => errors.push("'payload.severity' is missing or blank".to_string()),
                None => {}
            }
            if let Some(text) = &p.timestamp {
                occurred_at = parse_timestamp(text);
                if occurred_at.is_none() {
                    errors.push("'payload.timestamp' is not an ISO 8601 time".to_string());
                }
            }
            for (name, value) in [("component", &p.component), ("group", &p.group), ("class", &p.class)] {
                if value
                    .as_ref()
                    .is_some_and(|v| v.contains('\0') || v.chars().count() > 1024)
                {
                    errors.push(format!("'payload.{name}' must be text of at most 1024 characters"));
                }
                if let Some(value) = value {
                    labels.insert(name.to_string(), value.chars().take(200).collect());
                }
            }
            if let Some(Value::Object(details)) = &p.custom_details {
                for (name, value) in details.iter().take(64) {
                    if name.contains('\0') {
                        continue;
                    }
                    let text = match value {
                        Value::String(text) => text.clone(),
                        Value::Number(n) => n.to_string(),
                        Value::Bool(b) => b.to_string(),
                        _ => continue,
                    };
                    // NUL cannot be stored; drop it rather than refuse the event.
                    labels
                        .entry(name.chars().take(200).collect())
                        .or_insert_with(|| text.replace('\0', "").chars().take(500).collect());
                }
            }
            let context: Vec<String> = [("component", &p.component), ("group", &p.group), ("class", &p.class)]
                .into_iter()
                .filter_map(|(name, value)| value.as_ref().map(|v| format!("{name}={v}")))
                .collect();
            if !context.is_empty() && !summary.is_empty() {
                summary = format!("{summary} [{}]", context.join(", "))
                    .chars()
                    .take(1024)
                    .collect();
            }
        }
        (None, _) => {}
    }
    if source
        .as_ref()
        .is_some_and(|s| s.chars().count() > 200 || s.contains('\0'))
    {
        errors.push("'payload.source' must be at most 200 characters".to_string());
    }
    match action {
        Some(action) if errors.is_empty() => Ok((
            routing_key,
            Signal {
                dedup_key,
                action,
                summary,
                source,
                severity,
                occurred_at,
                service: None,
                group_key: None,
                ci: None,
                labels,
                links,
            },
        )),
        _ => Err(errors),
    }
}

/// `POST /v2/enqueue`.
pub async fn enqueue(
    State(state): State<AppState>,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Response {
    let body = match body {
        Ok(body) => body,
        Err(rejection) if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            return (
                StatusCode::PAYLOAD_TOO_LARGE,
                Json(json!({"status": "invalid event", "message": "Event object is too large"})),
            )
                .into_response();
        }
        Err(rejection) => return invalid(vec![rejection.to_string()]),
    };
    let started = std::time::Instant::now();
    let (routing_key, signal) = match parse_event_body(&body) {
        Ok(parsed) => parsed,
        Err(errors) => return invalid(errors),
    };
    if let Err(seconds) = state.ingest_limit.take(&hash_token(&routing_key), 1) {
        metrics::counter!("keel_events_throttled_total").increment(1);
        let mut response = (
            StatusCode::TOO_MANY_REQUESTS,
            Json(json!({"status": "throttle event", "message": "Requests for this integration are arriving too quickly. Please retry later."})),
        )
            .into_response();
        if let Ok(value) = axum::http::HeaderValue::from_str(&seconds.to_string()) {
            response.headers_mut().insert(axum::http::header::RETRY_AFTER, value);
        }
        return response;
    }
    let integration = match crate::ingest::find_integration(&state, &hash_token(&routing_key)).await {
        Ok(Some(integration)) if !integration.disabled => integration,
        Ok(Some(_)) => return invalid(vec!["this integration is disabled".to_string()]),
        Ok(None) => return invalid(vec!["'routing_key' is not an integration key".to_string()]),
        Err(error) => return error.into_response(),
    };
    let dedup_key = signal.dedup_key.clone();
    match crate::ingest::ingest_signals(&state, &integration, vec![signal], "pagerduty", started).await {
        Ok(_) => (
            StatusCode::ACCEPTED,
            Json(json!({"status": "success", "message": "Event processed", "dedup_key": dedup_key})),
        )
            .into_response(),
        // Never a 4xx for our own trouble: senders drop those. Storage
        // failures are 5xx, which they retry.
        Err(error) => ApiError::from(error).into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::parse_timestamp;

    #[test]
    fn pagerduty_style_offsets_parse() {
        let compact = parse_timestamp("2015-07-17T08:42:58.315+0000").expect("PagerDuty's own example");
        let colon = parse_timestamp("2015-07-17T08:42:58.315+00:00").expect("RFC 3339");
        assert_eq!(compact, colon);
        assert!(parse_timestamp("yesterday").is_none());
    }
}
