//! The listener: accepts clients, tells SOCKS from HTTP (the PAC file) by the
//! first byte, enforces the global connection limit, and stops cleanly.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use pep_client::policy::no_policy;
use policy_core::context::Request;
use policy_core::decision::{Authentication, Decision};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinHandle;

use crate::config::SocksConfig;
use crate::limits::UserLimits;

/// The clients every enforcement point shares.
pub use pep_client::PepClients as Clients;

/// The gateway could not start.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    /// A setting cannot work.
    #[error("{0}")]
    Config(String),
    /// The listen address could not be bound.
    #[error("SOCKS gateway cannot listen on {addr}: {why}")]
    Listen {
        /// The address.
        addr: SocketAddr,
        /// The OS error.
        why: String,
    },
}

/// What every session reads.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) config: SocksConfig,
    pub(crate) clients: Clients,
    pub(crate) limits: Arc<UserLimits>,
}

impl Shared {
    /// Decides `req` with the rules in force, for the gateway's app (filling in
    /// `destination.app` and `time`). App and rules come from one snapshot, so a
    /// bundle update between the two cannot mix versions.
    pub(crate) fn decide(&self, req: &mut Request) -> Decision {
        let Some(snapshot) = self.clients.policy.snapshot() else {
            return no_policy();
        };
        match crate::session::gateway_app(self.config.app.as_deref(), &snapshot.rules) {
            Ok(app) => snapshot.decide(app, req, Authentication::Authenticated),
            Err(denial) => denial,
        }
    }
}

/// The SOCKS5 gateway.
#[derive(Debug)]
pub struct Gateway;

/// A started gateway.
#[derive(Debug)]
pub struct RunningGateway {
    addr: SocketAddr,
    shutdown: watch::Sender<bool>,
    accept: JoinHandle<()>,
}

impl Gateway {
    /// Binds `config.listen` and starts accepting.
    pub async fn start(
        config: SocksConfig,
        clients: Clients,
    ) -> Result<RunningGateway, GatewayError> {
        config.validate().map_err(GatewayError::Config)?;
        let listener =
            TcpListener::bind(config.listen)
                .await
                .map_err(|e| GatewayError::Listen {
                    addr: config.listen,
                    why: e.to_string(),
                })?;
        let addr = listener.local_addr().map_err(|e| GatewayError::Listen {
            addr: config.listen,
            why: e.to_string(),
        })?;
        let public = config
            .public_address
            .clone()
            .unwrap_or_else(|| addr.to_string());
        let pac = Bytes::from(crate::pac::render(&public, &config.pac_direct));
        let (shutdown, rx) = watch::channel(false);
        let shared = Arc::new(Shared {
            limits: UserLimits::new(config.max_connections_per_user),
            config,
            clients,
        });
        let accept = tokio::spawn(accept_loop(listener, shared, pac, rx));
        tracing::info!(%addr, "RZTS SOCKS5 gateway listening");
        Ok(RunningGateway {
            addr,
            shutdown,
            accept,
        })
    }
}

impl RunningGateway {
    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops accepting and ends every session (handshakes and relays). Access
    /// records are already queued on the log client, whose owner flushes it.
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(true);
        let _ = self.accept.await;
    }
}

async fn accept_loop(
    listener: TcpListener,
    shared: Arc<Shared>,
    pac: Bytes,
    mut shutdown: watch::Receiver<bool>,
) {
    let permits = Arc::new(Semaphore::new(shared.config.max_connections));
    let mut sessions = tokio::task::JoinSet::new();
    loop {
        let accepted = tokio::select! {
            r = listener.accept() => r,
            _ = shutdown.changed() => break,
            // Reap finished sessions so the set does not grow.
            Some(_) = sessions.join_next(), if !sessions.is_empty() => continue,
        };
        let (stream, peer) = match accepted {
            Ok(v) => v,
            Err(e) => {
                // Out of file descriptors and the like: pause instead of spinning.
                tracing::warn!(error = %e, "SOCKS accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            tracing::warn!(%peer, "SOCKS connection limit reached; closing");
            continue;
        };
        let (shared, pac, rx) = (shared.clone(), pac.clone(), shutdown.clone());
        sessions.spawn(async move {
            serve(shared, stream, peer, pac, rx).await;
            drop(permit);
        });
    }
    sessions.shutdown().await;
}

async fn serve(
    shared: Arc<Shared>,
    stream: TcpStream,
    peer: SocketAddr,
    pac: Bytes,
    shutdown: watch::Receiver<bool>,
) {
    let mut first = [0u8; 1];
    let peeked =
        tokio::time::timeout(shared.config.handshake_timeout(), stream.peek(&mut first)).await;
    if !matches!(peeked, Ok(Ok(1))) {
        return;
    }
    match first[0] {
        5 => crate::session::run(shared, stream, peer, shutdown).await,
        b'G' | b'H' | b'P' | b'O' | b'D' => {
            let _ = tokio::time::timeout(
                shared.config.handshake_timeout(),
                crate::pac::serve(stream, pac),
            )
            .await;
        }
        // SOCKS4 and anything else: close without an answer.
        other => tracing::debug!(%peer, first = other, "not SOCKS5 or HTTP; closing"),
    }
}
