//! Any string: parsing never panics; a parsed URL prints to a string that parses to the same URL
//! and prints identically.
#![no_main]

use herald_events::ImapUrl;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &str| {
    if let Ok(url) = data.parse::<ImapUrl>() {
        let text = url.to_string();
        let again: ImapUrl = text.parse().expect("printed URL must parse");
        assert_eq!(again, url);
        assert_eq!(again.to_string(), text);
    }
});
