//! `rzts serve`: the all-in-one process. The decision server starts first; the
//! enforcement points configured in the same file (today the SOCKS5 gateway,
//! `[socks]`) mount beside it and talk to it exactly as remote ones would: over
//! its HTTP API with the PEP token, verifying its signed bundles.
//!
//! Shutdown runs the other way: enforcement points stop, their queued access
//! records are sent to the server, then the server commits its log and stops.

use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use pdp_server::config::ServerConfig;
use pep_client::{PepClients, PepOptions};
use pep_socks::{Gateway, SocksConfig};

use crate::directory::DirectoryError;

/// The whole configuration file: the server's keys plus one table per mounted
/// enforcement point.
#[derive(Debug, Clone, PartialEq)]
pub struct AllInOneConfig {
    /// The decision server.
    pub server: ServerConfig,
    /// The SOCKS5 gateway (`[socks]`).
    pub socks: SocksConfig,
}

/// Reads the configuration (`None`: the embedded defaults).
pub fn load(path: Option<&Path>) -> Result<AllInOneConfig, DirectoryError> {
    let Some(path) = path else {
        return Ok(AllInOneConfig {
            server: ServerConfig::embedded_default(),
            socks: SocksConfig::default(),
        });
    };
    let text = std::fs::read_to_string(path)
        .map_err(|e| DirectoryError::Config(format!("{}: {e}", path.display())))?;
    parse(&text).map_err(|e| DirectoryError::Config(format!("{}: {e}", path.display())))
}

/// Parses a configuration text.
pub fn parse(text: &str) -> Result<AllInOneConfig, String> {
    let mut table: toml::Table = text.parse().map_err(|e: toml::de::Error| e.to_string())?;
    let socks = match table.remove("socks") {
        Some(v) => {
            let c: SocksConfig = v
                .try_into()
                .map_err(|e: toml::de::Error| format!("[socks]: {e}"))?;
            c.validate()?;
            c
        }
        None => SocksConfig::default(),
    };
    // The rest is the server's own configuration, read from the same parsed table.
    let server: ServerConfig = toml::Value::Table(table)
        .try_into()
        .map_err(|e: toml::de::Error| e.to_string())?;
    server.validate().map_err(|e| e.to_string())?;
    Ok(AllInOneConfig { server, socks })
}

/// Runs the server and its enforcement points until SIGINT/SIGTERM.
pub fn serve(config: Option<&Path>) -> Result<ExitCode, DirectoryError> {
    let cfg = load(config)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| DirectoryError::Server(e.to_string()))?;
    pdp_server::server::init_tracing();
    rt.block_on(run(cfg)).map_err(DirectoryError::Server)?;
    Ok(ExitCode::SUCCESS)
}

async fn run(cfg: AllInOneConfig) -> Result<(), String> {
    let data_dir = cfg.server.data_dir.clone();
    let running = pdp_server::server::Server::start(cfg.server)
        .await
        .map_err(|e| e.to_string())?;
    println!("{}", running.summary());

    let mut mounted = None;
    if cfg.socks.enabled {
        let options = PepOptions {
            pdp_url: running.url(),
            pep_token: running.pep_token().to_string(),
            bundle_key: running.bundle_public_key(),
            login_cache: Duration::from_secs(cfg.socks.login_cache_secs),
            log_spool: Some(data_dir.join("socks-access.spool")),
        };
        let (clients, tasks) = PepClients::start(options).map_err(|e| e.to_string())?;
        match Gateway::start(cfg.socks, clients).await {
            Ok(gw) => {
                println!(
                    "  SOCKS5 gateway  socks5h://{addr}  (PAC file: http://{addr}/proxy.pac; \
                     credentials: user id + `rzts user proxy-token ID`)",
                    addr = gw.addr()
                );
                mounted = Some((gw, tasks));
            }
            Err(e) => {
                tasks.shutdown().await;
                let _ = running.shutdown().await;
                return Err(e.to_string());
            }
        }
    }

    pdp_server::server::wait_for_signal().await;
    println!("shutting down");
    if let Some((gw, tasks)) = mounted {
        gw.shutdown().await;
        let report = tasks.shutdown().await;
        if report.spooled > 0 {
            println!(
                "  {} SOCKS access records kept in the spool for the next start",
                report.spooled
            );
        }
    }
    running.shutdown().await.map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_socks_table_is_read_beside_the_server_keys() {
        let c = parse(
            "listen = \"127.0.0.1:9000\"\n[socks]\nlisten = \"127.0.0.1:1081\"\nmax_connections_per_user = 3\n",
        )
        .unwrap();
        assert_eq!(c.server.listen.port(), 9000);
        assert_eq!(c.socks.listen.port(), 1081);
        assert_eq!(c.socks.max_connections_per_user, 3);
        assert!(parse("[socks]\nlisten_typo = 1\n")
            .unwrap_err()
            .contains("listen_typo"));
        assert!(parse("nonsense = 1\n").unwrap_err().contains("nonsense"));
        assert!(parse("[socks]\nidle_timeout_secs = 0\n").is_err());
    }

    #[test]
    fn the_sample_config_is_the_embedded_default() {
        let text = include_str!("../examples/server.toml");
        let c = parse(text).unwrap();
        assert_eq!(c.server, ServerConfig::embedded_default());
        assert_eq!(c.socks, SocksConfig::default());
    }
}
