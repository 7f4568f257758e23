//! Any string: parsing never panics; a parsed set prints canonically and parses back equal.
#![no_main]

use herald_events::UidSet;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &str| {
    if let Ok(set) = data.parse::<UidSet>() {
        let text = set.to_string();
        let again: UidSet = text.parse().expect("printed set must parse");
        assert_eq!(again, set);
        assert_eq!(again.to_string(), text);
    }
});
