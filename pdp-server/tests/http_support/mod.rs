//! Shared helpers of the HTTP tests: a temporary directory, a server started on
//! 127.0.0.1:0 with a temporary SQLite store and policy file, and a small HTTP/1.1
//! client over real TCP (hyper).
#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::header::HeaderMap;
use hyper_util::rt::TokioIo;
use pdp_server::config::ServerConfig;
use pdp_server::server::{RunningServer, Server};

pub const ADMIN_TOKEN: &str = "test-admin-token-0123456789";

pub const POLICY: &str = r#"
timezone = "Asia/Tokyo"

[apps.github]
mode = "saml"
require = "アクセス元の国名が日本であり、所有するデバイスは TPM が有効でドライブが BitLocker により暗号化されていること"
deny = "不審なアクセスと判定されていること"

[apps.keiri]
mode = "saml"
require = "経理部グループに所属し、多要素認証を利用していること"

[apps.kintai]
mode = "tunnel"
require = "登録済みのデバイスからのアクセスであり、画面ロックが設定されていること"

[apps.internet]
mode = "socks"
require = "ファイアウォールとウイルス対策ソフトが有効であること"
deny = "アクセス先のドメイン名が deepseek.com であるか、またはアクセス先のポート番号が22であること"
"#;

/// A directory removed when dropped.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        static N: AtomicU64 = AtomicU64::new(0);
        let p = std::env::temp_dir().join(format!(
            "rzts-{tag}-{}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed),
            chrono::Utc::now().timestamp_nanos_opt().unwrap_or(0)
        ));
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A configuration for a test server in `dir` (policy file `dir/policies.toml`).
pub fn config(dir: &Path) -> ServerConfig {
    let mut c = ServerConfig::embedded_default();
    c.listen = "127.0.0.1:0".parse().unwrap();
    c.data_dir = dir.join("data");
    c.policy = dir.join("policies.toml");
    c.store = Some(format!("sqlite:{}", dir.join("rzts.db").display()));
    c.admin_token = Some(ADMIN_TOKEN.into());
    c.reload_interval_ms = 100;
    c
}

/// Writes the policy (if not there) and starts a server.
pub async fn start(dir: &Path) -> RunningServer {
    start_with(config(dir)).await
}

pub async fn start_with(c: ServerConfig) -> RunningServer {
    if !c.policy.exists() {
        std::fs::write(&c.policy, POLICY).unwrap();
    }
    Server::start(c).await.expect("server starts")
}

/// An HTTP answer.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Reply {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    }
}

/// One request on a new TCP connection.
pub async fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<Vec<u8>>,
) -> Reply {
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(async move {
        let _ = conn.await;
    });
    let mut b = hyper::Request::builder()
        .method(method)
        .uri(path)
        .header("host", addr.to_string());
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    if body.is_some() {
        b = b.header("content-type", "application/json");
    }
    let req = b
        .body(Full::new(Bytes::from(body.unwrap_or_default())))
        .unwrap();
    let resp = sender.send_request(req).await.expect("response");
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    Reply {
        status,
        headers,
        body,
    }
}

pub async fn get(addr: SocketAddr, path: &str) -> Reply {
    request(addr, "GET", path, &[], None).await
}

pub async fn admin_get(addr: SocketAddr, path: &str) -> Reply {
    let auth = format!("Bearer {ADMIN_TOKEN}");
    request(addr, "GET", path, &[("authorization", &auth)], None).await
}

pub async fn admin(addr: SocketAddr, method: &str, path: &str, body: serde_json::Value) -> Reply {
    let auth = format!("Bearer {ADMIN_TOKEN}");
    request(
        addr,
        method,
        path,
        &[("authorization", &auth)],
        Some(body.to_string().into_bytes()),
    )
    .await
}

pub async fn post_json(addr: SocketAddr, path: &str, body: &serde_json::Value) -> Reply {
    request(addr, "POST", path, &[], Some(body.to_string().into_bytes())).await
}

pub async fn decide(addr: SocketAddr, body: serde_json::Value) -> Reply {
    post_json(addr, "/v1/decide", &body).await
}

/// Every access record in the store.
pub async fn all_records(server: &RunningServer) -> Vec<pdp_server::model::AccessRecord> {
    // Acknowledged records reach the store just after their journal sync.
    server
        .state()
        .log
        .sync_index(std::time::Duration::from_secs(5))
        .await;
    with_store(server, |store| {
        store.query_access(&pdp_server::model::LogQuery {
            limit: Some(10_000),
            ..Default::default()
        })
    })
    .await
}

/// The decision ids of every access record in the store.
pub async fn logged_ids(server: &RunningServer) -> Vec<String> {
    all_records(server)
        .await
        .into_iter()
        .map(|r| r.decision_id)
        .collect()
}

/// Runs `f` on the server's store on a blocking thread (the store blocks) and
/// unwraps its result.
pub async fn with_store<T, F>(server: &RunningServer, f: F) -> T
where
    T: Send + 'static,
    F: FnOnce(&dyn pdp_server::store::Store) -> Result<T, pdp_server::store::StoreError>
        + Send
        + 'static,
{
    let store = server.store();
    tokio::task::spawn_blocking(move || f(store.as_ref()))
        .await
        .unwrap()
        .unwrap()
}

/// Polls `f` every 50 ms until it is true or `secs` pass.
pub async fn eventually<F, Fut>(secs: u64, mut f: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    while std::time::Instant::now() < deadline {
        if f().await {
            return true;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    false
}
