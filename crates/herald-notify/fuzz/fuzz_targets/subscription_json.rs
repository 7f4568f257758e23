//! What `POST /subscriptions` takes: any bytes as a subscription's JSON. Decoding and compiling
//! never panic; whatever decodes re-encodes to JSON that decodes to the same configuration
//! ("never emit what you cannot parse back"), and its redacted form (what the API shows)
//! carries no webhook secret.

#![no_main]

use herald_notify::config::REDACTED_SECRET;
use herald_notify::{SinkConfig, Subscription, SubscriptionConfig};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(config) = serde_json::from_slice::<SubscriptionConfig>(data) else {
        return;
    };
    let encoded = serde_json::to_vec(&config).expect("a configuration encodes");
    let again: SubscriptionConfig =
        serde_json::from_slice(&encoded).expect("what Herald encodes, it decodes");
    assert_eq!(again, config);
    let shown = config.redacted();
    if let (
        SinkConfig::Webhook {
            secret,
            secret_next,
            ..
        },
        SinkConfig::Webhook {
            secret: shown_secret,
            secret_next: shown_next,
            ..
        },
    ) = (&config.sink, &shown.sink)
    {
        assert_eq!(secret.is_some(), shown_secret.is_some());
        assert_eq!(secret_next.is_some(), shown_next.is_some());
        assert!(
            shown_secret
                .iter()
                .chain(shown_next)
                .all(|s| s == REDACTED_SECRET)
        );
    }
    let _ = Subscription::compile(config);
});
