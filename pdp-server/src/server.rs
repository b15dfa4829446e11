//! The server process: opens the store, compiles the policy, starts the log writer,
//! the policy watcher and the HTTP listener, and shuts them down in order.
//!
//! ```no_run
//! # async fn demo() -> Result<(), pdp_server::server::ServerError> {
//! use pdp_server::{config::ServerConfig, server::Server};
//! let mut config = ServerConfig::embedded_default();
//! config.listen = "127.0.0.1:0".parse().unwrap();
//! let running = Server::start(config).await?;
//! println!("listening on {}", running.url());
//! running.shutdown().await?;
//! # Ok(()) }
//! ```

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::alert::SmtpConfig;
use crate::bundle::Signer;
use crate::config::{ConfigError, ServerConfig};
use crate::enrich::Enricher;
use crate::geoip::GeoIp;
use crate::logwriter::LogWriter;
use crate::metrics::Metrics;
use crate::reload::PolicyManager;
use crate::store::Store;

/// Why the server could not start or stop cleanly.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The configuration is unusable.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The store could not be opened.
    #[error("ストアを開けません ({url}): {why}")]
    Store {
        /// The store URL, without any password.
        url: String,
        /// Why.
        why: String,
    },
    /// The policy does not compile at start (there are no last good rules yet).
    #[error("ポリシーを読み込めません ({path}): {why}")]
    Policy {
        /// The policy file.
        path: String,
        /// Every problem.
        why: String,
    },
    /// The signing key could not be loaded or created.
    #[error(transparent)]
    Key(#[from] crate::bundle::BundleError),
    /// The GeoIP database could not be read.
    #[error(transparent)]
    GeoIp(#[from] crate::geoip::GeoIpError),
    /// A file or socket operation failed.
    #[error("{what}: {why}")]
    Io {
        /// What was being done.
        what: String,
        /// The OS error.
        why: String,
    },
}

fn io_err(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> ServerError {
    let what = what.into();
    move |e| ServerError::Io {
        what,
        why: e.to_string(),
    }
}

/// Everything a request handler needs.
pub struct AppState {
    /// The configuration in force.
    pub config: ServerConfig,
    /// The store.
    pub store: Arc<dyn Store>,
    /// The policy in force and its bundle.
    pub policy: Arc<PolicyManager>,
    /// The access-log writer.
    pub log: LogWriter,
    /// Context enrichment (directory cache, GeoIP, detector).
    pub enricher: Enricher,
    /// Alert mail settings.
    pub smtp: Option<SmtpConfig>,
    /// Counters for `/metrics`.
    pub metrics: Arc<Metrics>,
    /// SHA-256 of the admin token (compared in constant time).
    pub admin_token_sha256: [u8; 32],
    /// SHA-256 of the enforcement-point token.
    pub pep_token_sha256: [u8; 32],
    /// Turns true when the server is shutting down (ends long polls).
    pub shutdown: watch::Receiver<bool>,
    /// When the server started.
    pub started: Instant,
    /// `sqlite` or `postgres` (the URL itself may hold a password).
    pub store_kind: &'static str,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("store_kind", &self.store_kind)
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

/// Where the admin token came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenSource {
    /// The configuration file.
    Config,
    /// The token file in the data directory.
    File(PathBuf),
    /// Generated now and saved to this file.
    Generated(PathBuf),
}

/// The server entry point.
#[derive(Debug)]
pub struct Server;

/// A started server.
pub struct RunningServer {
    addr: SocketAddr,
    admin_token: String,
    pep_token: String,
    token_source: TokenSource,
    key_generated: bool,
    state: Arc<AppState>,
    shutdown_tx: watch::Sender<bool>,
    accept: JoinHandle<()>,
    reload: JoinHandle<()>,
    log_join: JoinHandle<()>,
}

impl std::fmt::Debug for RunningServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunningServer")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

fn store_kind(url: &str) -> &'static str {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        "postgres"
    } else {
        "sqlite"
    }
}

/// The store URL with any password replaced, for messages.
fn redact(url: &str) -> String {
    if let Some((scheme, rest)) = url.split_once("://") {
        if let Some((cred, host)) = rest.split_once('@') {
            if let Some((user, _)) = cred.split_once(':') {
                return format!("{scheme}://{user}:***@{host}");
            }
        }
    }
    url.to_string()
}

/// A bearer token: configured, read from its file, or generated into it.
fn load_token(
    configured: Option<&String>,
    path: PathBuf,
    what: &str,
) -> Result<(String, TokenSource), ServerError> {
    if let Some(t) = configured {
        return Ok((t.trim().to_string(), TokenSource::Config));
    }
    match std::fs::read_to_string(&path) {
        Ok(t) if t.trim().len() >= 16 => Ok((t.trim().to_string(), TokenSource::File(path))),
        Ok(_) => Err(ServerError::Io {
            what: path.display().to_string(),
            why: format!("{what} file is empty or too short (16 characters at least)"),
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let t =
                crate::config::random_token().map_err(io_err(format!("generating the {what}")))?;
            crate::config::write_secret_file(&path, format!("{t}\n").as_bytes())
                .map_err(io_err(path.display().to_string()))?;
            Ok((t, TokenSource::Generated(path)))
        }
        Err(e) => Err(io_err(path.display().to_string())(e)),
    }
}

/// The policy file to use: the configured one, or for the default path when it is
/// missing, the embedded sample written to the data directory.
fn policy_path(config: &ServerConfig) -> Result<PathBuf, ServerError> {
    if config.policy.exists()
        || config.policy != std::path::Path::new(crate::config::DEFAULT_POLICY)
    {
        return Ok(config.policy.clone());
    }
    let p = config.data_dir.join("policies.toml");
    if !p.exists() {
        std::fs::write(&p, crate::config::SAMPLE_POLICY)
            .map_err(io_err(p.display().to_string()))?;
        tracing::info!(path = %p.display(), "no policy file; wrote the sample policy");
    }
    Ok(p)
}

impl Server {
    /// Starts the server on the current tokio runtime and returns once it listens.
    pub async fn start(config: ServerConfig) -> Result<RunningServer, ServerError> {
        config.validate()?;
        std::fs::create_dir_all(&config.data_dir)
            .map_err(io_err(format!("creating {}", config.data_dir.display())))?;
        let url = config.store_url();
        let open_url = url.clone();
        let store = tokio::task::spawn_blocking(move || crate::store::open(&open_url))
            .await
            .map_err(|e| ServerError::Store {
                url: redact(&url),
                why: e.to_string(),
            })?
            .map_err(|e| ServerError::Store {
                url: redact(&url),
                why: e.to_string(),
            })?;
        Server::start_with_store(config, store).await
    }

    /// Starts the server with a store opened by the caller (the configured store
    /// URL is then only shown, not opened). For embedding and tests.
    pub async fn start_with_store(
        config: ServerConfig,
        store: Arc<dyn Store>,
    ) -> Result<RunningServer, ServerError> {
        config.validate()?;
        std::fs::create_dir_all(&config.data_dir)
            .map_err(io_err(format!("creating {}", config.data_dir.display())))?;
        let (token, token_source) = load_token(
            config.admin_token.as_ref(),
            config.admin_token_path(),
            "admin token",
        )?;
        let (pep_token, _) = load_token(
            config.pep_token.as_ref(),
            config.pep_token_path(),
            "pep token",
        )?;
        let (signer, key_generated) = Signer::load_or_generate(&config.signing_key_path())?;
        let signer = Arc::new(signer);

        let policy_file = policy_path(&config)?;
        let state_path = config.data_dir.join("bundle_state.json");
        let pf = policy_file.clone();
        let manager =
            tokio::task::spawn_blocking(move || PolicyManager::load(&pf, &state_path, signer))
                .await
                .map_err(|e| ServerError::Policy {
                    path: policy_file.display().to_string(),
                    why: e.to_string(),
                })?
                .map_err(|f| ServerError::Policy {
                    path: policy_file.display().to_string(),
                    why: f.to_string(),
                })?;
        let manager = Arc::new(manager);

        let geoip = match config.geoip_path() {
            Some(p) => Some(GeoIp::open(p)?),
            None => None,
        };
        let metrics = Arc::new(Metrics::default());
        metrics
            .bundle_version
            .store(manager.current().version, Ordering::Relaxed);
        let (log, log_join) = LogWriter::spawn_journaled(
            store.clone(),
            &config.access_journal_path(),
            config.log_batch_max,
            Some(metrics.clone()),
        )
        .await
        .map_err(|e| ServerError::Io {
            what: "access log".into(),
            why: e.to_string(),
        })?;
        let enricher = Enricher::new(
            store.clone(),
            Duration::from_millis(config.cache_ttl_ms),
            geoip,
            crate::detector::Detector::new(config.detector.clone()),
            metrics.clone(),
        );

        let listener = TcpListener::bind(config.listen)
            .await
            .map_err(io_err(format!("listening on {}", config.listen)))?;
        let addr = listener
            .local_addr()
            .map_err(io_err("reading the listen address"))?;
        let (shutdown_tx, shutdown_rx) = watch::channel(false);
        let mut config = config;
        if config.devices.attestation_origins.is_empty() {
            config.devices.attestation_origins = vec![format!("http://{addr}")];
        }
        use sha2::Digest as _;
        let state = Arc::new(AppState {
            smtp: config.smtp.clone(),
            store_kind: store_kind(&config.store_url()),
            config,
            store,
            policy: manager.clone(),
            log,
            enricher,
            metrics: metrics.clone(),
            admin_token_sha256: sha2::Sha256::digest(token.as_bytes()).into(),
            pep_token_sha256: sha2::Sha256::digest(pep_token.as_bytes()).into(),
            shutdown: shutdown_rx.clone(),
            started: Instant::now(),
        });
        let reload = tokio::spawn(crate::reload::watch_loop(
            manager,
            metrics,
            Duration::from_millis(state.config.reload_interval_ms),
            shutdown_rx.clone(),
        ));
        let accept = tokio::spawn(accept_loop(listener, state.clone(), shutdown_rx));
        tracing::info!(%addr, "RZTS decision server listening");
        Ok(RunningServer {
            addr,
            admin_token: token,
            pep_token,
            token_source,
            key_generated,
            state,
            shutdown_tx,
            accept,
            reload,
            log_join,
        })
    }
}

async fn accept_loop(
    listener: TcpListener,
    state: Arc<AppState>,
    mut shutdown: watch::Receiver<bool>,
) {
    let graceful = GracefulShutdown::new();
    loop {
        let (stream, _peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    // Out of file descriptors and the like: back off, keep serving.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = shutdown.changed() => break,
        };
        let _ = stream.set_nodelay(true);
        let st = state.clone();
        let svc = service_fn(move |req| crate::api::handle(st.clone(), req));
        let conn = http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(Duration::from_secs(30))
            .keep_alive(true)
            .serve_connection(TokioIo::new(stream), svc);
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "connection ended with an error");
            }
        });
    }
    drop(listener);
    tokio::select! {
        _ = graceful.shutdown() => {}
        _ = tokio::time::sleep(Duration::from_secs(10)) => {
            tracing::warn!("connections still open after 10 s; closing anyway");
        }
    }
}

impl RunningServer {
    /// The address the HTTP API listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://ADDR`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The admin API's bearer token.
    pub fn admin_token(&self) -> &str {
        &self.admin_token
    }

    /// The token of enforcement points (`/v1/pep/*`), for PEPs mounted in this
    /// process.
    pub fn pep_token(&self) -> &str {
        &self.pep_token
    }

    /// The public key that verifies this server's policy bundles.
    pub fn bundle_public_key(&self) -> [u8; 32] {
        self.state.policy.signer().public_key()
    }

    /// Where the admin token came from.
    pub fn token_source(&self) -> &TokenSource {
        &self.token_source
    }

    /// The shared state (store, policy, metrics), for tests and embedding PEPs.
    pub fn state(&self) -> &Arc<AppState> {
        &self.state
    }

    /// The store.
    pub fn store(&self) -> Arc<dyn Store> {
        self.state.store.clone()
    }

    /// A human-readable summary of where everything is, as `rzts serve` prints it.
    pub fn summary(&self) -> String {
        let c = &self.state.config;
        let p = self.state.policy.current();
        let base = self.url();
        let mut s = format!(
            "RZTS decision server listening on {base}\n\
             \x20 decisions   POST {base}/v1/decide\n\
             \x20 bundle      GET  {base}/v1/bundle  (public key: {base}/v1/bundle/key, key id {})\n\
             \x20 admin API   {base}/v1/admin/...  (Authorization: Bearer <admin token>)\n\
             \x20 logs        GET  {base}/v1/logs  and  {base}/v1/logs/export\n\
             \x20 status      GET  {base}/v1/status   metrics: {base}/metrics\n\
             \x20 policy      {} ({} apps, bundle version {}; reloaded on change)\n\
             \x20 store       {} ({})\n\
             \x20 data dir    {}\n\
             \x20 geoip       {}\n\
             \x20 alert mail  {}\n",
            self.state.policy.signer().key_id(),
            self.state.policy.policy_path().display(),
            p.compiled.apps.len(),
            p.version,
            redact(&c.store_url()),
            self.state.store_kind,
            c.data_dir.display(),
            self.state
                .enricher
                .geoip()
                .map_or_else(|| "off".to_string(), |g| g.path().display().to_string()),
            self.state
                .smtp
                .as_ref()
                .map_or_else(|| "off".to_string(), |m| format!("{}:{}", m.host, m.port)),
        );
        match &self.token_source {
            TokenSource::Config => s.push_str("  admin token from the configuration file\n"),
            TokenSource::File(p) => {
                s.push_str(&format!("  admin token in {}\n", p.display()));
            }
            TokenSource::Generated(p) => s.push_str(&format!(
                "  admin token (generated, shown once, saved in {}): {}\n",
                p.display(),
                self.admin_token
            )),
        }
        if self.key_generated {
            s.push_str(&format!(
                "  bundle signing key generated: {}\n",
                c.signing_key_path().display()
            ));
        }
        s
    }

    /// Stops accepting, lets open requests finish (at most 10 s), commits the
    /// queued access records and stops the background tasks.
    pub async fn shutdown(self) -> Result<(), ServerError> {
        let _ = self.shutdown_tx.send(true);
        let _ = self.accept.await;
        let _ = self.reload.await;
        self.state.log.close().await;
        let _ = self.log_join.await;
        tracing::info!("RZTS decision server stopped");
        Ok(())
    }
}

/// Installs a `tracing` subscriber (level from `RUST_LOG`, default `info`); does
/// nothing when one is installed already.
pub fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
}

/// Waits for SIGINT (Ctrl-C) or SIGTERM.
pub async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}
