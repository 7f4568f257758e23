//! The store settings the command line needs, from `--data`, `--config` and defaults.
//!
//! Only the DESIGN §4 keys the store uses are read here — `[store] backend/path`,
//! `[server] hostname`, `[events] seen_deleted_as_flags`; other sections are left to the
//! commands that need them. `--data` wins over `[store] path`; without either the data
//! directory is `./herald-data` (DESIGN §3).

use anyhow::{Context as _, bail};
use herald_store::StoreConfig;
use std::path::{Path, PathBuf};

/// The default data directory.
pub const DEFAULT_DATA: &str = "herald-data";

/// Builds the store configuration.
pub fn store_config(data: Option<&Path>, config: Option<&Path>) -> anyhow::Result<StoreConfig> {
    let table: toml::Table = match config {
        Some(path) => std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?
            .parse()
            .with_context(|| format!("{} is not valid TOML", path.display()))?,
        None => toml::Table::new(),
    };
    let get = |section: &str, key: &str| table.get(section).and_then(|s| s.get(key));
    match get("store", "backend").map(|v| v.as_str()) {
        None | Some(Some("embedded")) => {}
        Some(Some(other)) => bail!("[store] backend = \"{other}\" is not available in this build"),
        Some(None) => bail!("[store] backend must be a string"),
    }
    let path = match (data, get("store", "path")) {
        (Some(d), _) => d.to_path_buf(),
        (None, Some(p)) => PathBuf::from(p.as_str().context("[store] path must be a string")?),
        (None, None) => PathBuf::from(DEFAULT_DATA),
    };
    let mut c = StoreConfig::new(path);
    c.server_fqdn = match get("server", "hostname") {
        Some(h) => h
            .as_str()
            .context("[server] hostname must be a string")?
            .to_owned(),
        None => system_hostname(),
    };
    if let Some(v) = get("events", "seen_deleted_as_flags") {
        c.seen_deleted_as_flags = v
            .as_bool()
            .context("[events] seen_deleted_as_flags must be true or false")?;
    }
    Ok(c)
}

/// The machine's host name, or `localhost`.
fn system_hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .map(|s| s.trim().to_owned())
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "localhost".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_of_design_section_4() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("herald.toml");
        std::fs::write(
            &file,
            "[server]\nhostname = \"mail.example.org\"\n[store]\nbackend = \"embedded\"\npath = \"/srv/h\"\n\
             [events]\nseen_deleted_as_flags = true\n[imap]\nlisten = [\"127.0.0.1:1143\"]\n",
        )
        .unwrap();
        let c = store_config(None, Some(&file)).unwrap();
        assert_eq!(c.path, PathBuf::from("/srv/h"));
        assert_eq!(c.server_fqdn, "mail.example.org");
        assert!(c.seen_deleted_as_flags);
        let c = store_config(Some(Path::new("/other")), Some(&file)).unwrap();
        assert_eq!(c.path, PathBuf::from("/other"), "--data wins");
        let c = store_config(None, None).unwrap();
        assert_eq!(c.path, PathBuf::from(DEFAULT_DATA));
        std::fs::write(&file, "[store]\nbackend = \"postgres\"\n").unwrap();
        assert!(store_config(None, Some(&file)).is_err());
    }
}
