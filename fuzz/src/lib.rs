//! Invariants shared by the fuzz targets. Each target calls a parser on
//! arbitrary bytes; a parse error is fine, a panic is a bug, and an `Ok`
//! result must satisfy what the parser itself checks or builds (asserted
//! here, so a violation aborts the run like a panic and leaves an artifact).
//!
//! Only invariants the parsers really guarantee are asserted; see README.md
//! for properties that do NOT hold (and so are not asserted).
//!
//! # Panics
//! Every `assert_*` function panics when its invariant does not hold; that
//! is its purpose.

#![allow(clippy::missing_panics_doc)] // See "Panics" above.

use keel_domain::detection::SignalAction;
use keel_store::Signal;

/// Characters (not bytes) in `text`.
#[must_use]
pub fn chars(text: &str) -> usize {
    text.chars().count()
}

/// `keel_domain::detection::check_dedup_key`: 1 to 255 characters, no NUL.
pub fn assert_dedup_key(signal: &Signal) {
    let key = &signal.dedup_key;
    assert!(!key.is_empty(), "empty dedup_key in {signal:?}");
    assert!(chars(key) <= 255, "dedup_key of {} chars", chars(key));
    assert!(!key.contains('\0'), "NUL in dedup_key {key:?}");
}

/// Summaries are cut to 1024 characters by every format.
pub fn assert_summary_len(signal: &Signal) {
    let n = chars(&signal.summary);
    assert!(n <= 1024, "summary of {n} chars");
}

/// An optional short field of the generic format and `PagerDuty`'s `source`:
/// absent, or 1 to 200 characters of non-blank text without NUL.
pub fn assert_short(name: &str, value: Option<&String>) {
    if let Some(v) = value {
        assert!(!v.trim().is_empty(), "{name} is blank but Some: {v:?}");
        assert!(chars(v) <= 200, "{name} of {} chars", chars(v));
        assert!(!v.contains('\0'), "NUL in {name}: {v:?}");
    }
}

/// The webhook formats (Alertmanager, Grafana, push API) derive everything
/// but the dedup key and group key from the alert's labels.
pub fn assert_webhook_signal(signal: &Signal) {
    assert!(!signal.dedup_key.is_empty(), "empty dedup_key in {signal:?}");
    assert_summary_len(signal);
    assert!(
        matches!(signal.action, SignalAction::Trigger | SignalAction::Resolve),
        "a webhook alert is only firing or resolved, got {:?}",
        signal.action
    );
    if let Some(t) = signal.occurred_at {
        assert!(t.as_micros() > 0, "zero/negative startsAt kept: {t:?}");
    }
    let labels = &signal.labels;
    let source = labels.get("instance").or_else(|| labels.get("job"));
    assert_eq!(signal.source.as_ref(), source, "source is not labels.instance/job");
    assert_eq!(
        signal.service.as_ref(),
        labels.get("service"),
        "service is not labels.service"
    );
    assert_eq!(signal.ci.as_ref(), labels.get("ci"), "ci is not labels.ci");
    // generatorURL, dashboardURL, panelURL, silenceURL, imageURL: each once,
    // and only when not empty.
    assert!(signal.links.len() <= 5, "{} links", signal.links.len());
    for (i, (text, url)) in signal.links.iter().enumerate() {
        assert!(
            matches!(text.as_str(), "Source" | "Dashboard" | "Panel" | "Silence" | "Image"),
            "unexpected link text {text:?}"
        );
        assert!(!url.is_empty(), "empty {text} link kept");
        assert!(signal.links[..i].iter().all(|(t, _)| t != text), "two {text} links");
    }
    let name = labels.get("alertname").map_or("alert", String::as_str);
    let prefix: String = name.chars().take(1024).collect();
    assert!(
        signal.summary.starts_with(&prefix),
        "summary {:?} does not start with the alert name {name:?}",
        signal.summary
    );
}
