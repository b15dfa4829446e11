//! The server's configuration (TOML; sample in `examples/server.toml`).
//!
//! Every key is optional: [`ServerConfig::embedded_default`] (what `rzts serve`
//! uses without `--config`) listens on `127.0.0.1:8080`, decides with
//! `examples/policies.toml` and keeps its SQLite database, admin token and signing
//! key in `rzts-data/`. Relative paths are relative to the working directory.
//!
//! ```
//! use pdp_server::config::ServerConfig;
//! let c = ServerConfig::from_toml_str(r#"
//! listen = "127.0.0.1:9000"
//! policy = "policies.toml"
//! [detector]
//! block_when_suspicious = true
//! "#).unwrap();
//! assert_eq!(c.listen.port(), 9000);
//! assert!(c.detector.block_when_suspicious);
//! assert!(ServerConfig::from_toml_str("lisen = \"x\"").is_err());
//! ```

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::alert::SmtpConfig;
use crate::detector::DetectorConfig;

/// The default listen address.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
/// The default policy file.
pub const DEFAULT_POLICY: &str = "examples/policies.toml";
/// The default data directory.
pub const DEFAULT_DATA_DIR: &str = "rzts-data";
/// The sample policy, used when the default policy file is not there.
pub const SAMPLE_POLICY: &str = include_str!("../../examples/policies.toml");

/// A configuration that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// Not valid TOML, or an unknown key or wrongly typed value.
    #[error("設定ファイルを読めません: {0}")]
    Toml(String),
    /// A file could not be read.
    #[error("{path}: {why}")]
    Io {
        /// The file.
        path: String,
        /// The OS error.
        why: String,
    },
    /// A value that cannot work.
    #[error("設定値が不正です ({key}): {why}")]
    Invalid {
        /// The key.
        key: &'static str,
        /// What is wrong.
        why: String,
    },
}

/// The server's configuration.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    /// Address and port of the HTTP API (`127.0.0.1:8080`; port 0 picks a free one).
    pub listen: SocketAddr,
    /// Where the database, admin token and signing key live by default (`rzts-data`).
    pub data_dir: PathBuf,
    /// The policy file (`examples/policies.toml`); its lock is written beside it.
    /// When the default file does not exist, the embedded sample policy is written
    /// to the data directory and used.
    pub policy: PathBuf,
    /// Store URL: `sqlite:PATH` (default `sqlite:<data_dir>/rzts.db`),
    /// `sqlite::memory:` or `postgres://user:pass@host/db`.
    pub store: Option<String>,
    /// Bearer token of the admin API. When missing, it is read from
    /// `<data_dir>/admin_token`, or generated there (mode 0600) and printed once.
    pub admin_token: Option<String>,
    /// Bearer token of enforcement points that decide locally (`/v1/pep/*`). When
    /// not set, read from `<data_dir>/pep_token`, or generated there (mode 0600).
    pub pep_token: Option<String>,
    /// The access journal (default `<data_dir>/access.journal`).
    pub access_journal: Option<PathBuf>,
    /// The ed25519 bundle signing key (base64 seed); generated when missing
    /// (default `<data_dir>/bundle_signing.key`, mode 0600).
    pub signing_key: Option<PathBuf>,
    /// A country MMDB database for `source.country`; when missing,
    /// `<data_dir>/geo-whois-asn-country.mmdb` is used if it exists.
    pub geoip: Option<PathBuf>,
    /// How often the policy file is checked for changes, in milliseconds (1000).
    pub reload_interval_ms: u64,
    /// Largest request body accepted, in bytes (1 MiB); larger ones get 413.
    pub max_body_bytes: usize,
    /// Most requests in one batch `POST /v1/decide` (1000).
    pub max_batch: usize,
    /// Most access records in one group commit (1024).
    pub log_batch_max: usize,
    /// How long directory lookups (users, groups, devices) are cached, in
    /// milliseconds (1000; 0 = always read the store). Admin API writes through this
    /// server take effect at once; changes made directly in the database (the CLI)
    /// within this time.
    pub cache_ttl_ms: u64,
    /// SMTP settings for anomaly alert mail; no mail when missing.
    pub smtp: Option<SmtpConfig>,
    /// The anomaly detector (`[detector]`), including `block_when_suspicious`.
    pub detector: DetectorConfig,
    /// The device agent (`[devices]`): attestation origins, report clock window,
    /// challenge lifetime.
    pub devices: crate::devices::DevicesConfig,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: DEFAULT_LISTEN.parse().expect("valid default address"),
            data_dir: PathBuf::from(DEFAULT_DATA_DIR),
            policy: PathBuf::from(DEFAULT_POLICY),
            store: None,
            admin_token: None,
            pep_token: None,
            access_journal: None,
            signing_key: None,
            geoip: None,
            reload_interval_ms: 1000,
            max_body_bytes: 1024 * 1024,
            max_batch: 1000,
            log_batch_max: crate::logwriter::DEFAULT_MAX_BATCH,
            cache_ttl_ms: 1000,
            smtp: None,
            detector: DetectorConfig::default(),
            devices: crate::devices::DevicesConfig::default(),
        }
    }
}

impl ServerConfig {
    /// The built-in configuration (no file needed).
    pub fn embedded_default() -> ServerConfig {
        ServerConfig::default()
    }

    /// Parses a TOML configuration; unknown keys are errors.
    pub fn from_toml_str(s: &str) -> Result<ServerConfig, ConfigError> {
        let c: ServerConfig = toml::from_str(s).map_err(|e| ConfigError::Toml(e.to_string()))?;
        c.validate()?;
        Ok(c)
    }

    /// Reads a TOML configuration file.
    pub fn from_file(path: &Path) -> Result<ServerConfig, ConfigError> {
        let s = std::fs::read_to_string(path).map_err(|e| ConfigError::Io {
            path: path.display().to_string(),
            why: e.to_string(),
        })?;
        ServerConfig::from_toml_str(&s).map_err(|e| match e {
            ConfigError::Toml(m) => ConfigError::Toml(format!("{}: {m}", path.display())),
            other => other,
        })
    }

    /// Checks values that parse but cannot work.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |key, why: &str| {
            Err(ConfigError::Invalid {
                key,
                why: why.to_string(),
            })
        };
        if self.max_body_bytes < 1024 {
            return invalid("max_body_bytes", "must be at least 1024");
        }
        if self.max_batch == 0 {
            return invalid("max_batch", "must be at least 1");
        }
        if self.log_batch_max == 0 {
            return invalid("log_batch_max", "must be at least 1");
        }
        if self.reload_interval_ms == 0 {
            return invalid("reload_interval_ms", "must be at least 1");
        }
        let max = crate::devices::MAX_DEVICE_SECS;
        for (field, v) in [
            (
                "devices.challenge_ttl_secs",
                self.devices.challenge_ttl_secs,
            ),
            (
                "devices.report_max_skew_secs",
                self.devices.report_max_skew_secs,
            ),
        ] {
            if v == 0 || v > max {
                return invalid(field, &format!("must be 1 to {max} seconds"));
            }
        }
        if let Some(o) =
            self.devices.attestation_origins.iter().find(|o| {
                !(o.starts_with("https://") || o.starts_with("http://")) || o.ends_with('/')
            })
        {
            return invalid(
                "devices.attestation_origins",
                &format!("{o:?} is not a web origin like https://login.example.co.jp"),
            );
        }
        for (key, t) in [
            ("admin_token", &self.admin_token),
            ("pep_token", &self.pep_token),
        ] {
            if t.as_ref().is_some_and(|t| t.trim().len() < 16) {
                return invalid(key, "must be at least 16 characters");
            }
        }
        Ok(())
    }

    /// The store URL in effect.
    pub fn store_url(&self) -> String {
        self.store
            .clone()
            .unwrap_or_else(|| format!("sqlite:{}", self.data_dir.join("rzts.db").display()))
    }

    /// The signing key path in effect.
    pub fn signing_key_path(&self) -> PathBuf {
        self.signing_key
            .clone()
            .unwrap_or_else(|| self.data_dir.join("bundle_signing.key"))
    }

    /// Where a generated admin token is kept.
    pub fn admin_token_path(&self) -> PathBuf {
        self.data_dir.join("admin_token")
    }

    /// The access journal: each access record is synced here before its decision
    /// is acknowledged, then stored (see [`crate::logwriter`]). Default
    /// `<data_dir>/access.journal`.
    pub fn access_journal_path(&self) -> PathBuf {
        self.access_journal
            .clone()
            .unwrap_or_else(|| self.data_dir.join("access.journal"))
    }

    /// Where the enforcement-point token is kept when not configured.
    pub fn pep_token_path(&self) -> PathBuf {
        self.data_dir.join("pep_token")
    }

    /// The GeoIP database in effect, if any.
    pub fn geoip_path(&self) -> Option<PathBuf> {
        self.geoip.clone().or_else(|| {
            let p = self.data_dir.join(crate::geoip::DEFAULT_DB_FILE);
            p.exists().then_some(p)
        })
    }
}

/// Writes a secret file readable and writable by its owner only (0600 on Unix),
/// creating its directory; fails if the file exists.
pub fn write_secret_file(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        opts.mode(0o600);
    }
    let mut f = opts.open(path)?;
    f.write_all(contents)?;
    f.sync_all()
}

/// A random secret, 32 bytes as 64 hex digits.
pub fn random_token() -> std::io::Result<String> {
    let mut b = [0u8; 32];
    getrandom::getrandom(&mut b).map_err(|e| std::io::Error::other(e.to_string()))?;
    Ok(b.iter().map(|x| format!("{x:02x}")).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    // `examples/server.toml` (with its enforcement-point tables) is checked
    // against these defaults by the `rzts` binary's tests (`src/serve.rs`).

    #[test]
    fn unknown_keys_and_bad_values_are_refused() {
        assert!(ServerConfig::from_toml_str("listen = 8080").is_err());
        assert!(ServerConfig::from_toml_str("[detector]\nhistroy = 3").is_err());
        assert!(ServerConfig::from_toml_str("admin_token = \"short\"").is_err());
        assert!(ServerConfig::from_toml_str("max_batch = 0").is_err());
        // Durations that would overflow date arithmetic are refused when loaded,
        // not met as a panic in a request.
        for bad in [
            "[devices]\nchallenge_ttl_secs = 10000000000000000",
            "[devices]\nreport_max_skew_secs = 1000000000000000",
            "[devices]\nreport_max_skew_secs = 0",
        ] {
            assert!(ServerConfig::from_toml_str(bad).is_err(), "{bad}");
        }
        assert!(ServerConfig::from_toml_str("[devices]\nchallenge_ttl_secs = 86400").is_ok());
    }

    #[test]
    fn derived_paths() {
        let c = ServerConfig::embedded_default();
        assert_eq!(c.store_url(), "sqlite:rzts-data/rzts.db");
        assert_eq!(
            c.signing_key_path(),
            PathBuf::from("rzts-data/bundle_signing.key")
        );
    }
}
