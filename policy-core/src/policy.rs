//! The policy file (spec §3): per protected target, a mode and two Japanese texts.
//!
//! ```
//! use policy_core::policy::{PolicyFile, Mode};
//! let p = PolicyFile::from_toml_str(r#"
//! [apps.github]
//! mode = "saml"
//! require = "多要素認証を利用していること"
//! "#).unwrap();
//! assert_eq!(p.apps["github"].mode, Mode::Saml);
//! assert_eq!(p.timezone(), "Asia/Tokyo");
//! ```

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::decision::Slot;

/// The default time zone for clock conditions.
pub const DEFAULT_TIMEZONE: &str = "Asia/Tokyo";

/// A policy file that could not be read.
#[derive(Debug, Clone, thiserror::Error)]
pub enum PolicyError {
    /// Not valid TOML or not the expected shape; the message names line and column.
    #[error("ポリシーファイルを読めません: {0}")]
    Toml(String),
    /// The time zone is not an IANA name.
    #[error("タイムゾーン {0:?} が不明です（例: Asia/Tokyo）")]
    Timezone(String),
    /// An app name that cannot be used.
    #[error("アプリ名 {0:?} は使えません（英数字、-、_、. のみ）")]
    AppName(String),
}

/// How a target is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// A SaaS app behind the SAML IdP proxy.
    Saml,
    /// An internal web app behind the tunnel edge.
    Tunnel,
    /// The outbound SOCKS5 gateway.
    Socks,
}

/// One protected target's texts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AppPolicy {
    /// How it is protected.
    pub mode: Mode,
    /// 必須条件; missing or empty: holds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub require: Option<String>,
    /// 拒否条件; missing or empty: never holds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deny: Option<String>,
}

impl AppPolicy {
    /// The text of a slot, `None` when missing or blank.
    pub fn text(&self, slot: Slot) -> Option<&str> {
        let t = match slot {
            Slot::Require => self.require.as_deref(),
            Slot::Deny => self.deny.as_deref(),
        };
        t.filter(|t| !t.trim().is_empty())
    }
}

/// A policy file.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyFile {
    /// IANA time zone for clock conditions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timezone: Option<String>,
    /// Targets by name (`destination.app`).
    #[serde(default)]
    pub apps: BTreeMap<String, AppPolicy>,
}

impl PolicyFile {
    /// Parses and validates a policy file.
    pub fn from_toml_str(s: &str) -> Result<PolicyFile, PolicyError> {
        let p: PolicyFile = toml::from_str(s).map_err(|e| PolicyError::Toml(e.to_string()))?;
        p.tz()?;
        for name in p.apps.keys() {
            let ok = !name.is_empty()
                && name.len() <= 128
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
            if !ok {
                return Err(PolicyError::AppName(name.clone()));
            }
        }
        Ok(p)
    }

    /// The time zone name.
    pub fn timezone(&self) -> &str {
        self.timezone.as_deref().unwrap_or(DEFAULT_TIMEZONE)
    }

    /// The time zone.
    pub fn tz(&self) -> Result<chrono_tz::Tz, PolicyError> {
        parse_tz(self.timezone())
    }
}

/// Parses an IANA time zone name.
pub fn parse_tz(name: &str) -> Result<chrono_tz::Tz, PolicyError> {
    name.parse::<chrono_tz::Tz>()
        .map_err(|_| PolicyError::Timezone(name.to_string()))
}
