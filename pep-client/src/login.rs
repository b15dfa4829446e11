//! The credential check an enforcement point asks the decision server for
//! (`POST /v1/pep/login`), and the subject it gets back.
//!
//! The subject is what the directory knows and the enforcement point cannot: the
//! user's groups, the device the user reported from this source address, and the
//! source country. The enforcement point adds the destination and the time, then
//! decides locally.

use std::net::IpAddr;

use policy_core::context::{Auth, Device, Request, Source, User};
use serde::{Deserialize, Serialize};

/// `POST /v1/pep/login` body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    /// The user id the client sent.
    pub user: String,
    /// The secret the client sent (for the SOCKS gateway: the user's proxy token).
    pub secret: String,
    /// The client's address as the enforcement point sees it; the server looks up
    /// the user's device reporting this address and the source country.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_ip: Option<IpAddr>,
}

/// A verified subject: the parts of a request context that the server fills.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Subject {
    /// Id, e-mail and groups from the directory.
    pub user: User,
    /// How the user proved who they are.
    pub auth: Auth,
    /// The user's registered device at the source address, with its latest
    /// posture; empty when none is known (device conditions are then unknown).
    #[serde(default, skip_serializing_if = "Device::is_empty")]
    pub device: Device,
    /// Source address and country.
    #[serde(default, skip_serializing_if = "Source::is_empty")]
    pub source: Source,
}

impl Subject {
    /// A request context holding this subject; the caller adds destination and time.
    pub fn request(&self) -> Request {
        Request {
            user: self.user.clone(),
            auth: self.auth.clone(),
            device: self.device.clone(),
            source: self.source.clone(),
            ..Request::default()
        }
    }
}
