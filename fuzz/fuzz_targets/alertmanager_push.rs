//! Alertmanager's push API (`POST /api/v2/alerts`, a JSON array of alerts).
//! `keel_http::alertmanager::parse_push_body(bytes, now)`.
#![no_main]

use keel_domain::Timestamp;
use keel_fuzz::assert_webhook_signal;
use libfuzzer_sys::fuzz_target;

/// A fixed "now" (2027-01-15T08:00:00Z), so runs are reproducible.
const NOW: Timestamp = Timestamp::from_micros(1_800_000_000_000_000);

fuzz_target!(|data: &[u8]| {
    let Ok(signals) = keel_http::alertmanager::parse_push_body(data, NOW) else {
        return;
    };
    for signal in &signals {
        assert_webhook_signal(signal);
        // Every accepted alert has an alertname, which is its group.
        let name = signal.labels.get("alertname");
        assert!(name.is_some(), "an alert without alertname was accepted: {signal:?}");
        assert_eq!(signal.group_key.as_ref(), name, "group_key is not the alertname");
        // The push API has only generatorURL.
        assert!(
            signal.links.len() <= 1 && signal.links.iter().all(|(text, _)| text == "Source"),
            "links {:?}",
            signal.links
        );
        // No fingerprint in this API: the key is 32 hex digits of the labels' hash.
        assert_eq!(signal.dedup_key.len(), 32, "dedup_key {:?}", signal.dedup_key);
        assert!(
            signal.dedup_key.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')),
            "dedup_key {:?} is not lowercase hex",
            signal.dedup_key
        );
    }
});
