//! The SOCKS5 gateway against real clients (curl, PySocks, raw sockets), with the
//! real decision server in the same process: its store, its signed bundle, its
//! log ingest.

mod support;

use std::net::SocketAddr;
use std::time::Duration;

use pdp_server::model::LogQuery;
use pdp_server::server::RunningServer;
use pep_client::log::{LogClient, LogOptions};
use pep_client::pdp::Pdp;
use pep_client::record::AccessRecord;
use pep_socks::SocksConfig;
use support::{auth_request, socks5_connect, Env, POLICY, TANAKA, TOKEN, USER};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Every test's environment. The server rereads the policy file every 100 ms
/// (default 1 s), so that `policy_changes_apply_without_restart` sees the edit soon.
async fn start(policy: &str, socks: SocksConfig) -> Env {
    Env::start(policy, socks, |c| c.reload_interval_ms = 100).await
}

fn socks_config() -> SocksConfig {
    SocksConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        handshake_timeout_ms: 500,
        connect_timeout_ms: 2000,
        login_cache_secs: 0,
        ..SocksConfig::default()
    }
}

/// Every access record the server acknowledged, once it is in the store (the
/// server indexes its access journal in the background).
async fn access_log(server: &RunningServer) -> Vec<AccessRecord> {
    assert!(server.state().log.sync_index(Duration::from_secs(10)).await);
    server
        .store()
        .query_access(&LogQuery {
            limit: Some(10_000),
            ..LogQuery::default()
        })
        .unwrap()
}

impl Env {
    /// curl through the gateway as `user` (`name:token`): `mode` is
    /// `--socks5-hostname` (remote DNS) or `--socks5` (the client resolves and
    /// sends an IP address).
    async fn curl_as(&self, mode: &str, user: &str, url: &str) -> CurlResult {
        curl(&[mode, &self.gw().to_string(), "--proxy-user", user, url]).await
    }

    /// `url` through the gateway as tanaka, with remote DNS.
    async fn fetch(&self, url: &str) -> CurlResult {
        self.curl_as("--socks5-hostname", &format!("{USER}:{TOKEN}"), url)
            .await
    }

    /// The access log, waiting until `n` records from the gateway are there.
    async fn records(&self, n: usize) -> Vec<AccessRecord> {
        for _ in 0..100 {
            let socks: Vec<AccessRecord> = access_log(self.server())
                .await
                .into_iter()
                .filter(|r| r.pep == "socks")
                .collect();
            if socks.len() >= n {
                return socks;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("fewer than {n} gateway records arrived in the log store");
    }
}

/// A local web server answering every request with `hello`.
async fn web_server() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            tokio::spawn(async move {
                let mut buf = vec![0u8; 4096];
                let mut got = Vec::new();
                while !got.windows(4).any(|w| w == b"\r\n\r\n") {
                    match s.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => got.extend_from_slice(&buf[..n]),
                    }
                }
                let _ = s
                    .write_all(
                        b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello",
                    )
                    .await;
            });
        }
    });
    addr
}

/// A local echo server.
async fn echo_server() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            tokio::spawn(async move {
                let (mut r, mut w) = s.split();
                let _ = tokio::io::copy(&mut r, &mut w).await;
            });
        }
    });
    addr
}

struct CurlResult {
    code: i32,
    stdout: String,
    stderr: String,
}

async fn curl(args: &[&str]) -> CurlResult {
    let out = tokio::process::Command::new("curl")
        .args(["-sS", "--max-time", "10"])
        .args(args)
        .output()
        .await
        .expect("curl is installed");
    CurlResult {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn reason_codes(r: &AccessRecord) -> Vec<&str> {
    r.reason_codes().collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn curl_allowed_denied_wrong_credentials_and_ip_only() {
    let env = start(POLICY, socks_config()).await;
    let web = web_server().await;
    let url = format!("http://localhost:{}/", web.port());

    // Allowed domain (remote DNS): the local web server answers through the gateway.
    let ok = env.fetch(&url).await;
    assert_eq!(ok.code, 0, "{}", ok.stderr);
    assert_eq!(ok.stdout, "hello");

    // Denied domain: SOCKS reply 0x02, which curl reports as error 97 with "(2)".
    let denied = env.fetch("http://chat.deepseek.com/").await;
    assert_eq!(denied.code, 97, "{}", denied.stderr);
    assert!(denied.stderr.contains("(2)"), "{}", denied.stderr);

    // Wrong credentials: refused at login.
    let wrong = env
        .curl_as("--socks5-hostname", "tanaka:not-the-token", &url)
        .await;
    assert_eq!(wrong.code, 97, "{}", wrong.stderr);
    assert!(wrong.stderr.contains("rejected"), "{}", wrong.stderr);
    let nobody = env
        .curl_as("--socks5-hostname", &format!("suzuki:{TOKEN}"), &url)
        .await;
    assert_eq!(nobody.code, 97, "another user's token does not work");

    // IP-only request (client-side DNS): the domain is unknown, so the domain
    // deny rule fails closed.
    let ip_only = env
        .curl_as(
            "--socks5",
            &format!("{USER}:{TOKEN}"),
            &format!("http://127.0.0.1:{}/", web.port()),
        )
        .await;
    assert_eq!(ip_only.code, 97, "{}", ip_only.stderr);
    assert!(ip_only.stderr.contains("(2)"), "{}", ip_only.stderr);

    // Every one of them is in the decision server's log, with its Japanese reason.
    let records = env.records(5).await;
    let find = |target: &str| {
        records
            .iter()
            .find(|r| r.target == target)
            .unwrap_or_else(|| panic!("no record for {target}: {records:#?}"))
    };
    let allowed = find(&format!("localhost:{}", web.port()));
    assert_eq!(allowed.decision, policy_core::decision::Effect::Allow);
    assert_eq!(allowed.user.as_deref(), Some("tanaka"));
    assert_eq!(allowed.source_ip.as_deref(), Some("127.0.0.1"));
    assert_eq!(allowed.auth_method.as_deref(), Some("password"));
    let deny = find("chat.deepseek.com:80");
    assert_eq!(deny.decision, policy_core::decision::Effect::Deny);
    assert_eq!(reason_codes(deny), ["deny.matched"]);
    assert!(
        deny.reasons[0].message.contains("deepseek.com"),
        "{:?}",
        deny.reasons
    );
    assert!(
        deny.reasons[0].message.contains("拒否"),
        "{:?}",
        deny.reasons
    );
    let ip = find(&format!("127.0.0.1:{}", web.port()));
    assert_eq!(reason_codes(ip), ["deny.unknown_attribute"]);
    assert!(
        ip.reasons[0].message.contains("ドメイン名が不明"),
        "{:?}",
        ip.reasons
    );
    let logins: Vec<&AccessRecord> = records.iter().filter(|r| r.target == "(login)").collect();
    assert_eq!(logins.len(), 2, "{logins:#?}");
    assert!(logins
        .iter()
        .all(|r| reason_codes(r) == ["socks.login_failed"]));
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pysocks_allowed_and_denied() {
    let env = start(POLICY, socks_config()).await;
    let web = web_server().await;
    let script = r#"
import sys, socks
gw_port, token, web_port = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
def fetch(host):
    s = socks.socksocket()
    s.set_proxy(socks.SOCKS5, "127.0.0.1", gw_port, rdns=True, username="tanaka", password=token)
    s.settimeout(10)
    try:
        s.connect((host, web_port))
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        data = b""
        while True:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
        return "ok:" + data.decode().split("\r\n\r\n", 1)[1]
    except socks.ProxyError as e:
        return "refused:" + str(e)
    finally:
        s.close()
print(fetch("localhost"))
print(fetch("deepseek.com"))
"#;
    let out = tokio::process::Command::new("python3")
        .args([
            "-c",
            script,
            &env.gw().port().to_string(),
            TOKEN,
            &web.port().to_string(),
        ])
        .output()
        .await
        .expect("python3 runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "PySocks client failed (scripts/test.sh installs it with pip install PySocks): {stderr}"
    );
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines[0], "ok:hello", "{stdout}");
    assert!(
        lines[1].starts_with("refused:") && lines[1].contains("0x02"),
        "{stdout}"
    );
    let records = env.records(2).await;
    assert!(records.iter().any(|r| r.target
        == "deepseek.com:".to_string() + &web.port().to_string()
        && reason_codes(r) == ["deny.matched"]));
    env.stop().await;
}

/// Reads until EOF (or a read error); panics if the socket stays silent for 3
/// seconds, neither sending nor closing.
async fn read_all(s: &mut TcpStream) -> Vec<u8> {
    let mut out = Vec::new();
    let mut buf = [0u8; 512];
    loop {
        match tokio::time::timeout(Duration::from_secs(3), s.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return out,
            Ok(Ok(n)) => out.extend_from_slice(&buf[..n]),
            Err(_) => panic!("the gateway neither answered nor closed: got {out:?}"),
        }
    }
}

/// Sends `bytes` on a new connection, half-closes, returns all the gateway said.
async fn exchange(gw: SocketAddr, bytes: &[u8]) -> Vec<u8> {
    let mut s = TcpStream::connect(gw).await.unwrap();
    let _ = s.write_all(bytes).await;
    let _ = s.shutdown().await;
    read_all(&mut s).await
}

/// Greeting + RFC 1929 login for tanaka, to be sent in one write with what follows.
fn login() -> Vec<u8> {
    let mut v = vec![5, 1, 2];
    v.extend(auth_request(USER, TOKEN));
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_handshakes_get_the_right_reply_and_others_keep_working() {
    let env = start(POLICY, socks_config()).await;
    let web = web_server().await;
    let gw = env.gw();

    // A slowloris client: one byte, then silence. It holds a connection open
    // while the others below run.
    let mut slow = TcpStream::connect(gw).await.unwrap();
    slow.write_all(&[5]).await.unwrap();

    // Garbage, SOCKS4, and an empty connection: closed without a SOCKS answer.
    assert_eq!(exchange(gw, b"\x00\xff garbage \x01\x02").await, b"");
    assert_eq!(exchange(gw, &[4, 1, 0, 80, 127, 0, 0, 1, 0]).await, b"");
    assert_eq!(exchange(gw, &[]).await, b"");
    // Truncated greetings and logins: nothing but maybe the method choice.
    assert_eq!(exchange(gw, &[5]).await, b"");
    assert_eq!(exchange(gw, &[5, 3, 0]).await, b"");
    assert_eq!(exchange(gw, &[5, 1, 2, 1, 6, b't']).await, [5, 2]);
    // No acceptable method (no auth only; 255 methods without 0x02): 0xFF.
    assert_eq!(exchange(gw, &[5, 1, 0]).await, [5, 0xFF]);
    let mut many = vec![5, 255];
    many.extend(std::iter::repeat_n(0u8, 255));
    assert_eq!(exchange(gw, &many).await, [5, 0xFF]);
    // Oversized credentials (255-byte user name and password): refused.
    let mut big = vec![5, 1, 2, 1, 255];
    big.extend(std::iter::repeat_n(b'a', 255));
    big.push(255);
    big.extend(std::iter::repeat_n(b'b', 255));
    assert_eq!(exchange(gw, &big).await, [5, 2, 1, 0xFF]);
    // An empty user name is a protocol error: closed after the method choice.
    assert_eq!(exchange(gw, &[5, 1, 2, 1, 0, 1, b'x']).await, [5, 2]);
    // Non-UTF-8 user name: refused or closed, never a panic.
    let answer = exchange(gw, &[5, 1, 2, 1, 2, 0xff, 0xfe, 1, b'x']).await;
    assert!(answer == [5, 2] || answer == [5, 2, 1, 0xFF], "{answer:?}");

    // Authenticated, then commands the gateway does not do: 0x07.
    let mut bind = login();
    bind.extend_from_slice(&[5, 2, 0, 1, 127, 0, 0, 1, 0, 80]);
    let a = exchange(gw, &bind).await;
    assert_eq!(&a[..4], &[5, 2, 1, 0], "auth ok: {a:?}");
    assert_eq!(a[4..6], [5, 7], "BIND refused with 0x07: {a:?}");
    let mut udp = login();
    udp.extend_from_slice(&[5, 3, 0, 1, 0, 0, 0, 0, 0, 0]);
    let a = exchange(gw, &udp).await;
    assert_eq!(a[4..6], [5, 7], "UDP ASSOCIATE refused with 0x07: {a:?}");
    let mut unknown = login();
    unknown.extend_from_slice(&[5, 9, 0, 1, 127, 0, 0, 1, 0, 80]);
    let a = exchange(gw, &unknown).await;
    assert_eq!(a[4..6], [5, 7], "unknown command refused with 0x07: {a:?}");
    // Unknown address type: 0x08.
    let mut atyp = login();
    atyp.extend_from_slice(&[5, 1, 0, 9, 1, 2, 3, 4, 0, 80]);
    let a = exchange(gw, &atyp).await;
    assert_eq!(a[4..6], [5, 8], "{a:?}");
    // Truncated request after login (a 20-byte name with 1 byte sent): a failure
    // reply or a close, never success.
    let mut trunc = login();
    trunc.extend_from_slice(&[5, 1, 0, 3, 20, b'a']);
    let a = exchange(gw, &trunc).await;
    assert_eq!(a[..4], [5, 2, 1, 0]);
    assert!(a.len() == 4 || (a[4] == 5 && a[5] != 0), "{a:?}");

    // Meanwhile a real client is served normally.
    let ok = env
        .fetch(&format!("http://localhost:{}/", web.port()))
        .await;
    assert_eq!(ok.stdout, "hello", "{}", ok.stderr);

    // The slowloris connection was cut at the handshake timeout (500 ms).
    let t = std::time::Instant::now();
    let rest = read_all(&mut slow).await;
    assert!(rest.is_empty(), "{rest:?}");
    assert!(t.elapsed() < Duration::from_secs(3));

    // BIND/UDP refusals are logged too.
    let records = env.records(4).await;
    assert!(
        records
            .iter()
            .filter(|r| reason_codes(r) == ["socks.command_not_supported"])
            .count()
            >= 2,
        "{records:#?}"
    );
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_user_limit_and_idle_timeout() {
    let env = start(
        POLICY,
        SocksConfig {
            max_connections_per_user: 2,
            idle_timeout_secs: 1,
            ..socks_config()
        },
    )
    .await;
    let echo = echo_server().await;
    let gw = env.gw();
    let mut a = socks5_connect(gw, TANAKA, echo).await.expect("first");
    let _b = socks5_connect(gw, TANAKA, echo).await.expect("second");
    // The relay copies both ways.
    a.write_all(b"ping").await.unwrap();
    let mut buf = [0u8; 4];
    a.read_exact(&mut buf).await.unwrap();
    assert_eq!(&buf, b"ping");
    // The idle timeout runs from this last activity on `a`.
    let t = std::time::Instant::now();
    // A third concurrent connection of the same user is refused with 0x02.
    assert_eq!(socks5_connect(gw, TANAKA, echo).await.err(), Some(2));
    let records = env.records(3).await;
    let limited = records
        .iter()
        .find(|r| reason_codes(r) == ["socks.too_many_connections"])
        .expect("the refusal is logged");
    assert!(limited.reasons[0].message.contains("上限（2）"));
    // After the idle timeout both relays are closed and the slots are free again.
    assert!(read_all(&mut a).await.is_empty());
    assert!(
        t.elapsed() >= Duration::from_millis(800),
        "{:?}",
        t.elapsed()
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut c = socks5_connect(gw, TANAKA, echo).await.expect("slot freed");
    c.write_all(b"pong").await.unwrap();
    c.read_exact(&mut buf).await.unwrap();
    assert_eq!(&buf, b"pong");
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policy_changes_apply_without_restart() {
    let env = start(POLICY, socks_config()).await;
    let web = web_server().await;
    let url = format!("http://localhost:{}/", web.port());
    assert_eq!(env.fetch(&url).await.stdout, "hello");
    let before = env.server().state().policy.current().version;
    // The administrator blocks the web server's port; the server recompiles and
    // signs a new bundle, the gateway's long poll picks it up.
    std::fs::write(
        env.dir.path().join("policies.toml"),
        POLICY.replace(
            "アクセス先のドメイン名が deepseek.com であること",
            &format!("アクセス先のポート番号が{}であること", web.port()),
        ),
    )
    .unwrap();
    let mut new_version = before;
    for _ in 0..100 {
        new_version = env.server().state().policy.current().version;
        if new_version > before {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(new_version > before, "the server reloaded the policy");
    let mut denied = None;
    for _ in 0..100 {
        let r = env.fetch(&url).await;
        if r.code == 97 {
            denied = Some(r);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let denied = denied.expect("the new rule applies within 5 s");
    assert!(denied.stderr.contains("(2)"), "{}", denied.stderr);
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_record_is_lost_on_shutdown_or_outage() {
    let env = start(POLICY, socks_config()).await;
    let gw = env.gw();
    // Denied connections, as fast as possible, then an immediate shutdown of
    // the gateway and its clients: every record must reach the store.
    let n = 40;
    for _ in 0..n {
        let mut req = login();
        req.extend_from_slice(&[5, 1, 0, 3, 12]);
        req.extend_from_slice(b"deepseek.com");
        req.extend_from_slice(&443u16.to_be_bytes());
        let a = exchange(gw, &req).await;
        assert_eq!(a[4..6], [5, 2], "{a:?}");
    }
    let Env {
        dir,
        mut server,
        mut gateway,
        mut tasks,
        ..
    } = env;
    gateway.take().unwrap().shutdown().await;
    let report = tasks.take().unwrap().shutdown().await;
    assert_eq!(report.spooled, 0);
    let server = server.take().unwrap();
    let stored = access_log(&server).await;
    assert_eq!(stored.iter().filter(|r| r.pep == "socks").count(), n);

    // An outage: the server is unreachable, so shutdown spools the records;
    // the next start sends them first.
    let spool = dir.path().join("outage.jsonl");
    let dead = Pdp::new("http://127.0.0.1:9", "x".repeat(20).as_str()).unwrap();
    let (log, shipper) = LogClient::start(
        dead,
        LogOptions {
            spool: Some(spool.clone()),
            shutdown_deadline: Duration::from_millis(300),
            ..LogOptions::default()
        },
    )
    .unwrap();
    let mut lost = stored.iter().find(|r| r.pep == "socks").cloned().unwrap();
    for i in 0..7 {
        lost.decision_id = format!("OUTAGE{i:04}");
        log.record(lost.clone()).unwrap();
    }
    let report = shipper.shutdown().await;
    assert_eq!(report.spooled, 7);
    assert!(log.record(lost.clone()).is_err(), "refused after shutdown");
    let alive = Pdp::new(&server.url(), server.pep_token()).unwrap();
    let (_log, shipper) = LogClient::start(
        alive,
        LogOptions {
            spool: Some(spool.clone()),
            ..LogOptions::default()
        },
    )
    .unwrap();
    let report = shipper.shutdown().await;
    assert_eq!(report.shipped, 7);
    assert!(!spool.exists(), "the spool is removed once sent");
    let stored = access_log(&server).await;
    assert_eq!(
        stored
            .iter()
            .filter(|r| r.decision_id.starts_with("OUTAGE"))
            .count(),
        7
    );
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn device_posture_reaches_the_gateway_and_unreachable_pdp_fails_closed() {
    // The gateway requires a firewall: known only through the user's device
    // reporting the client's address.
    let policy = POLICY.replace(
        "mode = \"socks\"",
        "mode = \"socks\"\nrequire = \"ファイアウォールが有効であること\"",
    );
    let env = start(&policy, socks_config()).await;
    let web = web_server().await;
    let url = format!("http://localhost:{}/", web.port());
    let r = env.fetch(&url).await;
    assert_eq!(r.code, 97, "no device known: firewall unknown, denied");
    let store = env.server().store();
    store.register_device("PC-0042", "tanaka").unwrap();
    let posture: policy_core::context::Device =
        serde_json::from_str(r#"{"firewall": true, "network": {"ip": "127.0.0.1"}}"#).unwrap();
    store
        .record_posture("PC-0042", &posture, chrono::Utc::now())
        .unwrap();
    env.server().state().enricher.invalidate_device("PC-0042");
    let r = env.fetch(&url).await;
    assert_eq!(r.stdout, "hello", "{}", r.stderr);
    let records = env.records(2).await;
    assert!(records
        .iter()
        .any(|r| r.device.as_deref() == Some("PC-0042") && reason_codes(r) == ["allow"]));
    assert!(records
        .iter()
        .any(|r| r.device.is_none() && reason_codes(r) == ["require.unknown_attribute"]));
    env.stop().await;

    // A gateway whose decision server is down refuses logins.
    let dead = Pdp::new("http://127.0.0.1:9", "x".repeat(20).as_str()).unwrap();
    let subjects = pep_client::subject::SubjectClient::new(dead, Duration::from_secs(30));
    match subjects.login("tanaka", "whatever", None).await {
        Err(pep_client::subject::LoginError::Unavailable(m)) => {
            assert!(m.contains("unreachable"), "{m}")
        }
        other => panic!("expected Unavailable, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pac_file_is_served_on_the_gateway_port() {
    let env = start(
        POLICY,
        SocksConfig {
            public_address: Some("gw.example.co.jp:1080".into()),
            ..socks_config()
        },
    )
    .await;
    let r = curl(&["-i", &format!("http://{}/proxy.pac", env.gw())]).await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stdout.contains("application/x-ns-proxy-autoconfig"),
        "{}",
        r.stdout
    );
    assert!(r
        .stdout
        .contains("return \"SOCKS5 gw.example.co.jp:1080\";"));
    let r = curl(&[
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        &format!("http://{}/other", env.gw()),
    ])
    .await;
    assert_eq!(r.stdout, "404");
    env.stop().await;
}
