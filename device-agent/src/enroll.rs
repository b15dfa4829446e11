//! Enrolment: a new ed25519 key pair for this device, registered with the server
//! through the administrator's one-time code (`POST /v1/devices/enroll`). The
//! private key never leaves the state directory.

use base64::Engine as _;
use policy_core::device::{EnrollRequest, EnrollResponse};

use crate::state::{AgentConfig, StateDir, StateError, DEFAULT_INTERVAL_SECS};
use crate::AgentError;

/// Enrols this device with `server` using `code`; saves the key and `agent.toml`
/// only when the server accepted. Refuses when the device is enrolled already,
/// unless `force` (a new key replaces the old one).
pub async fn enroll(
    state: &StateDir,
    server: &str,
    code: &str,
    force: bool,
) -> Result<AgentConfig, AgentError> {
    if state.is_enrolled() && !force {
        return Err(StateError::AlreadyEnrolled(state.path().display().to_string()).into());
    }
    if !(server.starts_with("https://") || server.starts_with("http://")) {
        return Err(AgentError::Usage(format!(
            "--server must be an http(s) URL, not {server:?}"
        )));
    }
    let key = StateDir::generate_key()?;
    let body = EnrollRequest {
        code: code.trim().to_string(),
        public_key: base64::engine::general_purpose::STANDARD
            .encode(key.verifying_key().as_bytes()),
    };
    let body = serde_json::to_vec(&body).map_err(|e| AgentError::Http(e.to_string()))?;
    let answer: EnrollResponse =
        crate::client::post_json(server, "/v1/devices/enroll", body, &[]).await?;
    let config = AgentConfig {
        server: server.trim_end_matches('/').to_string(),
        device_id: answer.device_id,
        owner: answer.owner,
        attestation_origins: answer.attestation_origins,
        interval_secs: DEFAULT_INTERVAL_SECS,
        attest_listen: crate::state::default_attest_listen(),
        location: false,
    };
    state.save_key(&key)?;
    state.reset_seq()?;
    state.save_config(&config)?;
    Ok(config)
}
