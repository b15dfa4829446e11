//! Routes for enforcement points that decide locally (`Authorization: Bearer <pep
//! token>`): the credential check and access-record ingest.
//!
//! | route | body | answer |
//! |---|---|---|
//! | `POST /v1/pep/login` | `{"user", "secret", "source_ip"}` | 200 the subject (user with groups, auth, device at that address, source country); 401 wrong user or secret; 403 disabled user |
//! | `POST /v1/pep/logs` | `{"records": [...]}` | 200 `{"stored": n}` once every record is durable in the access journal (as the server's own decisions); records already stored (same `decision_id`) are skipped when indexed |

use std::net::IpAddr;
use std::sync::Arc;

use chrono::Utc;
use hyper::body::Incoming;
use hyper::{Request, StatusCode};
use pep_client::log::{LogAck, LogBatch};
use pep_client::login::{LoginRequest, Subject};
use policy_core::context::{Auth, AuthMethod, Request as Context};

use super::{blocking, json, parse_json, read_body, ApiError, Resp};
use crate::server::AppState;

/// The SHA-256 of a proxy token, hex, as the store keeps it.
pub fn token_digest(token: &str) -> String {
    crate::sha256_hex(token.as_bytes())
}

fn rejected() -> ApiError {
    ApiError::new(
        StatusCode::UNAUTHORIZED,
        "login_failed",
        "wrong user or proxy token",
    )
}

/// `POST /v1/pep/login`.
pub async fn login(state: &Arc<AppState>, req: Request<Incoming>) -> Result<Resp, ApiError> {
    let body = read_body(req, state.config.max_body_bytes).await?;
    let login: LoginRequest = parse_json(&body)?;
    let (uid, src) = (login.user.clone(), login.source_ip);
    // One blocking trip: the user, the credential, and the user's device at the
    // source address (the newest report wins when several claim it).
    let (user, stored, device) = blocking(state, move |s| {
        let user = s.get_user(&uid)?;
        let stored = match &user {
            Some(_) => s.proxy_credential(&uid)?,
            None => None,
        };
        let device = match (&user, src) {
            (Some(_), Some(ip)) => s
                .devices_of(&uid)?
                .into_iter()
                .filter(|d| reports_ip(d, ip))
                .max_by_key(|d| d.last_seen)
                .map(|d| d.id),
            _ => None,
        };
        Ok((user, stored, device))
    })
    .await?;
    let (Some(user), Some(stored)) = (user, stored) else {
        return Err(rejected());
    };
    let given = token_digest(&login.secret);
    use subtle::ConstantTimeEq as _;
    if !bool::from(given.as_bytes().ct_eq(stored.as_bytes())) {
        return Err(rejected());
    }
    if user.disabled {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "user_disabled",
            format!("user {} is disabled", user.id),
        ));
    }
    // The decision server's own enrichment fills groups, device posture and
    // country, exactly as for `POST /v1/decide`.
    let mut ctx = Context::default();
    ctx.user.id = Some(user.id.clone());
    ctx.device.id = device;
    ctx.source.ip = login.source_ip;
    let tz = state.policy.current().compiled.tz;
    let enriched = state.enricher.enrich(ctx, "", tz, Utc::now()).await?;
    let r = enriched.request;
    let subject = Subject {
        user: r.user,
        auth: Auth {
            method: Some(AuthMethod::Password),
            mfa: Some(false),
        },
        device: if r.device.id.is_some() {
            r.device
        } else {
            Default::default()
        },
        source: r.source,
    };
    Ok(json(StatusCode::OK, &subject))
}

fn reports_ip(d: &crate::model::Device, ip: IpAddr) -> bool {
    d.posture
        .as_ref()
        .and_then(|p| p.network.ip)
        .is_some_and(|reported| reported == ip)
}

/// `POST /v1/pep/logs`.
pub async fn ingest(state: &Arc<AppState>, req: Request<Incoming>) -> Result<Resp, ApiError> {
    // Batches are larger than single decisions: allow 16 times the usual body.
    let body = read_body(req, state.config.max_body_bytes.saturating_mul(16)).await?;
    let batch: LogBatch = parse_json(&body)?;
    for (i, r) in batch.records.iter().enumerate() {
        if r.decision_id.is_empty() || r.decision_id.len() > 64 {
            return Err(ApiError::field(
                format!("records[{i}].decision_id"),
                "must be 1 to 64 characters",
            ));
        }
        if r.pep.is_empty() || r.target.is_empty() {
            return Err(ApiError::field(
                format!("records[{i}]"),
                "pep and target must not be empty",
            ));
        }
    }
    // The same path as the server's own decisions: durable in the access journal
    // when acknowledged, then indexed (records already stored are skipped there).
    let n = batch.records.len();
    state.log.append_all(batch.records).await?;
    Ok(json(StatusCode::OK, &LogAck { stored: n }))
}
