//! The loopback attestation endpoint: lets a login page learn which enrolled device
//! it runs on.
//!
//! `POST /v1/attest` with `{"challenge": "..."}` from a page whose `Origin` is one
//! of the origins the server gave at enrolment answers
//! `{"device_id", "signature"}`, the device key's signature over
//! [`policy_core::device::attest_message`] (`"rzts-attest-v1\n" + origin + "\n" +
//! challenge`), so a signature made for one site is useless on another. CORS
//! preflights (`OPTIONS`) are answered for allowed origins, including Chrome's
//! Private Network Access (`Access-Control-Request-Private-Network: true` →
//! `Access-Control-Allow-Private-Network: true`). A missing or other origin gets
//! 403 and nothing is signed.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use base64::Engine as _;
use bytes::Bytes;
use ed25519_dalek::{Signer as _, SigningKey};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use policy_core::device::{attest_message, valid_challenge, AttestRequest, Attestation};
use tokio::net::TcpListener;
use tokio::sync::watch;

/// The attestation path.
pub const PATH: &str = "/v1/attest";

/// Largest request body (bytes).
const MAX_BODY: usize = 4096;

/// What the endpoint needs (`Debug` never shows the secret key: ed25519-dalek's
/// `SigningKey` prints only its public half).
#[derive(Debug)]
pub struct Attester {
    /// This device's id.
    pub device_id: String,
    /// Its key.
    pub key: SigningKey,
    /// Origins allowed to ask (exact match, e.g. `https://login.example.co.jp`).
    pub origins: Vec<String>,
}

type Resp = Response<Full<Bytes>>;

impl Attester {
    /// Signs `challenge` for `origin`: the attestation a login page receives.
    pub fn attest(&self, origin: &str, challenge: &str) -> Attestation {
        let sig = self.key.sign(&attest_message(origin, challenge));
        Attestation {
            device_id: self.device_id.clone(),
            signature: base64::engine::general_purpose::STANDARD.encode(sig.to_bytes()),
        }
    }

    fn allowed<'a>(&self, req: &'a Request<Incoming>) -> Option<&'a str> {
        let origin = req.headers().get("origin")?.to_str().ok()?;
        self.origins.iter().any(|o| o == origin).then_some(origin)
    }

    /// Answers one request.
    pub async fn handle(self: Arc<Self>, req: Request<Incoming>) -> Result<Resp, Infallible> {
        if req.uri().path() != PATH {
            return Ok(plain(StatusCode::NOT_FOUND, "not found"));
        }
        let Some(origin) = self.allowed(&req).map(str::to_string) else {
            return Ok(plain(StatusCode::FORBIDDEN, "origin not allowed"));
        };
        match *req.method() {
            Method::OPTIONS => {
                let pna = req
                    .headers()
                    .get("access-control-request-private-network")
                    .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"true"));
                let mut r = cors(plain(StatusCode::NO_CONTENT, ""), &origin);
                let h = r.headers_mut();
                h.insert(
                    "access-control-allow-methods",
                    HeaderValue::from_static("POST"),
                );
                h.insert(
                    "access-control-allow-headers",
                    HeaderValue::from_static("content-type"),
                );
                h.insert("access-control-max-age", HeaderValue::from_static("600"));
                if pna {
                    h.insert(
                        "access-control-allow-private-network",
                        HeaderValue::from_static("true"),
                    );
                }
                Ok(r)
            }
            Method::POST => {
                let body = match Limited::new(req.into_body(), MAX_BODY).collect().await {
                    Ok(b) => b.to_bytes(),
                    Err(_) => return Ok(cors(plain(StatusCode::BAD_REQUEST, "bad body"), &origin)),
                };
                let challenge = match serde_json::from_slice::<AttestRequest>(&body) {
                    Ok(r) if valid_challenge(&r.challenge) => r.challenge,
                    _ => {
                        return Ok(cors(
                            plain(
                                StatusCode::BAD_REQUEST,
                                "expected {\"challenge\": base64url}",
                            ),
                            &origin,
                        ))
                    }
                };
                let a = self.attest(&origin, &challenge);
                let json = serde_json::to_vec(&a).unwrap_or_default();
                let mut r = Response::new(Full::new(Bytes::from(json)));
                r.headers_mut()
                    .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
                Ok(cors(r, &origin))
            }
            _ => Ok(cors(
                plain(StatusCode::METHOD_NOT_ALLOWED, "POST only"),
                &origin,
            )),
        }
    }
}

fn plain(status: StatusCode, text: &'static str) -> Resp {
    let mut r = Response::new(Full::new(Bytes::from_static(text.as_bytes())));
    *r.status_mut() = status;
    r.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

fn cors(mut r: Resp, origin: &str) -> Resp {
    if let Ok(v) = HeaderValue::from_str(origin) {
        r.headers_mut().insert("access-control-allow-origin", v);
    }
    r.headers_mut()
        .insert("vary", HeaderValue::from_static("Origin"));
    r
}

/// Binds the endpoint; refuses anything but a loopback address.
pub async fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    if !addr.ip().is_loopback() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("the attestation endpoint listens on loopback only, not {addr}"),
        ));
    }
    TcpListener::bind(addr).await
}

/// Serves the endpoint on `listener` until `shutdown` turns true.
pub async fn serve(
    listener: TcpListener,
    attester: Arc<Attester>,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        let stream = tokio::select! {
            r = listener.accept() => match r {
                Ok((s, _)) => s,
                Err(e) => {
                    tracing::warn!(error = %e, "attestation accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = shutdown.changed() => break,
        };
        let a = attester.clone();
        let svc = hyper::service::service_fn(move |req| a.clone().handle(req));
        tokio::spawn(async move {
            let conn = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), svc);
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "attestation connection ended with an error");
            }
        });
    }
}
