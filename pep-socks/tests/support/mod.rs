//! The gateway as `rzts serve` mounts it, with the real decision server in the same
//! process, and a SOCKS5 CONNECT client: shared by the gateway tests
//! (`tests/gateway.rs`) and the SOCKS5 bench (`benches/benches/socks.rs`, through
//! `#[path]`), so that the bench measures the same setup the tests check.

// Each includer uses a different part (the bench neither reads the store nor
// edits the policy).
#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use pdp_server::config::ServerConfig;
use pdp_server::model::NewUser;
use pdp_server::server::{RunningServer, Server};
use pep_client::{PepClients, PepOptions, PepTasks};
use pep_socks::{Gateway, RunningGateway, SocksConfig};
use tempfile::TempDir;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// One SOCKS app that denies a domain: everything else is allowed, so a local
/// server is reachable and `deepseek.com` gives a refusal with its reason.
pub const POLICY: &str = r#"
timezone = "Asia/Tokyo"

[apps.internet]
mode = "socks"
deny = "アクセス先のドメイン名が deepseek.com であること"
"#;

/// The user created by [`Env::start`], and his proxy token (RFC 1929 password).
pub const USER: &str = "tanaka";
pub const TOKEN: &str = "tanaka-proxy-token-0123456789abcdef";
/// The `auth` of [`socks5_connect`] for [`USER`].
pub const TANAKA: Option<(&str, &str)> = Some((USER, TOKEN));

/// A decision server (SQLite store in a temporary directory, signed bundle, log
/// ingest), the gateway mounted as in `rzts serve`, and [`USER`] with [`TOKEN`].
pub struct Env {
    /// Holds `policies.toml` (rewritten by tests to trigger a reload), the store
    /// and the log spool.
    pub dir: TempDir,
    // Options so that a test can shut the parts down one by one and look in between.
    pub server: Option<RunningServer>,
    pub gateway: Option<RunningGateway>,
    pub tasks: Option<PepTasks>,
}

fn server_config(dir: &Path) -> ServerConfig {
    let mut c = ServerConfig::embedded_default();
    c.listen = "127.0.0.1:0".parse().unwrap();
    c.data_dir = dir.join("data");
    c.policy = dir.join("policies.toml");
    c.store = Some(format!("sqlite:{}", dir.join("rzts.db").display()));
    c.admin_token = Some("test-admin-token-0123456789".into());
    c
}

impl Env {
    /// Starts everything with `policy`; `tweak` adjusts the server configuration
    /// (the tests poll the policy file faster; the bench keeps the defaults, so no
    /// extra background work runs while it measures). Returns once the gateway has
    /// the server's current bundle, so the first request is decided by `policy`.
    pub async fn start(
        policy: &str,
        socks: SocksConfig,
        tweak: impl FnOnce(&mut ServerConfig),
    ) -> Env {
        let dir = tempfile::Builder::new()
            .prefix("rzts-socks-")
            .tempdir()
            .unwrap();
        std::fs::write(dir.path().join("policies.toml"), policy).unwrap();
        let mut config = server_config(dir.path());
        tweak(&mut config);
        let server = Server::start(config)
            .await
            .expect("the decision server starts");
        let store = server.store();
        store
            .create_user(&NewUser {
                id: USER.into(),
                email: "tanaka@example.co.jp".into(),
                display_name: "田中".into(),
                password_hash: None,
            })
            .unwrap();
        store
            .set_proxy_credential(USER, Some(&pdp_server::api::pep::token_digest(TOKEN)))
            .unwrap();
        // The spool is only written at shutdown, when the server is unreachable.
        let (clients, tasks) = PepClients::start(PepOptions {
            pdp_url: server.url(),
            pep_token: server.pep_token().to_string(),
            bundle_key: server.bundle_public_key(),
            login_cache: Duration::from_secs(socks.login_cache_secs),
            log_spool: Some(dir.path().join("spool.jsonl")),
        })
        .unwrap();
        let version = server.state().policy.current().version;
        tokio::time::timeout(
            Duration::from_secs(10),
            clients.policy.wait_for_version(version),
        )
        .await
        .expect("the gateway receives the policy bundle");
        let gateway = Gateway::start(socks, clients)
            .await
            .expect("the gateway starts");
        Env {
            dir,
            server: Some(server),
            gateway: Some(gateway),
            tasks: Some(tasks),
        }
    }

    /// The gateway's SOCKS5 address.
    pub fn gw(&self) -> SocketAddr {
        self.gateway.as_ref().unwrap().addr()
    }

    pub fn server(&self) -> &RunningServer {
        self.server.as_ref().unwrap()
    }

    /// Stops the gateway first, then its clients (which ship the queued access
    /// records), then the server, so that no record is lost.
    pub async fn stop(mut self) {
        if let Some(g) = self.gateway.take() {
            g.shutdown().await;
        }
        if let Some(t) = self.tasks.take() {
            t.shutdown().await;
        }
        if let Some(s) = self.server.take() {
            s.shutdown().await.unwrap();
        }
    }
}

async fn read_exact(s: &mut TcpStream, buf: &mut [u8], what: &str) {
    s.read_exact(buf)
        .await
        .unwrap_or_else(|e| panic!("SOCKS5 {what}: {e}"));
}

/// An RFC 1929 username/password request (version 1).
pub fn auth_request(user: &str, pass: &str) -> Vec<u8> {
    let mut m = vec![1, user.len() as u8];
    m.extend_from_slice(user.as_bytes());
    m.push(pass.len() as u8);
    m.extend_from_slice(pass.as_bytes());
    m
}

/// A SOCKS5 CONNECT through `proxy` to `localhost:target.port()` (a hostname
/// request, so the proxy resolves it), with RFC 1929 `(user, password)` or no
/// authentication, one step at a time as curl does. Returns the stream after a
/// success reply, or the reply code of a refused CONNECT; a refused method or
/// login panics.
pub async fn socks5_connect(
    proxy: SocketAddr,
    auth: Option<(&str, &str)>,
    target: SocketAddr,
) -> Result<TcpStream, u8> {
    let mut s = TcpStream::connect(proxy)
        .await
        .unwrap_or_else(|e| panic!("connect to the SOCKS5 proxy {proxy}: {e}"));
    s.set_nodelay(true).unwrap();
    let method = if auth.is_some() { 0x02 } else { 0x00 };
    s.write_all(&[5, 1, method]).await.unwrap();
    let mut reply = [0u8; 2];
    read_exact(&mut s, &mut reply, "method reply").await;
    assert_eq!(reply, [5, method], "SOCKS5 method not accepted by {proxy}");
    if let Some((user, pass)) = auth {
        s.write_all(&auth_request(user, pass)).await.unwrap();
        read_exact(&mut s, &mut reply, "auth reply").await;
        assert_eq!(reply, [1, 0], "SOCKS5 login refused by {proxy}");
    }
    let host = b"localhost";
    let mut req = vec![5, 1, 0, 3, host.len() as u8];
    req.extend_from_slice(host);
    req.extend_from_slice(&target.port().to_be_bytes());
    s.write_all(&req).await.unwrap();
    let mut head = [0u8; 4];
    read_exact(&mut s, &mut head, "CONNECT reply").await;
    assert_eq!(head[0], 5, "SOCKS5 CONNECT reply from {proxy}: {head:?}");
    // The bound address follows a refusal too: read it all.
    let rest = match head[3] {
        1 => 4 + 2,
        4 => 16 + 2,
        3 => {
            let mut l = [0u8; 1];
            read_exact(&mut s, &mut l, "bound name length").await;
            usize::from(l[0]) + 2
        }
        t => panic!("SOCKS5 reply from {proxy} with address type {t}"),
    };
    let mut bound = vec![0u8; rest];
    read_exact(&mut s, &mut bound, "bound address").await;
    match head[1] {
        0 => Ok(s),
        code => Err(code),
    }
}
