//! `GET /v1/bundle` and `GET /v1/bundle/key`.
//!
//! The bundle carries `ETag: "N"` (N = bundle version). With `If-None-Match: "N"`
//! the answer is 304 while N is current; adding `?wait=S` (at most 300 seconds)
//! holds the request until a new version is in force (200 with it) or the time
//! is up (304). See [`crate::bundle`] for the format and signature.

use std::sync::Arc;
use std::time::Duration;

use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{HeaderValue, CACHE_CONTROL, ETAG, IF_NONE_MATCH};
use hyper::{Request, Response, StatusCode};

use super::{bytes_response, json, query_pairs, ApiError, Resp};
use crate::bundle::SignedBundle;
use crate::server::AppState;

/// Longest long poll, in seconds.
pub const MAX_WAIT_SECS: u64 = 300;

fn with_etag(mut r: Resp, b: &SignedBundle) -> Resp {
    if let Ok(v) = HeaderValue::from_str(&b.etag) {
        r.headers_mut().insert(ETAG, v);
    }
    r.headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    r
}

fn full(b: &SignedBundle) -> Resp {
    with_etag(
        bytes_response(StatusCode::OK, "application/json", b.body.clone()),
        b,
    )
}

fn not_modified(b: &SignedBundle) -> Resp {
    let mut r = Response::new(Full::default());
    *r.status_mut() = StatusCode::NOT_MODIFIED;
    with_etag(r, b)
}

/// The entity tags of an `If-None-Match` header, without quotes or `W/`.
fn tags(v: &str) -> Vec<String> {
    v.split(',')
        .map(|t| {
            let t = t.trim();
            let t = t.strip_prefix("W/").unwrap_or(t);
            t.trim_matches('"').to_string()
        })
        .filter(|t| !t.is_empty())
        .collect()
}

/// `GET /v1/bundle`.
pub async fn get_bundle(state: &Arc<AppState>, req: Request<Incoming>) -> Result<Resp, ApiError> {
    let mut wait = 0u64;
    for (k, v) in query_pairs(&req, &["wait"])? {
        if k == "wait" {
            wait = v
                .parse::<u64>()
                .ok()
                .filter(|w| *w <= MAX_WAIT_SECS)
                .ok_or_else(|| ApiError::field("wait", format!("seconds, 0 to {MAX_WAIT_SECS}")))?;
        }
    }
    let inm: Option<Vec<String>> = req
        .headers()
        .get(IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .map(tags);
    let matches = |b: &SignedBundle| {
        inm.as_ref().is_some_and(|ts| {
            ts.iter()
                .any(|t| t == "*" || t.as_str() == b.etag.trim_matches('"'))
        })
    };
    let mut rx = state.policy.subscribe();
    let mut current = rx.borrow_and_update().clone();
    if !matches(&current) {
        return Ok(full(&current));
    }
    if wait == 0 {
        return Ok(not_modified(&current));
    }
    let deadline = tokio::time::sleep(Duration::from_secs(wait));
    tokio::pin!(deadline);
    let mut shutdown = state.shutdown.clone();
    loop {
        tokio::select! {
            r = rx.changed() => {
                if r.is_err() {
                    break;
                }
                current = rx.borrow_and_update().clone();
                if !matches(&current) {
                    return Ok(full(&current));
                }
            }
            _ = &mut deadline => break,
            _ = shutdown.changed() => break,
        }
    }
    Ok(not_modified(&current))
}

/// `GET /v1/bundle/key`.
pub fn get_key(state: &AppState) -> Resp {
    json(StatusCode::OK, &state.policy.signer().public_key_info())
}

#[cfg(test)]
mod tests {
    use super::tags;

    #[test]
    fn if_none_match_forms() {
        assert_eq!(tags("\"3\""), vec!["3"]);
        assert_eq!(tags("W/\"3\", \"4\""), vec!["3", "4"]);
        assert_eq!(tags("*"), vec!["*"]);
    }
}
