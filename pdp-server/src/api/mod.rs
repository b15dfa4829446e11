//! The HTTP API (hyper 1, HTTP/1.1 with keep-alive).
//!
//! | route | auth | does |
//! |---|---|---|
//! | `POST /v1/decide` | - | one decision, or a batch (`{"requests":[...]}`) |
//! | `GET /v1/bundle` | - | the signed policy bundle; `ETag`, `If-None-Match`, `?wait=N` long poll |
//! | `GET /v1/bundle/key` | - | the bundle signing public key |
//! | `GET /v1/status` | - | policy version, reload error, uptime |
//! | `GET /healthz` | - | `ok` |
//! | `GET /metrics` | - | Prometheus text |
//! | `GET /v1/logs`, `GET /v1/logs/export` | admin | the access log (JSON / JSON lines) |
//! | `/v1/admin/...` | admin | users, groups, devices (and enrolment codes), apps |
//! | `/v1/devices/...` | device key | agent enrolment, signed posture reports, attestation (see [`devices`]) |
//! | `POST /v1/pep/login`, `POST /v1/pep/logs` | pep | credential check, access records of PEPs that decide locally ([`pep`]) |
//!
//! Errors are JSON: `{"error": "code", "message": "...", "field": "..."}` (`field`
//! when one field is at fault, as a path like `context.device.os.version`).
//! Nothing is stored on any 4xx.

pub mod admin;
pub mod bundle;
pub mod decide;
pub mod devices;
pub mod logs;
pub mod pep;

use std::convert::Infallible;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{HeaderValue, CONTENT_LENGTH, CONTENT_TYPE};
use hyper::{Method, Request, Response, StatusCode};
use serde::Serialize;

use crate::server::AppState;
use crate::store::{Store, StoreError};

/// The response type of every handler.
pub type Resp = Response<Full<Bytes>>;

/// An error answer.
#[derive(Debug, Clone)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Stable code (`invalid_request`, `unknown_app`, ...).
    pub code: &'static str,
    /// What went wrong.
    pub message: String,
    /// The field at fault, if one is.
    pub field: Option<String>,
    /// The `WWW-Authenticate` challenge (`Bearer realm="…"`), for a missing or
    /// wrong token; other 401s (a bad device signature, a failed login) are not
    /// token challenges.
    pub challenge: Option<&'static str>,
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: &'a str,
    message: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    field: Option<&'a str>,
}

impl ApiError {
    /// An error without a field.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
            field: None,
            challenge: None,
        }
    }

    /// 400 naming a field.
    pub fn field(field: impl Into<String>, message: impl Into<String>) -> ApiError {
        ApiError {
            status: StatusCode::BAD_REQUEST,
            code: "invalid_request",
            message: message.into(),
            field: Some(field.into()),
            challenge: None,
        }
    }

    /// 400.
    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, "invalid_request", message)
    }

    /// 404.
    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    /// 401 for a missing or wrong bearer token; `challenge` is the whole
    /// `WWW-Authenticate` value.
    fn bad_token(challenge: &'static str, message: &str) -> ApiError {
        ApiError {
            challenge: Some(challenge),
            ..ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
        }
    }

    /// 500: something that should not fail did (a random source, an encoder).
    pub fn internal(e: impl std::fmt::Display) -> ApiError {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string())
    }

    /// The response.
    pub fn into_response(self) -> Resp {
        let body = ErrorBody {
            error: self.code,
            message: &self.message,
            field: self.field.as_deref(),
        };
        let mut r = json(self.status, &body);
        if let Some(challenge) = self.challenge {
            r.headers_mut().insert(
                hyper::header::WWW_AUTHENTICATE,
                HeaderValue::from_static(challenge),
            );
        }
        r
    }
}

/// Nothing is acknowledged (no decision, no ingested record) that is not durable
/// in the access log: 503.
impl From<crate::logwriter::LogError> for ApiError {
    fn from(e: crate::logwriter::LogError) -> ApiError {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "log_unavailable",
            format!("the access log could not be written, so nothing was acknowledged: {e}"),
        )
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> ApiError {
        match e {
            StoreError::NotFound(m) => ApiError::new(StatusCode::NOT_FOUND, "not_found", m),
            StoreError::Conflict(m) => ApiError::new(StatusCode::CONFLICT, "conflict", m),
            StoreError::Backend(m) => {
                tracing::error!(error = %m, "store failure");
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "store_unavailable",
                    "the store is unavailable; nothing was decided or changed",
                )
            }
        }
    }
}

/// A JSON response.
pub fn json<T: Serialize + ?Sized>(status: StatusCode, value: &T) -> Resp {
    // Room for a typical answer up front (to_vec starts at 128 bytes and grows).
    let mut buf = Vec::with_capacity(512);
    match serde_json::to_writer(&mut buf, value) {
        Ok(()) => bytes_response(status, "application/json", Bytes::from(buf)),
        Err(e) => {
            tracing::error!(error = %e, "response serialisation failed");
            bytes_response(
                StatusCode::INTERNAL_SERVER_ERROR,
                "application/json",
                Bytes::from_static(br#"{"error":"internal","message":"serialisation failed"}"#),
            )
        }
    }
}

/// A response with a body and content type.
pub fn bytes_response(status: StatusCode, content_type: &'static str, body: Bytes) -> Resp {
    let mut r = Response::new(Full::new(body));
    *r.status_mut() = status;
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    r
}

/// Reads the whole body, at most `limit` bytes (413 beyond).
pub async fn read_body(req: Request<Incoming>, limit: usize) -> Result<Bytes, ApiError> {
    let too_large = || {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
            format!("request body larger than {limit} bytes"),
        )
    };
    if let Some(len) = req
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
    {
        if len > limit as u64 {
            return Err(too_large());
        }
    }
    // Frame by frame rather than `collect()`: a body that arrives in one data frame
    // (nearly every request) is returned as it came, without the buffer list and
    // trailer bookkeeping `Collected` allocates per request.
    let mut body = Limited::new(req.into_body(), limit);
    let mut first: Option<Bytes> = None;
    let mut joined: Vec<u8> = Vec::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| {
            if e.is::<http_body_util::LengthLimitError>() {
                too_large()
            } else {
                ApiError::bad_request(format!("could not read the body: {e}"))
            }
        })?;
        // Trailers carry nothing a JSON API reads.
        let Ok(data) = frame.into_data() else {
            continue;
        };
        if first.is_none() && joined.is_empty() {
            first = Some(data);
        } else {
            if let Some(earlier) = first.take() {
                joined.extend_from_slice(&earlier);
            }
            joined.extend_from_slice(&data);
        }
    }
    Ok(first.unwrap_or_else(|| Bytes::from(joined)))
}

/// Parses a JSON body into `T`, naming the offending field on error.
pub fn parse_json<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    // JSON text is UTF-8 (RFC 8259). Checking the whole body once lets the parser
    // skip checking every string again (`from_str`): ~16 % of a decision's parse.
    let text = std::str::from_utf8(body).map_err(|e| {
        ApiError::bad_request(format!(
            "invalid JSON: the body is not UTF-8 (at byte {})",
            e.valid_up_to()
        ))
    })?;
    // Fast path; only a body that fails is read again to find the field at fault.
    if let Ok(v) = serde_json::from_str(text) {
        return Ok(v);
    }
    let mut de = serde_json::Deserializer::from_str(text);
    let v: T = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if path == "." || path.is_empty() {
            ApiError::bad_request(format!("invalid JSON: {inner}"))
        } else {
            ApiError::field(path, inner.to_string())
        }
    })?;
    de.end()
        .map_err(|e| ApiError::bad_request(format!("invalid JSON: {e}")))?;
    Ok(v)
}

/// The bearer token of a request, if any.
fn bearer(req: &Request<Incoming>) -> Option<&str> {
    req.headers()
        .get(hyper::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim)
}

/// Whether the request's bearer token hashes to `expected` (constant time).
fn token_matches(req: &Request<Incoming>, expected: &[u8; 32]) -> bool {
    use sha2::Digest as _;
    use subtle::ConstantTimeEq as _;
    bearer(req).is_some_and(|t| {
        let h: [u8; 32] = sha2::Sha256::digest(t.as_bytes()).into();
        bool::from(h.ct_eq(expected))
    })
}

/// Checks `Authorization: Bearer <admin token>` in constant time.
pub fn require_admin(state: &AppState, req: &Request<Incoming>) -> Result<(), ApiError> {
    if token_matches(req, &state.admin_token_sha256) {
        Ok(())
    } else {
        Err(ApiError::bad_token(
            "Bearer realm=\"rzts-admin\"",
            "missing or wrong admin token (Authorization: Bearer <token>)",
        ))
    }
}

/// Checks `Authorization: Bearer <pep token>` (the admin token is accepted too).
pub fn require_pep(state: &AppState, req: &Request<Incoming>) -> Result<(), ApiError> {
    if token_matches(req, &state.pep_token_sha256) || token_matches(req, &state.admin_token_sha256)
    {
        Ok(())
    } else {
        Err(ApiError::bad_token(
            "Bearer realm=\"rzts-pep\"",
            "missing or wrong enforcement-point token (Authorization: Bearer <pep token>)",
        ))
    }
}

/// The query string as pairs, refusing names not in `allowed`.
pub fn query_pairs(
    req: &Request<Incoming>,
    allowed: &[&str],
) -> Result<Vec<(String, String)>, ApiError> {
    let q = req.uri().query().unwrap_or("");
    let mut out = Vec::new();
    for (k, v) in form_urlencoded::parse(q.as_bytes()) {
        if !allowed.contains(&k.as_ref()) {
            return Err(ApiError::field(
                k.into_owned(),
                format!("unknown query parameter (allowed: {})", allowed.join(", ")),
            ));
        }
        out.push((k.into_owned(), v.into_owned()));
    }
    Ok(out)
}

/// Decodes one percent-encoded path segment.
pub fn segment(s: &str) -> Result<String, ApiError> {
    percent_encoding::percent_decode_str(s)
        .decode_utf8()
        .map(|c| c.into_owned())
        .map_err(|_| ApiError::bad_request("path segment is not UTF-8"))
}

pub(super) fn method_not_allowed(allow: &'static str) -> Resp {
    let mut r = ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        format!("allowed: {allow}"),
    )
    .into_response();
    r.headers_mut()
        .insert(hyper::header::ALLOW, HeaderValue::from_static(allow));
    r
}

/// Serves one request.
pub async fn handle(state: Arc<AppState>, req: Request<Incoming>) -> Result<Resp, Infallible> {
    let method = req.method().clone();
    // A clone of the URI shares the request's bytes (no copy of the path).
    let uri = req.uri().clone();
    let path = uri.path();
    let resp = route(&state, req, &method, path).await;
    let resp = resp.unwrap_or_else(ApiError::into_response);
    state.metrics.response(resp.status().as_u16());
    tracing::debug!(%method, %path, status = resp.status().as_u16(), "request");
    Ok(resp)
}

async fn route(
    state: &Arc<AppState>,
    req: Request<Incoming>,
    method: &Method,
    path: &str,
) -> Result<Resp, ApiError> {
    let segs: Vec<&str> = path.trim_end_matches('/').split('/').skip(1).collect();
    match segs.as_slice() {
        ["v1", "decide"] => match *method {
            Method::POST => decide::decide(state, req).await,
            _ => Ok(method_not_allowed("POST")),
        },
        ["v1", "bundle"] => match *method {
            Method::GET => bundle::get_bundle(state, req).await,
            _ => Ok(method_not_allowed("GET")),
        },
        ["v1", "bundle", "key"] => match *method {
            Method::GET => Ok(bundle::get_key(state)),
            _ => Ok(method_not_allowed("GET")),
        },
        ["v1", "status"] => match *method {
            Method::GET => Ok(status(state)),
            _ => Ok(method_not_allowed("GET")),
        },
        ["healthz"] => Ok(bytes_response(
            StatusCode::OK,
            "text/plain; charset=utf-8",
            Bytes::from_static(b"ok\n"),
        )),
        ["metrics"] => match *method {
            Method::GET => Ok(bytes_response(
                StatusCode::OK,
                "text/plain; version=0.0.4; charset=utf-8",
                Bytes::from(state.metrics.render()),
            )),
            _ => Ok(method_not_allowed("GET")),
        },
        ["v1", "logs"] => match *method {
            Method::GET => logs::query(state, req, false).await,
            _ => Ok(method_not_allowed("GET")),
        },
        ["v1", "logs", "export"] => match *method {
            Method::GET => logs::query(state, req, true).await,
            _ => Ok(method_not_allowed("GET")),
        },
        ["v1", "pep", "login"] => match *method {
            Method::POST => {
                require_pep(state, &req)?;
                pep::login(state, req).await
            }
            _ => Ok(method_not_allowed("POST")),
        },
        ["v1", "pep", "logs"] => match *method {
            Method::POST => {
                require_pep(state, &req)?;
                pep::ingest(state, req).await
            }
            _ => Ok(method_not_allowed("POST")),
        },
        ["v1", "devices", rest @ ..] => {
            let rest: Vec<String> = rest.iter().map(|s| segment(s)).collect::<Result<_, _>>()?;
            devices::route(state, req, method, &rest).await
        }
        ["v1", "admin", rest @ ..] => {
            let rest: Vec<String> = rest.iter().map(|s| segment(s)).collect::<Result<_, _>>()?;
            admin::route(state, req, method, &rest).await
        }
        _ => Err(ApiError::not_found(format!("no such endpoint: {path}"))),
    }
}

#[derive(Serialize)]
struct Status {
    status: &'static str,
    version: &'static str,
    uptime_seconds: u64,
    store: &'static str,
    policy: PolicyStatus,
}

#[derive(Serialize)]
struct PolicyStatus {
    path: String,
    bundle_version: u64,
    apps: usize,
    loaded_at: chrono::DateTime<chrono::Utc>,
    error: Option<crate::reload::ReloadFailure>,
}

fn status(state: &AppState) -> Resp {
    let p = state.policy.current();
    let error = state.policy.last_error();
    let body = Status {
        status: if error.is_some() { "degraded" } else { "ok" },
        version: env!("CARGO_PKG_VERSION"),
        uptime_seconds: state.started.elapsed().as_secs(),
        store: state.store_kind,
        policy: PolicyStatus {
            path: state.policy.policy_path().display().to_string(),
            bundle_version: p.version,
            apps: p.compiled.apps.len(),
            loaded_at: p.loaded_at,
            error,
        },
    };
    json(StatusCode::OK, &body)
}

/// Runs a store call on a blocking thread.
pub(crate) async fn blocking<T, F>(state: &AppState, f: F) -> Result<T, ApiError>
where
    T: Send + 'static,
    F: FnOnce(&dyn Store) -> Result<T, StoreError> + Send + 'static,
{
    let store = state.store.clone();
    tokio::task::spawn_blocking(move || f(store.as_ref()))
        .await
        .map_err(|e| {
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "store_unavailable",
                e.to_string(),
            )
        })?
        .map_err(ApiError::from)
}
