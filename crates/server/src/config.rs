//! Settings of `ruche serve`: command-line flags and `RUCHE_*` variables over a TOML file
//! over defaults.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use serde::Deserialize;

/// The settings the server runs with.
#[derive(Debug, Clone)]
pub struct Config {
    pub data: PathBuf,
    pub listen: SocketAddr,
    pub tls: Option<TlsFiles>,
    pub default_quota: Option<u64>,
    /// Connections served at once; more wait in the kernel's queue.
    pub max_connections: usize,
    /// A connection with no traffic either way for this long is closed.
    pub idle_timeout: Duration,
    /// Messages a co-editing connection may send per second; faster senders are slowed.
    pub collab_rate: u32,
    /// Days a deleted item stays in the trash before it is purged.
    pub trash_days: u32,
    /// How long versions are kept.
    pub retention: ruche_store::Retention,
    /// Days the activity log keeps its entries.
    pub activity_days: u32,
}

/// A certificate chain and its private key, both PEM.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// What a configuration file may hold; every key is optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    data: Option<PathBuf>,
    listen: Option<SocketAddr>,
    tls_cert: Option<PathBuf>,
    tls_key: Option<PathBuf>,
    default_quota: Option<u64>,
    max_connections: Option<usize>,
    idle_timeout_secs: Option<u64>,
    collab_rate: Option<u32>,
    trash_days: Option<u32>,
    /// Hours during which every version is kept.
    versions_all_hours: Option<u64>,
    /// Days up to which one version a day is kept.
    versions_daily_days: Option<u64>,
    /// Days up to which one version a week is kept; older ones are removed.
    versions_weekly_days: Option<u64>,
    activity_days: Option<u32>,
}

/// Values given on the command line or in the environment; they win over the file.
#[derive(Debug, Default)]
pub struct Overrides {
    pub config_file: Option<PathBuf>,
    pub data: Option<PathBuf>,
    pub listen: Option<SocketAddr>,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    pub default_quota: Option<u64>,
    pub max_connections: Option<usize>,
    pub idle_timeout_secs: Option<u64>,
    pub collab_rate: Option<u32>,
    pub trash_days: Option<u32>,
}

pub const DEFAULT_DATA: &str = "./ruche-data";
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
const DEFAULT_MAX_CONNECTIONS: usize = 4096;
const DEFAULT_IDLE_TIMEOUT_SECS: u64 = 120;
/// Far above what people type (a few dozen updates a second), low enough to slow a runaway.
const DEFAULT_COLLAB_RATE: u32 = 1000;
const DEFAULT_TRASH_DAYS: u32 = 30;
const DEFAULT_ACTIVITY_DAYS: u32 = 365;

impl Config {
    pub fn resolve(overrides: Overrides) -> anyhow::Result<Config> {
        let file = match &overrides.config_file {
            Some(path) => read_file(path)?,
            None => FileConfig::default(),
        };
        let retention = retention(&file);
        let activity_days = file.activity_days.unwrap_or(DEFAULT_ACTIVITY_DAYS);
        let listen = match overrides.listen.or(file.listen) {
            Some(addr) => addr,
            None => DEFAULT_LISTEN.parse().context("default listen address")?,
        };
        let tls = match (
            overrides.tls_cert.or(file.tls_cert),
            overrides.tls_key.or(file.tls_key),
        ) {
            (Some(cert), Some(key)) => Some(TlsFiles { cert, key }),
            (None, None) => None,
            _ => anyhow::bail!("TLS needs both a certificate and a key"),
        };
        Ok(Config {
            data: overrides
                .data
                .or(file.data)
                .unwrap_or_else(|| DEFAULT_DATA.into()),
            listen,
            tls,
            default_quota: overrides.default_quota.or(file.default_quota),
            max_connections: overrides
                .max_connections
                .or(file.max_connections)
                .unwrap_or(DEFAULT_MAX_CONNECTIONS)
                .max(1),
            idle_timeout: Duration::from_secs(
                overrides
                    .idle_timeout_secs
                    .or(file.idle_timeout_secs)
                    .unwrap_or(DEFAULT_IDLE_TIMEOUT_SECS)
                    .max(1),
            ),
            collab_rate: overrides
                .collab_rate
                .or(file.collab_rate)
                .unwrap_or(DEFAULT_COLLAB_RATE)
                .max(1),
            trash_days: overrides
                .trash_days
                .or(file.trash_days)
                .unwrap_or(DEFAULT_TRASH_DAYS),
            retention,
            activity_days,
        })
    }
}

/// The versions' retention: the defaults, with what the file changes.
fn retention(file: &FileConfig) -> ruche_store::Retention {
    const HOUR: u64 = 3600;
    const DAY: u64 = 24 * HOUR;
    let default = ruche_store::Retention::default();
    let or = |value: Option<u64>, unit: u64, default: Duration| {
        value.map_or(default, |v| Duration::from_secs(v.saturating_mul(unit)))
    };
    ruche_store::Retention {
        all: or(file.versions_all_hours, HOUR, default.all),
        daily: or(file.versions_daily_days, DAY, default.daily),
        weekly: or(file.versions_weekly_days, DAY, default.weekly),
    }
}

fn read_file(path: &Path) -> anyhow::Result<FileConfig> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("{}: cannot read configuration", path.display()))?;
    toml::from_str(&text).with_context(|| format!("{}: invalid configuration", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_win_over_the_file_and_defaults_fill_the_rest() {
        let dir = std::env::temp_dir().join(format!("ruche-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("ruche.toml");
        std::fs::write(
            &file,
            "data = \"/srv/ruche\"\nlisten = \"0.0.0.0:9000\"\nversions_weekly_days = 90\n",
        )
        .unwrap();
        let config = Config::resolve(Overrides {
            config_file: Some(file),
            listen: Some("127.0.0.1:7000".parse().unwrap()),
            ..Overrides::default()
        })
        .unwrap();
        assert_eq!(config.data, PathBuf::from("/srv/ruche"));
        assert_eq!(config.listen, "127.0.0.1:7000".parse().unwrap());
        assert!(config.tls.is_none());
        assert_eq!(config.retention.weekly, Duration::from_secs(90 * 24 * 3600));
        assert_eq!(
            config.retention.daily,
            ruche_store::Retention::default().daily
        );
    }

    #[test]
    fn unknown_keys_are_refused() {
        let dir = std::env::temp_dir().join(format!("ruche-config-bad-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("ruche.toml");
        std::fs::write(&file, "lisen = \"0.0.0.0:9000\"\n").unwrap();
        let result = Config::resolve(Overrides {
            config_file: Some(file),
            ..Overrides::default()
        });
        assert!(result.is_err());
    }
}
