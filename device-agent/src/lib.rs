//! # rzts-device-agent
//!
//! The RZTS device agent (`rzts-agent`): enrols a device with the administrator's
//! one-time code (an ed25519 key pair of its own), collects the device's security
//! posture (spec §2 `device.*`) and reports it to the decision server, signed and
//! replay-protected, periodically and on change; and answers login pages that ask
//! which enrolled device they run on (loopback attestation). See `README.md`.
//!
//! | module | job |
//! |---|---|
//! | [`posture`] | the reported object: the spec §2 `device` type |
//! | [`collect`] | one [`collect::Collector`] per OS (Linux, Windows, macOS) and the tool runner |
//! | [`state`] | the state directory: key, configuration, sequence counter (mode 0600) |
//! | [`enroll`] | enrolment with a one-time code |
//! | [`client`] | JSON POSTs to the server, refusals as [`AgentError::Refused`] |
//! | [`report`] | signed posture reports |
//! | [`attest`] | the loopback attestation endpoint |
//! | [`run`] | the periodic loop of `rzts-agent run` |
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod attest;
pub mod client;
pub mod collect;
pub mod enroll;
pub mod posture;
pub mod report;
pub mod run;
pub mod state;

/// Why an agent command failed.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// The state directory.
    #[error(transparent)]
    State(#[from] state::StateError),
    /// The server could not be reached or answered nonsense.
    #[error("server unreachable: {0}")]
    Http(String),
    /// The server refused (4xx/5xx).
    #[error("the server refused ({status} {code}): {message}")]
    Refused {
        /// HTTP status.
        status: u16,
        /// The server's error code (`code_used`, `bad_signature`, ...).
        code: String,
        /// The server's message.
        message: String,
    },
    /// Bad arguments or settings.
    #[error("{0}")]
    Usage(String),
}
