//! The gateway's settings (the `[socks]` table of `rzts serve`'s configuration).

use std::net::SocketAddr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// How the SOCKS5 gateway listens, decides and limits.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SocksConfig {
    /// Whether `rzts serve` starts the gateway.
    pub enabled: bool,
    /// Where SOCKS5 clients connect; the PAC file is served on the same port.
    pub listen: SocketAddr,
    /// The address clients use to reach the gateway, written into the PAC file
    /// (`host:port`); default: `listen`.
    pub public_address: Option<String>,
    /// The app of the policy file whose 必須条件/拒否条件 govern the gateway; default:
    /// the one app with `mode = "socks"` (none or several: every access is denied
    /// with a reason saying so).
    pub app: Option<String>,
    /// Hosts the PAC file sends direct (never through the gateway).
    pub pac_direct: Vec<String>,
    /// Longest a client may take from connecting to sending its request
    /// (slow or silent clients are cut off).
    pub handshake_timeout_ms: u64,
    /// Longest a connection to the destination may take.
    pub connect_timeout_ms: u64,
    /// A relayed connection with no data in either direction this long is closed.
    pub idle_timeout_secs: u64,
    /// Concurrent relayed connections per user.
    pub max_connections_per_user: usize,
    /// Concurrent client connections in all (handshakes included).
    pub max_connections: usize,
    /// How long a successful or failed credential check is reused.
    pub login_cache_secs: u64,
}

impl Default for SocksConfig {
    fn default() -> Self {
        SocksConfig {
            enabled: true,
            listen: SocketAddr::from(([127, 0, 0, 1], 1080)),
            public_address: None,
            app: None,
            pac_direct: vec!["localhost".into(), "127.0.0.1".into(), "::1".into()],
            handshake_timeout_ms: 10_000,
            connect_timeout_ms: 10_000,
            idle_timeout_secs: 300,
            max_connections_per_user: 256,
            max_connections: 4096,
            login_cache_secs: 30,
        }
    }
}

impl SocksConfig {
    /// The handshake timeout.
    pub fn handshake_timeout(&self) -> Duration {
        Duration::from_millis(self.handshake_timeout_ms)
    }

    /// The connect timeout.
    pub fn connect_timeout(&self) -> Duration {
        Duration::from_millis(self.connect_timeout_ms)
    }

    /// The idle timeout.
    pub fn idle_timeout(&self) -> Duration {
        Duration::from_secs(self.idle_timeout_secs)
    }

    /// Checks values that cannot work.
    pub fn validate(&self) -> Result<(), String> {
        if self.handshake_timeout_ms == 0 || self.connect_timeout_ms == 0 {
            return Err("socks: timeouts must be greater than zero".into());
        }
        if self.idle_timeout_secs == 0 {
            return Err("socks.idle_timeout_secs must be greater than zero".into());
        }
        if self.max_connections == 0 || self.max_connections_per_user == 0 {
            return Err("socks: connection limits must be greater than zero".into());
        }
        Ok(())
    }
}
