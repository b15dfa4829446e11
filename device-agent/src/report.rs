//! Signed posture reports (`POST /v1/devices/{id}/report`).
//!
//! The body is the JSON of [`policy_core::device::Report`]: device id, a sequence
//! number that increases with every report (persisted in the state directory), the
//! collection time and the posture. The device key signs the exact body bytes; the
//! signature travels in `RZTS-Signature: ed25519=<base64>`. The server verifies it
//! with the enrolled public key and refuses a report for another device, a sequence
//! number it has seen, or a time outside its clock window.

use base64::Engine as _;
use ed25519_dalek::{Signer as _, SigningKey};
use policy_core::device::{signature_header, Report, ReportAccepted, SIGNATURE_HEADER};

use crate::posture::Posture;
use crate::state::{AgentConfig, StateDir};
use crate::AgentError;

/// A report ready to send: the body bytes and the header value that signs them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedReport {
    /// The exact JSON bytes.
    pub body: Vec<u8>,
    /// The `RZTS-Signature` value.
    pub signature: String,
}

/// Serialises and signs a report.
pub fn sign(report: &Report, key: &SigningKey) -> Result<SignedReport, AgentError> {
    let body = serde_json::to_vec(report).map_err(|e| AgentError::Http(e.to_string()))?;
    let sig = key.sign(&body);
    let b64 = base64::engine::general_purpose::STANDARD.encode(sig.to_bytes());
    Ok(SignedReport {
        body,
        signature: signature_header(&b64),
    })
}

/// Sends a signed report to the server of `config`.
pub async fn send(
    config: &AgentConfig,
    signed: SignedReport,
) -> Result<ReportAccepted, AgentError> {
    let path = format!("/v1/devices/{}/report", encode_segment(&config.device_id));
    crate::client::post_json(
        &config.server,
        &path,
        signed.body,
        &[(SIGNATURE_HEADER, signed.signature)],
    )
    .await
}

/// [`report_with`] the configuration and key saved in `state`.
pub async fn report_once(
    state: &StateDir,
    posture: &Posture,
) -> Result<ReportAccepted, AgentError> {
    report_with(state, &state.load_config()?, &state.load_key()?, posture).await
}

/// Builds (with the next sequence number), signs with `key` and sends one report
/// of `posture` to `config.server`; remembers it as the last reported posture
/// when accepted.
pub async fn report_with(
    state: &StateDir,
    config: &AgentConfig,
    key: &SigningKey,
    posture: &Posture,
) -> Result<ReportAccepted, AgentError> {
    let report = Report {
        device_id: config.device_id.clone(),
        seq: state.next_seq()?,
        time: chrono::Utc::now(),
        posture: posture.clone(),
    };
    let accepted = send(config, sign(&report, key)?).await?;
    state.save_last_posture(posture)?;
    Ok(accepted)
}

/// Percent-encodes a path segment (device ids may hold any character but `/`).
fn encode_segment(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::Verifier as _;

    #[test]
    fn the_signature_covers_the_exact_body() {
        let key = SigningKey::from_bytes(&[1u8; 32]);
        let r = Report {
            device_id: "PC-1".into(),
            seq: 1,
            time: chrono::Utc::now(),
            posture: Posture::default(),
        };
        let s = sign(&r, &key).unwrap();
        let b64 = policy_core::device::parse_signature_header(&s.signature).unwrap();
        let raw = base64::engine::general_purpose::STANDARD
            .decode(b64)
            .unwrap();
        let sig = ed25519_dalek::Signature::from_slice(&raw).unwrap();
        assert!(key.verifying_key().verify(&s.body, &sig).is_ok());
        assert_eq!(encode_segment("PC 1/é"), "PC%201%2F%C3%A9");
    }
}
