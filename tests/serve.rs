//! `rzts serve` end to end: the real binary with the SOCKS5 gateway mounted, a
//! proxy token issued by `rzts user proxy-token`, curl through the gateway, a
//! SIGTERM, and the access records found by `rzts logs` afterwards.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const POLICY: &str = r#"
timezone = "Asia/Tokyo"

[apps.internet]
mode = "socks"
deny = "アクセス先のドメイン名が deepseek.com であること"
"#;

fn bin() -> std::path::PathBuf {
    assert_cmd::cargo::cargo_bin("rzts")
}

fn rzts(dir: &std::path::Path, args: &[&str]) -> String {
    let out = Command::new(bin())
        .args(args)
        .args(["--config", "server.toml"])
        .current_dir(dir)
        .output()
        .expect("rzts runs");
    assert!(
        out.status.success(),
        "rzts {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Kills the server if the test fails before SIGTERM.
struct Serve(Child);

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A web server answering `hello` to every connection.
fn web_server() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { continue };
            std::thread::spawn(move || {
                let mut buf = [0u8; 2048];
                let _ = s.read(&mut buf);
                let _ = s.write_all(
                    b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello",
                );
            });
        }
    });
    port
}

#[test]
fn serve_mounts_the_gateway_and_keeps_every_record_across_shutdown() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("policies.toml"), POLICY).unwrap();
    std::fs::write(
        d.join("server.toml"),
        "listen = \"127.0.0.1:0\"\npolicy = \"policies.toml\"\ndata_dir = \"data\"\n\
         [socks]\nlisten = \"127.0.0.1:0\"\n",
    )
    .unwrap();
    rzts(
        d,
        &["user", "add", "tanaka", "--email", "tanaka@example.co.jp"],
    );
    let token = rzts(d, &["user", "proxy-token", "tanaka"])
        .trim()
        .to_string();
    assert_eq!(token.len(), 64, "{token}");

    let mut child = Command::new(bin())
        .args(["serve", "--config", "server.toml"])
        .current_dir(d)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("rzts serve starts");
    let stdout = child.stdout.take().unwrap();
    let serve = Serve(child);
    // The summary names the gateway's address.
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let deadline = Instant::now() + Duration::from_secs(30);
    let gateway = loop {
        let line = rx
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .expect("rzts serve prints the gateway address");
        if let Some(rest) = line.trim().strip_prefix("SOCKS5 gateway  socks5h://") {
            break rest.split_whitespace().next().unwrap().to_string();
        }
    };

    let web = web_server();
    let curl = |url: &str| {
        Command::new("curl")
            .args(["-sS", "--max-time", "10", "--socks5-hostname", &gateway])
            .args(["--proxy-user", &format!("tanaka:{token}"), url])
            .output()
            .expect("curl runs")
    };
    // The gateway may still be waiting for its first bundle: retry briefly.
    let mut ok = curl(&format!("http://localhost:{web}/"));
    for _ in 0..50 {
        if ok.status.success() {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
        ok = curl(&format!("http://localhost:{web}/"));
    }
    assert_eq!(String::from_utf8_lossy(&ok.stdout), "hello");
    let denied = curl("http://deepseek.com/");
    assert_eq!(denied.status.code(), Some(97));

    // SIGTERM right away: the queued records must still reach the log.
    let pid = serve.0.id().to_string();
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    let mut serve = serve;
    let t = Instant::now();
    let status = loop {
        if let Some(s) = serve.0.try_wait().unwrap() {
            break s;
        }
        assert!(
            t.elapsed() < Duration::from_secs(20),
            "rzts serve did not stop"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "{status:?}");

    let logs = rzts(d, &["logs"]);
    let deny = logs
        .lines()
        .find(|l| l.contains("deepseek.com:80"))
        .unwrap_or_else(|| panic!("no record of the denial: {logs}"));
    assert!(deny.contains("\tdeny\t"), "{deny}");
    assert!(deny.contains("deny.matched"), "{deny}");
    assert!(
        deny.contains("deepseek.com またはそのサブドメイン"),
        "{deny}"
    );
    assert!(
        logs.lines()
            .any(|l| l.contains(&format!("localhost:{web}")) && l.contains("\tallow\t")),
        "{logs}"
    );
}
