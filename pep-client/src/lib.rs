//! # pep-client
//!
//! What every RZTS enforcement point (PEP) shares, so that the SOCKS gateway, the
//! SAML proxy and the tunnel edge hold one copy of each idea:
//!
//! - [`policy::PolicyClient`]: local decisions from the server's signed policy
//!   bundle ([`bundle`] verifies it), following updates by long poll;
//! - [`subject::SubjectClient`]: the credential check and the directory's view of
//!   the user (groups, device, source country), cached briefly;
//! - [`log::LogClient`]: access records shipped to the server's log store in
//!   batches, retried, spooled at shutdown, never dropped.
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use pep_client::{pdp::Pdp, policy::PolicyClient, subject::SubjectClient};
//! use policy_core::decision::Authentication;
//!
//! let pdp = Pdp::new("http://127.0.0.1:8080", "the-pep-token")?;
//! let (_stop_tx, stop) = tokio::sync::watch::channel(false);
//! let server_key = [0u8; 32]; // the server's bundle key, configured out of band
//! let (policy, _task) = PolicyClient::follow(pdp.clone(), server_key, stop);
//! let subjects = SubjectClient::new(pdp, std::time::Duration::from_secs(30));
//! let subject = subjects.login("tanaka", "proxy-token", None).await?;
//! let mut request = subject.request();
//! request.destination.domain = Some("example.com".parse()?);
//! let decision = policy.decide("internet", &mut request, Authentication::Authenticated);
//! println!("{:?}", decision.effect);
//! # Ok(()) }
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod bundle;
pub mod log;
pub mod login;
pub mod pdp;
pub mod policy;
pub mod record;
pub mod subject;

use std::path::PathBuf;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;

/// The three clients an enforcement point uses, started together against one
/// decision server. Cheap to clone; every PEP of a process shares one set.
#[derive(Debug, Clone)]
pub struct PepClients {
    /// Local decisions from the signed bundle.
    pub policy: policy::PolicyClient,
    /// The credential check.
    pub subjects: subject::SubjectClient,
    /// Access records to the decision server.
    pub log: log::LogClient,
}

/// How [`PepClients::start`] connects.
#[derive(Debug, Clone)]
pub struct PepOptions {
    /// The decision server, e.g. `http://127.0.0.1:8080`.
    pub pdp_url: String,
    /// The server's `pep_token`.
    pub pep_token: String,
    /// The server's bundle public key (ed25519, 32 bytes).
    pub bundle_key: [u8; 32],
    /// How long credential checks are reused.
    pub login_cache: Duration,
    /// Where unsent access records wait across restarts.
    pub log_spool: Option<PathBuf>,
}

/// The background tasks behind a [`PepClients`]; stop them with
/// [`PepTasks::shutdown`] after the enforcement points have stopped.
#[derive(Debug)]
pub struct PepTasks {
    stop: watch::Sender<bool>,
    follower: JoinHandle<()>,
    shipper: log::LogShipper,
}

/// The clients could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The server address or HTTP client is unusable.
    #[error(transparent)]
    Pdp(#[from] pdp::PdpError),
    /// The log spool could not be read.
    #[error(transparent)]
    Log(#[from] log::LogError),
}

impl PepClients {
    /// Starts the bundle follower and the log shipper.
    pub fn start(options: PepOptions) -> Result<(PepClients, PepTasks), StartError> {
        let pdp = pdp::Pdp::new(&options.pdp_url, &options.pep_token)?;
        let (stop, stop_rx) = watch::channel(false);
        let (policy, follower) =
            policy::PolicyClient::follow(pdp.clone(), options.bundle_key, stop_rx);
        let subjects = subject::SubjectClient::new(pdp.clone(), options.login_cache);
        let (log, shipper) = log::LogClient::start(
            pdp,
            log::LogOptions {
                spool: options.log_spool,
                ..log::LogOptions::default()
            },
        )?;
        Ok((
            PepClients {
                policy,
                subjects,
                log,
            },
            PepTasks {
                stop,
                follower,
                shipper,
            },
        ))
    }
}

impl PepTasks {
    /// Stops following the bundle and sends every queued access record (spooling
    /// what the server cannot take).
    pub async fn shutdown(self) -> log::ShutdownReport {
        let _ = self.stop.send(true);
        let _ = self.follower.await;
        self.shipper.shutdown().await
    }
}
