//! Checking a client's credentials with the decision server, with a short cache.
//!
//! An enforcement point that sees many connections from one user (a SOCKS gateway:
//! one per browser connection) must not ask the server each time. Answers are
//! cached for `ttl` under the user, a SHA-256 of the secret and the source address,
//! so a different secret is always checked. A revoked credential or a disabled
//! user therefore still works for at most `ttl`. When the server cannot be asked,
//! the login fails (fail closed) unless a cached answer is still fresh.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use crate::login::{LoginRequest, Subject};
use crate::pdp::{Pdp, PdpError};

/// Why a login failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum LoginError {
    /// Unknown user or wrong secret.
    #[error("wrong user or credential")]
    Rejected,
    /// The user is disabled in the directory.
    #[error("user is disabled")]
    Disabled,
    /// The server could not be asked: refuse rather than guess.
    #[error("cannot verify credentials: {0}")]
    Unavailable(String),
}

type Key = (String, [u8; 32], Option<IpAddr>);
type Answer = (Instant, Result<Subject, LoginError>);

/// Checks credentials with the server, caching answers for a short time.
#[derive(Debug, Clone)]
pub struct SubjectClient {
    pdp: Pdp,
    ttl: Duration,
    cache: Arc<Mutex<HashMap<Key, Answer>>>,
}

/// Entries kept at most; the cache is cleared when it grows past this.
const MAX_ENTRIES: usize = 10_000;

impl SubjectClient {
    /// A client caching answers for `ttl` (zero: ask every time).
    pub fn new(pdp: Pdp, ttl: Duration) -> SubjectClient {
        SubjectClient {
            pdp,
            ttl,
            cache: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    /// Checks `user`/`secret` presented from `source_ip`.
    pub async fn login(
        &self,
        user: &str,
        secret: &str,
        source_ip: Option<IpAddr>,
    ) -> Result<Subject, LoginError> {
        let key: Key = (
            user.to_string(),
            Sha256::digest(secret.as_bytes()).into(),
            source_ip,
        );
        if let Some(hit) = self.cached(&key) {
            return hit;
        }
        let answer = self.ask(user, secret, source_ip).await;
        // Outages are not cached: the next connection asks again.
        if !matches!(answer, Err(LoginError::Unavailable(_))) && !self.ttl.is_zero() {
            if let Ok(mut cache) = self.cache.lock() {
                if cache.len() >= MAX_ENTRIES {
                    cache.clear();
                }
                cache.insert(key, (Instant::now(), answer.clone()));
            }
        }
        answer
    }

    fn cached(&self, key: &Key) -> Option<Result<Subject, LoginError>> {
        let cache = self.cache.lock().ok()?;
        let (at, answer) = cache.get(key)?;
        (at.elapsed() < self.ttl).then(|| answer.clone())
    }

    async fn ask(
        &self,
        user: &str,
        secret: &str,
        source_ip: Option<IpAddr>,
    ) -> Result<Subject, LoginError> {
        const PATH: &str = "/v1/pep/login";
        let body = LoginRequest {
            user: user.to_string(),
            secret: secret.to_string(),
            source_ip,
        };
        let resp = self
            .pdp
            .request(reqwest::Method::POST, PATH)
            .timeout(Duration::from_secs(10))
            .json(&body)
            .send()
            .await
            .map_err(|e| LoginError::Unavailable(self.pdp.unreachable(PATH, e).to_string()))?;
        match resp.status().as_u16() {
            200 => resp.json::<Subject>().await.map_err(|e| {
                LoginError::Unavailable(
                    PdpError::Malformed {
                        url: self.pdp.url(PATH),
                        why: e.to_string(),
                    }
                    .to_string(),
                )
            }),
            401 => Err(LoginError::Rejected),
            403 => Err(LoginError::Disabled),
            _ => Err(LoginError::Unavailable(
                self.pdp.status_error(PATH, resp).await.to_string(),
            )),
        }
    }
}
