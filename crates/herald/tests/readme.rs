//! The README promises things a test can hold it to: the events reference is the registry's,
//! the quick-start commands are the ones CI runs, and the metrics it lists (and the example
//! Grafana dashboard uses) are the ones `/metrics` serves.
#![allow(clippy::unwrap_used)]

use herald_events::reference;

fn read(rel: &str) -> String {
    std::fs::read_to_string(format!("{}/../../{rel}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

#[test]
fn readme_events_reference_matches_the_registry() {
    let readme = read("README.md");
    let start = readme
        .find(reference::BEGIN)
        .expect("README has the BEGIN marker");
    let end = readme
        .find(reference::END)
        .expect("README has the END marker")
        + reference::END.len();
    let block = &readme[start..end];
    let generated = reference::markdown();
    assert_eq!(
        block,
        generated.trim_end(),
        "README events reference is stale: regenerate with `cargo run -- events reference`"
    );
}

#[test]
fn readme_quick_start_commands_are_real() {
    let readme = read("README.md");
    let first_block: Vec<&str> = readme
        .split("```sh\n")
        .nth(1)
        .unwrap()
        .split("```")
        .next()
        .unwrap()
        .lines()
        .collect();
    let start = first_block[0].split('#').next().unwrap().trim();
    assert_eq!(start, "cargo run --release -- serve", "{first_block:?}");
    let test_command = first_block[1].split('#').next().unwrap().trim();
    assert_eq!(test_command, "cargo test --workspace");
    assert!(
        read(".ci/run").contains(test_command),
        ".ci/run runs the README's test command"
    );
    // The example stream the `events check` section runs exists.
    assert!(readme.contains("events check examples/events.jsonl"));
    assert!(
        std::path::Path::new(&format!(
            "{}/../../examples/events.jsonl",
            env!("CARGO_MANIFEST_DIR")
        ))
        .exists()
    );
}

#[test]
fn readme_and_dashboard_name_the_metrics_herald_serves() {
    let readme = read("README.md");
    for family in herald_metrics::expose::FAMILIES {
        assert!(
            readme.contains(&format!("`{family}`")),
            "the README's metrics table lacks {family}"
        );
    }
    let dashboard = read("examples/grafana-herald.json");
    let parsed: serde_json::Value = serde_json::from_str(&dashboard).unwrap();
    assert_eq!(parsed["title"], "Herald");
    let mut used = 0;
    for (i, _) in dashboard.match_indices("herald_") {
        let name: String = dashboard[i..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        let family = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|s| name.strip_suffix(s))
            .filter(|base| herald_metrics::expose::FAMILIES.contains(base))
            .unwrap_or(&name);
        assert!(
            herald_metrics::expose::FAMILIES.contains(&family),
            "the dashboard uses {name}, which /metrics does not serve"
        );
        used += 1;
    }
    assert!(used > 20, "the dashboard shows Herald's metrics");
}
