//! Any bytes: decoding never panics, and whatever decodes re-encodes to JSON that decodes to the
//! same event ("never emit what you cannot parse back"); validation never panics either.
#![no_main]

use herald_events::Event;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(event) = Event::from_slice(data) {
        let _ = event.validate();
        let text = event.to_json();
        let again = Event::from_json(&text).expect("re-encoded event must decode");
        assert_eq!(again.to_json(), text, "encoding is stable");
    }
});
