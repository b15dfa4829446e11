//! Local decisions from the signed policy bundle, following the server's updates.
//!
//! [`PolicyClient`] holds the rules of the newest bundle that verified under the
//! server's public key. A background task long-polls `GET /v1/bundle?wait=` and
//! swaps in each new version; a bundle that fails verification is ignored (the last
//! good rules stay) and logged. Before the first bundle arrives every decision is a
//! denial with the reason `pep.no_policy`: an enforcement point never allows
//! without rules.

use std::sync::Arc;
use std::time::Duration;

use policy_core::context::Request;
use policy_core::decision::{Authentication, Decision, Effect, Reason};
use policy_core::lock::CompiledPolicy;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::bundle::{verify_bundle, BundleError};
use crate::pdp::{Pdp, PdpError};

/// The rules in force, from one verified bundle.
#[derive(Debug)]
pub struct PolicySnapshot {
    /// The bundle version.
    pub version: u64,
    /// The compiled rules.
    pub rules: CompiledPolicy,
}

/// Why a bundle could not be taken.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    /// The server could not be asked.
    #[error(transparent)]
    Pdp(#[from] PdpError),
    /// The bundle did not verify or its lock is unusable.
    #[error(transparent)]
    Bundle(#[from] BundleError),
}

/// Decides locally with the newest verified bundle.
#[derive(Debug, Clone)]
pub struct PolicyClient {
    current: watch::Receiver<Option<Arc<PolicySnapshot>>>,
}

/// The long poll the follower asks for, in seconds.
const WAIT_SECS: u64 = 30;

impl PolicyClient {
    /// Starts following the server's bundle, verified with `public_key` (the
    /// server's ed25519 bundle key, configured out of band). Returns at once; the
    /// task runs until `shutdown` turns true or is dropped.
    pub fn follow(
        pdp: Pdp,
        public_key: [u8; 32],
        shutdown: watch::Receiver<bool>,
    ) -> (PolicyClient, JoinHandle<()>) {
        let (tx, rx) = watch::channel(None);
        let task = tokio::spawn(follow_loop(pdp, public_key, tx, shutdown));
        (PolicyClient { current: rx }, task)
    }

    /// A client with fixed rules (tests, and embedders that load a lock
    /// themselves).
    pub fn fixed(version: u64, rules: CompiledPolicy) -> PolicyClient {
        let (_tx, rx) = watch::channel(Some(Arc::new(PolicySnapshot { version, rules })));
        PolicyClient { current: rx }
    }

    /// The rules in force, if a bundle has arrived.
    pub fn snapshot(&self) -> Option<Arc<PolicySnapshot>> {
        self.current.borrow().clone()
    }

    /// The version in force, if any.
    pub fn version(&self) -> Option<u64> {
        self.current.borrow().as_ref().map(|s| s.version)
    }

    /// Waits until a version at least `version` is in force.
    pub async fn wait_for_version(&self, version: u64) {
        let mut rx = self.current.clone();
        let _ = rx
            .wait_for(|s| s.as_ref().is_some_and(|s| s.version >= version))
            .await;
    }

    /// Decides `req` for `app` with the rules in force (see
    /// [`PolicySnapshot::decide`]); without rules, a denial `pep.no_policy`.
    pub fn decide(&self, app: &str, req: &mut Request, authn: Authentication) -> Decision {
        match self.snapshot() {
            Some(snapshot) => snapshot.decide(app, req, authn),
            None => no_policy(),
        }
    }
}

impl PolicySnapshot {
    /// Decides `req` for `app`; for an app these rules do not name, a denial
    /// `pep.unknown_app` that says so. What an enforcement point always knows and
    /// may have left out is filled into `req` first, as the decision server's
    /// enrichment does ([`Request::fill_app_and_time`]), so the caller's record of
    /// the access shows the context that was decided.
    pub fn decide(&self, app: &str, req: &mut Request, authn: Authentication) -> Decision {
        req.fill_app_and_time(app, chrono::Utc::now(), self.rules.tz);
        self.rules.decide(app, req, authn).unwrap_or_else(|| {
            denial(
                "pep.unknown_app",
                format!("ポリシーに「{app}」の条件がないため拒否"),
            )
        })
    }
}

/// The denial of an enforcement point that has no rules yet.
pub fn no_policy() -> Decision {
    denial(
        "pep.no_policy",
        "ポリシーをまだ受信していないため拒否".to_string(),
    )
}

/// A denial with one reason.
pub fn denial(code: &'static str, message: String) -> Decision {
    Decision {
        effect: Effect::Deny,
        reasons: vec![Reason::new(code, message)],
    }
}

/// Fetches one bundle newer than `have` (waiting up to `wait` seconds), verifies it
/// and compiles its rules. `Ok(None)`: nothing newer.
pub async fn fetch_bundle(
    pdp: &Pdp,
    public_key: &[u8; 32],
    have: Option<u64>,
    wait: u64,
) -> Result<Option<PolicySnapshot>, PolicyError> {
    let path = format!("/v1/bundle?wait={wait}");
    let mut req = pdp
        .request(reqwest::Method::GET, &path)
        .timeout(Duration::from_secs(wait + 10));
    if let Some(v) = have {
        req = req.header(reqwest::header::IF_NONE_MATCH, format!("\"{v}\""));
    }
    let resp = req.send().await.map_err(|e| pdp.unreachable(&path, e))?;
    if resp.status() == reqwest::StatusCode::NOT_MODIFIED {
        return Ok(None);
    }
    if !resp.status().is_success() {
        return Err(pdp.status_error(&path, resp).await.into());
    }
    let body = resp.bytes().await.map_err(|e| pdp.unreachable(&path, e))?;
    let bundle = verify_bundle(&body, public_key)?;
    let rules = bundle.rules().map_err(|errs| {
        BundleError::Lock(
            errs.iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("; "),
        )
    })?;
    Ok(Some(PolicySnapshot {
        version: bundle.version,
        rules,
    }))
}

async fn follow_loop(
    pdp: Pdp,
    key: [u8; 32],
    tx: watch::Sender<Option<Arc<PolicySnapshot>>>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut backoff = Duration::from_millis(200);
    loop {
        if *shutdown.borrow() {
            return;
        }
        let have = tx.borrow().as_ref().map(|s| s.version);
        // The first fetch does not wait: the gateway needs rules now.
        let wait = if have.is_some() { WAIT_SECS } else { 0 };
        let result = tokio::select! {
            r = fetch_bundle(&pdp, &key, have, wait) => r,
            _ = shutdown.changed() => return,
        };
        match result {
            Ok(Some(snap)) if have.is_none_or(|h| snap.version > h) => {
                tracing::info!(version = snap.version, "policy bundle in force");
                tx.send_replace(Some(Arc::new(snap)));
                backoff = Duration::from_millis(200);
            }
            // Not newer (a server restarted with an older counter would need a
            // new key or a restart of this PEP; never roll back silently).
            Ok(_) => backoff = Duration::from_millis(200),
            Err(e) => {
                tracing::warn!(error = %e, "policy bundle not updated; keeping the last good rules");
                tokio::select! {
                    _ = tokio::time::sleep(backoff) => {}
                    _ = shutdown.changed() => return,
                }
                backoff = (backoff * 2).min(Duration::from_secs(30));
            }
        }
    }
}
