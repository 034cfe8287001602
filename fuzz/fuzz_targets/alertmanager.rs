//! Prometheus Alertmanager webhook (`"version": "4"`).
//! `keel_http::alertmanager::parse_notification(bytes, "4")`.
#![no_main]

use keel_fuzz::assert_webhook_signal;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(signals) = keel_http::alertmanager::parse_notification(data, "4") else {
        return;
    };
    for signal in &signals {
        assert_webhook_signal(signal);
        // Every alert of a notification carries the notification's groupKey.
        assert_eq!(
            signal.group_key, signals[0].group_key,
            "alerts of one notification in two groups"
        );
    }
});
