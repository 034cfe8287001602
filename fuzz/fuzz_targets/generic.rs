//! keel's generic JSON event format: one event or a batch (JSON array).
//! `keel_http::ingest::parse_generic_body`.
#![no_main]

use keel_domain::detection::SignalAction;
use keel_fuzz::{assert_dedup_key, assert_short, assert_summary_len};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok((signals, batch)) = keel_http::ingest::parse_generic_body(data) else {
        return;
    };
    // A batch is exactly a body whose first non-blank byte is '['.
    let starts_array = data.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'[');
    assert_eq!(batch, starts_array, "batch flag does not match the body's shape");
    if batch {
        assert!(
            (1..=keel_http::ingest::MAX_BATCH).contains(&signals.len()),
            "a batch of {} events was accepted",
            signals.len()
        );
    } else {
        assert_eq!(signals.len(), 1, "a single event gave {} signals", signals.len());
    }
    for signal in &signals {
        assert_dedup_key(signal);
        assert_summary_len(signal);
        assert!(!signal.summary.contains('\0'), "NUL in summary {:?}", signal.summary);
        if signal.action == SignalAction::Trigger {
            assert!(
                !signal.summary.is_empty(),
                "a firing event with an empty summary: {signal:?}"
            );
        }
        assert_short("source", signal.source.as_ref());
        assert_short("service", signal.service.as_ref());
        assert_short("group", signal.group_key.as_ref());
        assert_short("ci", signal.ci.as_ref());
        // The generic format has no links (yet): a change here is deliberate.
        assert!(
            signal.links.is_empty(),
            "links from a generic event: {:?}",
            signal.links
        );
        assert!(signal.labels.len() <= 64, "{} labels accepted", signal.labels.len());
        for (k, v) in &signal.labels {
            assert!(k.len() + v.len() <= 512, "label {k:?} of {} bytes", k.len() + v.len());
            assert!(!k.contains('\0') && !v.contains('\0'), "NUL in label {k:?}={v:?}");
        }
    }
});
