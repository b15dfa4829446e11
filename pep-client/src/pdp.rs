//! The connection to the decision server: its base URL, the enforcement-point
//! token and one HTTP client shared by every part of this crate.

use std::time::Duration;

use thiserror::Error;

/// Something went wrong talking to the decision server.
#[derive(Debug, Error)]
pub enum PdpError {
    /// Not reachable, timed out, or the connection broke.
    #[error("decision server {url} unreachable: {why}")]
    Unreachable {
        /// The URL asked.
        url: String,
        /// What failed.
        why: String,
    },
    /// The server answered with an unexpected status.
    #[error("decision server {url} answered {status}: {body}")]
    Status {
        /// The URL asked.
        url: String,
        /// The HTTP status.
        status: u16,
        /// The start of the answer's body.
        body: String,
    },
    /// The answer was not what the API promises.
    #[error("decision server {url} sent a malformed answer: {why}")]
    Malformed {
        /// The URL asked.
        url: String,
        /// What was wrong.
        why: String,
    },
    /// The configuration cannot work (bad URL, no TLS backend).
    #[error("decision server client: {0}")]
    Config(String),
}

/// Where the decision server is and how to authenticate to it.
#[derive(Debug, Clone)]
pub struct Pdp {
    base: String,
    token: String,
    http: reqwest::Client,
}

impl Pdp {
    /// A client for the server at `base_url` (e.g. `http://127.0.0.1:8080`), using
    /// the enforcement-point token (`pep_token` of the server).
    pub fn new(base_url: &str, pep_token: &str) -> Result<Pdp, PdpError> {
        let base = base_url.trim_end_matches('/').to_string();
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            return Err(PdpError::Config(format!(
                "base URL {base_url:?} must start with http:// or https://"
            )));
        }
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .pool_idle_timeout(Duration::from_secs(90))
            .build()
            .map_err(|e| PdpError::Config(e.to_string()))?;
        Ok(Pdp {
            base,
            token: pep_token.to_string(),
            http,
        })
    }

    /// The base URL, without a trailing slash.
    pub fn base_url(&self) -> &str {
        &self.base
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// A request to `path` carrying the token.
    pub(crate) fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.http
            .request(method, self.url(path))
            .bearer_auth(&self.token)
    }

    pub(crate) fn unreachable(&self, path: &str, e: reqwest::Error) -> PdpError {
        PdpError::Unreachable {
            url: self.url(path),
            why: e.to_string(),
        }
    }

    /// A [`PdpError::Status`] from a response that was not a success.
    pub(crate) async fn status_error(&self, path: &str, resp: reqwest::Response) -> PdpError {
        let status = resp.status().as_u16();
        let body: String = resp
            .text()
            .await
            .unwrap_or_default()
            .chars()
            .take(300)
            .collect();
        PdpError::Status {
            url: self.url(path),
            status,
            body,
        }
    }
}
