//! Background work of every `keel serve` node: the sweep (incidents whose
//! timer is due get their SLA targets announced, warnings and breaches
//! recorded once, escalate when nobody accepted in time, and get their next
//! timer set) and the delivery of queued
//! notifications to the outbound webhook. Both are safe with any number of
//! nodes on one database (the store skips rows another node holds, and the
//! timeline refuses a second warning or breach). Tests call `sweep_once` /
//! `deliver_once` directly with a pinned clock instead of waiting.

use std::sync::Arc;
use std::time::Duration;

use keel_domain::Timestamp;
use keel_store::{StoreError, SweepOutcome, SweepRequest};

use crate::AppState;

/// Incidents one sweep transaction looks at.
const SWEEP_BATCH: u32 = 500;
/// Notifications one delivery round takes.
const DELIVERY_BATCH: u32 = 50;
/// How long a taken notification stays hidden from other nodes.
const LEASE_SECS: u32 = 60;

/// Most batches one call sweeps, so that a flood of new incidents cannot
/// keep a sweep (and the deliveries after it) from ever finishing.
const MAX_BATCHES: usize = 40;

/// Sweeps until no due timer is left (a batch came back short), or for at
/// most `MAX_BATCHES` batches; the rest waits for the next tick.
///
/// # Errors
/// When the store fails.
pub async fn sweep_once(state: &AppState) -> Result<SweepOutcome, StoreError> {
    let routing = state.routing().await?;
    let mut total = SweepOutcome::default();
    for _ in 0..MAX_BATCHES {
        let outcome = state
            .store
            .sweep_sla(SweepRequest {
                policies: Arc::clone(&routing.sla),
                escalations: routing.escalations.clone(),
                team_leads: routing.team_leads.clone(),
                matrix: Arc::clone(&state.matrix),
                limit: SWEEP_BATCH,
            })
            .await?;
        total.examined += outcome.examined;
        total.entries += outcome.entries;
        total.notifications += outcome.notifications;
        metrics::counter!("keel_sla_entries_total").increment(outcome.entries as u64);
        if outcome.examined < SWEEP_BATCH as usize || (routing.sla.is_empty() && routing.escalations.is_empty()) {
            break;
        }
    }
    Ok(total)
}

/// Delivers due notifications to `webhook` (JSON POST); a non-2xx answer
/// or a transport error is retried later with growing delays. Returns how
/// many were delivered.
///
/// # Errors
/// When the store fails.
pub async fn deliver_once(state: &AppState, client: &reqwest::Client, webhook: &str) -> Result<usize, StoreError> {
    let mut delivered = 0;
    for notification in state.store.claim_notifications(DELIVERY_BATCH, LEASE_SECS).await? {
        let body = serde_json::json!({
            "id": notification.id,
            "kind": notification.kind,
            "incident_id": notification.incident_id,
            "recipients": notification.recipients,
            "created_at": notification.created_at.to_string(),
            "attempt": notification.attempts,
            "data": notification.payload,
        });
        let sent = client
            .post(webhook)
            .header("X-Keel-Notification", notification.id.as_str())
            .json(&body)
            .send()
            .await;
        let failure = match sent {
            Ok(answer) if answer.status().is_success() => None,
            Ok(answer) => Some(format!("the webhook answered {}", answer.status())),
            Err(error) => Some(format!("the webhook could not be reached: {error}")),
        };
        match failure {
            None => {
                delivered += 1;
                metrics::counter!("keel_notifications_delivered_total").increment(1);
                state.store.finish_notification(&notification.id, None).await?;
            }
            Some(error) => {
                metrics::counter!("keel_notifications_failed_total").increment(1);
                // 30 s, 1 min, 2 min, … up to an hour between attempts.
                let backoff = 30i64 * (1i64 << notification.attempts.clamp(1, 7).saturating_sub(1));
                let retry = Timestamp::from_micros(state.clock.now().as_micros() + backoff.min(3600) * 1_000_000);
                tracing::warn!(notification = %notification.id, %error, "notification not delivered; will retry");
                state
                    .store
                    .finish_notification(&notification.id, Some((error, retry)))
                    .await?;
            }
        }
    }
    Ok(delivered)
}

/// Runs the sweep every second and, with a webhook, the delivery, until
/// the process ends.
pub fn spawn(state: AppState, webhook: Option<String>) {
    tokio::spawn(async move {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap_or_default();
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if let Err(error) = sweep_once(&state).await {
                tracing::warn!(%error, "SLA sweep failed; will retry");
            }
            if let Some(webhook) = &webhook
                && let Err(error) = deliver_once(&state, &client, webhook).await
            {
                tracing::warn!(%error, "notification delivery failed; will retry");
            }
        }
    });
}
