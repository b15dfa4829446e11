//! The device agent's routes (no admin token: a device proves itself with its key).
//!
//! | route | body | answer |
//! |---|---|---|
//! | `POST /v1/devices/enroll` | `{"code", "public_key"}` | 201 `{"device_id", "owner", "attestation_origins"}`; 401 `invalid_code` / `code_expired`, 409 `code_used` |
//! | `POST /v1/devices/{id}/report` | a signed report, header `RZTS-Signature: ed25519=<base64>` | `{"device_id", "seq"}`; 401 unknown device / bad signature / other device, 409 replayed or stale |
//! | `POST /v1/devices/attest/challenge` | - | 201 `{"challenge", "expires_at"}` (single use) |
//! | `POST /v1/devices/attest/verify` | `{"device_id", "origin", "challenge", "signature"}` | `{"device_id", "owner"}`; 401 otherwise |
//!
//! Nothing is stored when a request is refused (a refused report changes neither the
//! posture nor the sequence number).

use std::sync::Arc;

use hyper::body::Incoming;
use hyper::{Method, Request, StatusCode};

use policy_core::device::{
    attest_message, parse_signature_header, valid_challenge, AttestVerified, AttestVerify,
    Challenge, EnrollRequest, EnrollResponse, Report, ReportAccepted, SIGNATURE_HEADER,
};

use super::{blocking, json, parse_json, read_body, ApiError, Resp};
use crate::devices;
use crate::model::EnrollOutcome;
use crate::server::AppState;

fn unauthorized(code: &'static str, message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::UNAUTHORIZED, code, message)
}

fn conflict(code: &'static str, message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::CONFLICT, code, message)
}

/// Routes `/v1/devices/{rest...}`.
pub async fn route(
    state: &Arc<AppState>,
    req: Request<Incoming>,
    method: &Method,
    rest: &[String],
) -> Result<Resp, ApiError> {
    let seg: Vec<&str> = rest.iter().map(String::as_str).collect();
    match (method.clone(), seg.as_slice()) {
        (Method::POST, ["enroll"]) => enroll(state, req).await,
        (Method::POST, ["attest", "challenge"]) => challenge(state).await,
        (Method::POST, ["attest", "verify"]) => verify_attestation(state, req).await,
        (Method::POST, [id, "report"]) => report(state, req, id).await,
        (_, ["enroll"] | ["attest", _] | [_, "report"]) => Ok(super::method_not_allowed("POST")),
        _ => Err(ApiError::not_found(format!(
            "no such device endpoint: /v1/devices/{}",
            rest.join("/")
        ))),
    }
}

async fn enroll(state: &Arc<AppState>, req: Request<Incoming>) -> Result<Resp, ApiError> {
    let b: EnrollRequest = parse_json(&read_body(req, state.config.max_body_bytes).await?)?;
    devices::parse_public_key(&b.public_key)
        .map_err(|e| ApiError::field("public_key", e.to_string()))?;
    let hash = devices::code_sha256(&b.code);
    let new_id = devices::new_device_id().map_err(ApiError::internal)?;
    let key = b.public_key.trim().to_string();
    let outcome = blocking(state, move |s| {
        s.enroll_device(&hash, &key, &new_id, chrono::Utc::now())
    })
    .await?;
    match outcome {
        EnrollOutcome::Enrolled(d) => {
            state.enricher.invalidate_device(&d.id);
            tracing::info!(device = %d.id, owner = %d.owner, "device enrolled");
            Ok(json(
                StatusCode::CREATED,
                &EnrollResponse {
                    device_id: d.id,
                    owner: d.owner,
                    attestation_origins: state.config.devices.attestation_origins.clone(),
                },
            ))
        }
        EnrollOutcome::Unknown => Err(unauthorized(
            "invalid_code",
            "unknown enrolment code (ask the administrator for a new one: rzts device enroll)",
        )),
        EnrollOutcome::Used => Err(conflict(
            "code_used",
            "this enrolment code has been used already; codes are single use",
        )),
        EnrollOutcome::Expired => Err(unauthorized(
            "code_expired",
            "this enrolment code has expired; ask the administrator for a new one",
        )),
    }
}

async fn report(state: &Arc<AppState>, req: Request<Incoming>, id: &str) -> Result<Resp, ApiError> {
    let signature = req
        .headers()
        .get(SIGNATURE_HEADER)
        .and_then(|v| v.to_str().ok())
        .and_then(parse_signature_header)
        .map(str::to_string)
        .ok_or_else(|| {
            unauthorized(
                "missing_signature",
                "a report needs the header RZTS-Signature: ed25519=<base64 signature of the body>",
            )
        })?;
    let body = read_body(req, state.config.max_body_bytes).await?;
    let did = id.to_string();
    let key = blocking(state, move |s| s.device_key(&did))
        .await?
        .ok_or_else(|| {
            unauthorized(
                "unknown_device",
                format!("device {id} is not enrolled (no device key)"),
            )
        })?;
    devices::verify(&key, &body, &signature)
        .map_err(|e| unauthorized("bad_signature", e.to_string()))?;
    let r: Report = parse_json(&body)?;
    if r.device_id != id {
        return Err(unauthorized(
            "device_mismatch",
            "the report names another device than the path and key",
        ));
    }
    let now = chrono::Utc::now();
    if !devices::fresh(r.time, now, state.config.devices.report_max_skew()) {
        return Err(conflict(
            "stale_report",
            format!(
                "report time {} is more than {} s from the server's clock",
                r.time.to_rfc3339(),
                state.config.devices.report_max_skew_secs
            ),
        ));
    }
    let (did, seq) = (id.to_string(), r.seq);
    let posture = devices::directory_posture(r.posture);
    let accepted = blocking(state, move |s| s.accept_report(&did, seq, &posture, now)).await?;
    if !accepted {
        return Err(conflict(
            "replayed_report",
            format!("sequence number {seq} is not greater than the last accepted one"),
        ));
    }
    state.enricher.invalidate_device(id);
    Ok(json(
        StatusCode::OK,
        &ReportAccepted {
            device_id: id.to_string(),
            seq,
        },
    ))
}

async fn challenge(state: &Arc<AppState>) -> Result<Resp, ApiError> {
    let challenge = devices::new_challenge().map_err(ApiError::internal)?;
    let expires_at = chrono::Utc::now() + state.config.devices.challenge_ttl();
    let c = challenge.clone();
    blocking(state, move |s| s.create_challenge(&c, expires_at)).await?;
    Ok(json(
        StatusCode::CREATED,
        &Challenge {
            challenge,
            expires_at,
        },
    ))
}

async fn verify_attestation(
    state: &Arc<AppState>,
    req: Request<Incoming>,
) -> Result<Resp, ApiError> {
    let b: AttestVerify = parse_json(&read_body(req, state.config.max_body_bytes).await?)?;
    let refused = || unauthorized("attestation_refused", "the attestation does not verify");
    if !valid_challenge(&b.challenge)
        || !state.config.devices.attestation_origins.contains(&b.origin)
    {
        return Err(refused());
    }
    let did = b.device_id.clone();
    let (key, device) = blocking(state, move |s| {
        Ok((s.device_key(&did)?, s.get_device(&did)?))
    })
    .await?;
    let (Some(key), Some(device)) = (key, device) else {
        return Err(refused());
    };
    devices::verify(&key, &attest_message(&b.origin, &b.challenge), &b.signature)
        .map_err(|_| refused())?;
    // Only a verified attestation consumes its challenge; a second use fails here.
    let c = b.challenge.clone();
    if !blocking(state, move |s| s.consume_challenge(&c, chrono::Utc::now())).await? {
        return Err(unauthorized(
            "attestation_refused",
            "unknown, used or expired challenge",
        ));
    }
    Ok(json(
        StatusCode::OK,
        &AttestVerified {
            device_id: device.id,
            owner: device.owner,
        },
    ))
}
