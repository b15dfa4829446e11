//! The SOCKS5 gateway (`pep-socks`) against direct loopback TCP and against Dante
//! (`sockd`/`danted`, Debian package `dante-server`), side by side in one run.
//!
//! Everything is on loopback. A local server answers every connection: the bulk
//! server writes N bytes (from one reused buffer) and closes, the connect server
//! writes 1 byte and closes. Three ways to reach it:
//!
//! - `direct`: plain TCP to the server;
//! - `rzts`: through the gateway, started as `rzts serve` mounts it, with the real
//!   decision server in this process (SQLite store in a temporary directory, the
//!   signed bundle, log ingest; the setup of the gateway tests,
//!   `pep-socks/tests/support`). SOCKS5 hostname request for `localhost:PORT` with
//!   RFC 1929 user `tanaka` and his proxy token: login (cached), DNS, the local
//!   decision, the access record queued for the log, connect, relay;
//! - `dante`: through Dante 1.4, started here as a child process with a generated
//!   configuration in a temporary directory, **without authentication**
//!   (`socksmethod: none`: Dante's username method checks system accounts), which
//!   favours it; same hostname request.
//!
//! Groups:
//!
//! 1. `socks_bulk/{direct,rzts,dante}`: one connection reading N bytes to EOF
//!    (`Throughput::Bytes`). Goal: rzts ≥ 90 % of direct and ≥ Dante. A fourth,
//!    diagnostic row, `socks_bulk/tcp_forward`, goes through a bare TCP port
//!    forwarder (tokio `copy_bidirectional_with_sizes`, 64 KiB buffers, no SOCKS):
//!    the ceiling for any user-space relay hop on this machine.
//! 2. `socks_connect/{direct,rzts,dante}`: a new connection, the SOCKS5 handshake
//!    and the first byte from the server. Goal: rzts ≥ Dante.
//!
//! The servers (local server, gateway, decision server) run on one tokio runtime
//! with `RZTS_BENCH_SERVER_THREADS` workers (default 2); the client runs on the
//! bench thread (a current-thread runtime). Knobs: `RZTS_SOCKS_BULK_MIB` (bulk size
//! per connection, default 64), `RZTS_SOCKS_BULK_SECS` (measurement time of the bulk
//! group, default 8), `RZTS_SOCKS_CONNECT_SECS` (default 5), `RZTS_SOCKS_DANTE`
//! (path of the Dante binary; default: `sockd` or `danted` on `PATH` or in
//! `/usr/sbin`). Without Dante the bench panics: run `scripts/bench_deps.sh`.
//!
//! `CARGO_TARGET_DIR=/tmp/bench-target cargo bench -p rzts-benches --bench socks`

#[path = "../../pep-socks/tests/support/mod.rs"]
mod support;

use std::net::SocketAddr;
use std::path::PathBuf;

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tempfile::TempDir;

use criterion::{criterion_group, criterion_main, Criterion, SamplingMode, Throughput};
use pep_socks::SocksConfig;
use support::{socks5_connect, Env, POLICY, TANAKA};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::runtime::Runtime;

/// Client read buffer (the same for the three variants).
const READ_BUF: usize = 64 * 1024;

fn env_u64(name: &str, default: u64) -> u64 {
    match std::env::var(name) {
        Ok(v) => v
            .parse()
            .unwrap_or_else(|_| panic!("{name}={v:?} is not a whole number")),
        Err(_) => default,
    }
}

// ---------------------------------------------------------------------------
// Local servers

/// On each connection writes `len` bytes (from one shared buffer), then closes.
async fn bulk_server(len: u64) -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let chunk: Arc<Vec<u8>> = Arc::new((0..1024 * 1024).map(|i| (i % 251) as u8).collect());
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            let chunk = chunk.clone();
            tokio::spawn(async move {
                let _ = s.set_nodelay(true);
                let mut left = len;
                while left > 0 {
                    let n = usize::try_from(left.min(chunk.len() as u64)).unwrap();
                    if s.write_all(&chunk[..n]).await.is_err() {
                        return;
                    }
                    left -= n as u64;
                }
                let _ = s.shutdown().await;
            });
        }
    });
    addr
}

/// On each connection writes 1 byte, then closes.
async fn first_byte_server() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            tokio::spawn(async move {
                let _ = s.set_nodelay(true);
                let _ = s.write_all(b"!").await;
                let _ = s.shutdown().await;
            });
        }
    });
    addr
}

/// A bare TCP port forwarder to `target`: tokio's `copy_bidirectional_with_sizes`
/// with 64 KiB buffers, as pep-socks/src/relay.rs, but no SOCKS, no decision, no
/// activity mark. Diagnostic only: the cost of one user-space relay hop.
async fn forwarder(target: SocketAddr) -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut c, _)) = l.accept().await {
            tokio::spawn(async move {
                let Ok(mut u) = TcpStream::connect(target).await else {
                    return;
                };
                let _ = c.set_nodelay(true);
                let _ = u.set_nodelay(true);
                let _ =
                    tokio::io::copy_bidirectional_with_sizes(&mut c, &mut u, 65536, 65536).await;
            });
        }
    });
    addr
}

// ---------------------------------------------------------------------------
// Dante, as a child process

struct Dante {
    child: Child,
    addr: SocketAddr,
    dir: TempDir,
}

fn dante_binary() -> PathBuf {
    if let Ok(p) = std::env::var("RZTS_SOCKS_DANTE") {
        return PathBuf::from(p);
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    let mut dirs: Vec<PathBuf> = std::env::split_paths(&path).collect();
    dirs.push("/usr/sbin".into());
    dirs.push("/usr/local/sbin".into());
    for name in ["sockd", "danted"] {
        for d in &dirs {
            let p = d.join(name);
            if p.is_file() {
                return p;
            }
        }
    }
    panic!(
        "Dante is not installed (neither `sockd` nor `danted` on PATH or in /usr/sbin): \
         run `bash scripts/bench_deps.sh` (apt-get install -y dante-server), \
         or set RZTS_SOCKS_DANTE to its path"
    );
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Dante {
    fn start() -> Dante {
        let bin = dante_binary();
        let dir = tempfile::Builder::new()
            .prefix("rzts-socks-bench-dante-")
            .tempdir()
            .unwrap();
        let port = free_port();
        let log = dir.path().join("sockd.log");
        // As root Dante wants the ids it switches to; otherwise it runs as is.
        // SAFETY: geteuid(2) has no preconditions and cannot fail.
        let users = if unsafe { libc::geteuid() } == 0 {
            "user.privileged: root\nuser.unprivileged: nobody\n"
        } else {
            ""
        };
        let conf = format!(
            "logoutput: {log}\n\
             internal: 127.0.0.1 port = {port}\n\
             external: 127.0.0.1\n\
             clientmethod: none\n\
             socksmethod: none\n\
             {users}\
             client pass {{\n  from: 127.0.0.0/8 to: 0.0.0.0/0\n  log: error\n}}\n\
             socks pass {{\n  from: 127.0.0.0/8 to: 0.0.0.0/0\n  command: connect\n  log: error\n}}\n",
            log = log.display(),
        );
        let conf_path = dir.path().join("sockd.conf");
        std::fs::write(&conf_path, conf).unwrap();
        let child = Command::new(&bin)
            .arg("-f")
            .arg(&conf_path)
            .arg("-p")
            .arg(dir.path().join("sockd.pid"))
            .args(["-N", "1"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(
                std::fs::File::create(dir.path().join("stderr.log")).unwrap(),
            ))
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start Dante ({}): {e}", bin.display()));
        let mut dante = Dante {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            dir,
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(status) = dante.child.try_wait().unwrap() {
                panic!(
                    "Dante ({}) exited with {status} before accepting on {}:\n{}",
                    bin.display(),
                    dante.addr,
                    dante.logs()
                );
            }
            if std::net::TcpStream::connect(dante.addr).is_ok() {
                break;
            }
            if Instant::now() > deadline {
                panic!(
                    "Dante ({}) does not accept on {} after 10 s:\n{}",
                    bin.display(),
                    dante.addr,
                    dante.logs()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        eprintln!("Dante ({}) listening on {}", bin.display(), dante.addr);
        dante
    }

    fn logs(&self) -> String {
        let read = |f: &str| std::fs::read_to_string(self.dir.path().join(f)).unwrap_or_default();
        format!(
            "--- stderr ---\n{}\n--- log ---\n{}",
            read("stderr.log"),
            read("sockd.log")
        )
    }
}

impl Drop for Dante {
    fn drop(&mut self) {
        // SIGTERM lets Dante's main process stop its children too.
        let pid = libc::pid_t::try_from(self.child.id()).unwrap();
        // SAFETY: kill(2) on our own child's pid.
        unsafe {
            libc::kill(pid, libc::SIGTERM);
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// ---------------------------------------------------------------------------
// The client

/// How a connection reaches the local server.
#[derive(Clone, Copy)]
enum Via {
    Direct,
    /// Plain TCP to a forwarder (which knows the target).
    Forward(SocketAddr),
    /// SOCKS5 proxy, with RFC 1929 credentials or none.
    Socks(SocketAddr, Option<(&'static str, &'static str)>),
}

/// Opens a connection to `localhost:target.port()` as `via` says: for a proxy, a
/// SOCKS5 CONNECT with a hostname request, one step at a time as curl does.
async fn open(via: Via, target: SocketAddr) -> TcpStream {
    let (proxy, auth) = match via {
        Via::Direct => {
            let s = TcpStream::connect(target).await.expect("direct connect");
            s.set_nodelay(true).unwrap();
            return s;
        }
        Via::Forward(fwd) => {
            let s = TcpStream::connect(fwd)
                .await
                .expect("connect to the forwarder");
            s.set_nodelay(true).unwrap();
            return s;
        }
        Via::Socks(proxy, auth) => (proxy, auth),
    };
    socks5_connect(proxy, auth, target)
        .await
        .unwrap_or_else(|code| {
            panic!(
                "SOCKS5 CONNECT to localhost:{} refused by {proxy} (reply {code:#04x})",
                target.port()
            )
        })
}

/// One bulk transfer: connect, read to EOF; returns the bytes read.
async fn bulk_once(via: Via, target: SocketAddr, buf: &mut [u8]) -> u64 {
    let mut s = open(via, target).await;
    let mut total = 0u64;
    loop {
        match s.read(buf).await {
            Ok(0) => return total,
            Ok(n) => total += n as u64,
            Err(e) => panic!("bulk read after {total} bytes: {e}"),
        }
    }
}

/// Connect, handshake, first byte.
async fn first_byte_once(via: Via, target: SocketAddr) {
    let mut s = open(via, target).await;
    let mut b = [0u8; 1];
    s.read_exact(&mut b)
        .await
        .unwrap_or_else(|e| panic!("first byte: {e}"));
    assert_eq!(b, *b"!");
}

// ---------------------------------------------------------------------------
// The bench

fn bench_socks(c: &mut Criterion) {
    let bulk_mib = env_u64("RZTS_SOCKS_BULK_MIB", 64);
    assert!(bulk_mib > 0, "RZTS_SOCKS_BULK_MIB must be at least 1");
    let bulk_len = bulk_mib * 1024 * 1024;
    let bulk_secs = env_u64("RZTS_SOCKS_BULK_SECS", 8);
    let connect_secs = env_u64("RZTS_SOCKS_CONNECT_SECS", 5);
    let threads = usize::try_from(env_u64("RZTS_BENCH_SERVER_THREADS", 2)).unwrap();

    let servers: Runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .enable_all()
        .build()
        .unwrap();
    let client = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();

    let dante = Dante::start();
    let (bulk_addr, first_addr, rzts) = servers.block_on(async {
        (
            bulk_server(bulk_len).await,
            first_byte_server().await,
            // The gateway with its defaults (as `rzts serve` with only `listen` set)
            // and the server's.
            Env::start(
                POLICY,
                SocksConfig {
                    listen: "127.0.0.1:0".parse().unwrap(),
                    ..SocksConfig::default()
                },
                |_| {},
            )
            .await,
        )
    });
    let forward = Via::Forward(servers.block_on(forwarder(bulk_addr)));
    let variants = [
        ("direct", Via::Direct),
        ("rzts", Via::Socks(rzts.gw(), TANAKA)),
        ("dante", Via::Socks(dante.addr, None)),
    ];
    eprintln!(
        "SOCKS5 bench: bulk {bulk_mib} MiB per connection; gateway {}, Dante {} \
         (no auth); {threads} server worker threads",
        rzts.gw(),
        dante.addr
    );

    // Every variant works (and the rzts login is cached) before anything is timed.
    let mut buf = vec![0u8; READ_BUF];
    for (name, via) in variants {
        client.block_on(async {
            first_byte_once(via, first_addr).await;
            let got = bulk_once(via, bulk_addr, &mut buf).await;
            assert_eq!(got, bulk_len, "{name}: short bulk transfer");
        });
    }
    let got = client.block_on(bulk_once(forward, bulk_addr, &mut buf));
    assert_eq!(got, bulk_len, "tcp_forward: short bulk transfer");

    let mut g = c.benchmark_group("socks_bulk");
    g.throughput(Throughput::Bytes(bulk_len))
        .sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_secs(2))
        .measurement_time(Duration::from_secs(bulk_secs));
    // The three compared, then the diagnostic floor of one relay hop.
    for (name, via) in variants.into_iter().chain([("tcp_forward", forward)]) {
        g.bench_function(name, |b| {
            b.iter_custom(|iters| {
                client.block_on(async {
                    let start = Instant::now();
                    for _ in 0..iters {
                        let got = bulk_once(via, bulk_addr, &mut buf).await;
                        assert_eq!(got, bulk_len, "{name}: short bulk transfer");
                    }
                    start.elapsed()
                })
            });
        });
    }
    g.finish();

    let mut g = c.benchmark_group("socks_connect");
    g.throughput(Throughput::Elements(1))
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(connect_secs));
    for (name, via) in variants {
        g.bench_function(name, |b| {
            b.iter_custom(|iters| {
                client.block_on(async {
                    let start = Instant::now();
                    for _ in 0..iters {
                        first_byte_once(via, first_addr).await;
                    }
                    start.elapsed()
                })
            });
        });
    }
    g.finish();

    servers.block_on(rzts.stop());
    drop(dante);
}

criterion_group!(benches, bench_socks);
criterion_main!(benches);
