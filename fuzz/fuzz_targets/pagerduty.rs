//! PagerDuty Events API v2 (`POST /v2/enqueue`).
//! `keel_http::pagerduty::parse_event_body`.
#![no_main]

use keel_domain::detection::SignalAction;
use keel_fuzz::{assert_dedup_key, assert_short, assert_summary_len, chars};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok((routing_key, signal)) = keel_http::pagerduty::parse_event_body(data) else {
        return;
    };
    assert_eq!(routing_key.len(), 32, "routing_key {routing_key:?} is not 32 bytes");
    assert!(
        routing_key.bytes().all(|b| b.is_ascii_alphanumeric()),
        "routing_key {routing_key:?} is not alphanumeric"
    );
    assert_dedup_key(&signal);
    assert_summary_len(&signal);
    assert_short("payload.source", signal.source.as_ref());
    if signal.action == SignalAction::Trigger {
        assert!(
            !signal.summary.is_empty(),
            "a trigger with an empty summary: {signal:?}"
        );
        assert!(signal.source.is_some(), "a trigger without a source: {signal:?}");
    }
    assert!(signal.service.is_none() && signal.group_key.is_none() && signal.ci.is_none());
    // component/group/class plus at most 64 custom_details.
    assert!(signal.labels.len() <= 3 + 64, "{} labels", signal.labels.len());
    // client_url, then at most 20 of links[] and 20 of images[].
    assert!(signal.links.len() <= 1 + 20 + 20, "{} links", signal.links.len());
    for (k, v) in &signal.labels {
        assert!(chars(k) <= 200, "label name of {} chars", chars(k));
        assert!(chars(v) <= 500, "label value of {} chars", chars(v));
    }
});
