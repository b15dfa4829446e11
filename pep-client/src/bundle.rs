//! Signed policy bundles: what `GET /v1/bundle` serves so that enforcement points
//! linking policy-core can decide locally, and how they check it.
//!
//! A bundle is JSON:
//!
//! ```json
//! {"version": 3, "timezone": "Asia/Tokyo", "lock": "<the lock file's TOML>",
//!  "signature": "<base64 ed25519 signature>", "key_id": "<16 hex digits>"}
//! ```
//!
//! The signature covers [`canonical_bytes`]: a domain-separation tag, the version,
//! the time zone, the key id and the lock text, each but the last ended by a
//! newline. A PEP fetches the server's public key once (`GET /v1/bundle/key`, or
//! configured out of band) and calls [`verify_bundle`] on every bundle it receives.
//!
//! The server signs with `pdp_server::bundle::Signer`; this module holds only what a
//! PEP needs to check, so that an enforcement point never links the server.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use ed25519_dalek::{Signature, VerifyingKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use policy_core::lock::{CompiledPolicy, LockError, Lockfile};

/// The tag that starts the signed bytes, so a bundle signature can never be
/// mistaken for a signature over anything else.
pub const SIGNATURE_CONTEXT: &str = "rzts-policy-bundle/1";

/// A bundle that cannot be trusted or read.
#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    /// Not the bundle JSON shape.
    #[error("malformed bundle: {0}")]
    Malformed(String),
    /// Signed by another key than the one given.
    #[error("bundle signed by key {got}, expected {expected}")]
    WrongKey {
        /// The bundle's key id.
        got: String,
        /// The key id of the public key given.
        expected: String,
    },
    /// The signature does not verify: the bundle was altered or forged.
    #[error("bundle signature does not verify")]
    BadSignature,
    /// The signed lock is not a valid lock.
    #[error("bundle lock is invalid: {0}")]
    Lock(String),
    /// A key file could not be read or written, or holds no valid key.
    #[error("signing key {path}: {why}")]
    Key {
        /// The file.
        path: String,
        /// What went wrong.
        why: String,
    },
}

/// The bundle as sent on the wire.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BundleWire {
    /// Increases by one each time the compiled rules change.
    pub version: u64,
    /// The time zone of clock conditions.
    pub timezone: String,
    /// The lock file's TOML text.
    pub lock: String,
    /// base64 ed25519 signature over [`canonical_bytes`].
    pub signature: String,
    /// Which key signed ([`key_id`] of its public key).
    pub key_id: String,
}

/// The public key as `GET /v1/bundle/key` serves it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublicKeyInfo {
    /// Always `ed25519`.
    pub algorithm: String,
    /// [`key_id`] of the key.
    pub key_id: String,
    /// The 32-byte public key, base64.
    pub public_key: String,
}

impl PublicKeyInfo {
    /// The raw key, checking that the id matches it.
    pub fn key(&self) -> Result<[u8; 32], BundleError> {
        if self.algorithm != "ed25519" {
            return Err(BundleError::Malformed(format!(
                "unsupported key algorithm {:?}",
                self.algorithm
            )));
        }
        let raw = B64
            .decode(self.public_key.trim())
            .map_err(|e| BundleError::Malformed(format!("public_key: {e}")))?;
        let key: [u8; 32] = raw
            .try_into()
            .map_err(|_| BundleError::Malformed("public_key: not 32 bytes".into()))?;
        if key_id(&key) != self.key_id {
            return Err(BundleError::Malformed(
                "key_id does not match public_key".into(),
            ));
        }
        Ok(key)
    }
}

/// A verified bundle.
#[derive(Debug, Clone, PartialEq)]
pub struct Bundle {
    /// The bundle version.
    pub version: u64,
    /// The time zone of clock conditions.
    pub timezone: String,
    /// The signing key's id.
    pub key_id: String,
    /// The lock text exactly as signed.
    pub lock_text: String,
    /// The parsed lock.
    pub lock: Lockfile,
}

impl Bundle {
    /// The rules, ready to decide (checks every rule's seal and syntax).
    pub fn rules(&self) -> Result<CompiledPolicy, Vec<LockError>> {
        self.lock.rules()
    }
}

/// The short id of a public key: the first 16 hex digits of its SHA-256.
pub fn key_id(public_key: &[u8; 32]) -> String {
    Sha256::digest(public_key)
        .iter()
        .take(8)
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The bytes a bundle signature covers.
pub fn canonical_bytes(version: u64, timezone: &str, key_id: &str, lock: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(lock.len() + 96);
    for part in [SIGNATURE_CONTEXT, &version.to_string(), timezone, key_id] {
        out.extend_from_slice(part.as_bytes());
        out.push(b'\n');
    }
    out.extend_from_slice(lock.as_bytes());
    out
}

/// Checks a bundle's signature with the server's public key and reads its lock.
/// Any change to the version, time zone, key id or lock text makes it fail.
pub fn verify_bundle(bytes: &[u8], public_key: &[u8; 32]) -> Result<Bundle, BundleError> {
    let wire: BundleWire =
        serde_json::from_slice(bytes).map_err(|e| BundleError::Malformed(e.to_string()))?;
    let expected = key_id(public_key);
    if wire.key_id != expected {
        return Err(BundleError::WrongKey {
            got: wire.key_id,
            expected,
        });
    }
    let key = VerifyingKey::from_bytes(public_key)
        .map_err(|e| BundleError::Malformed(format!("public key: {e}")))?;
    let sig_bytes = B64
        .decode(wire.signature.trim())
        .map_err(|_| BundleError::BadSignature)?;
    let sig = Signature::from_slice(&sig_bytes).map_err(|_| BundleError::BadSignature)?;
    let msg = canonical_bytes(wire.version, &wire.timezone, &wire.key_id, &wire.lock);
    key.verify_strict(&msg, &sig)
        .map_err(|_| BundleError::BadSignature)?;
    let lock = Lockfile::from_toml_str(&wire.lock).map_err(|e| BundleError::Lock(e.to_string()))?;
    if lock.timezone != wire.timezone {
        return Err(BundleError::Lock(format!(
            "timezone {:?} differs from the lock's {:?}",
            wire.timezone, lock.timezone
        )));
    }
    let errors = lock.verify_integrity();
    if !errors.is_empty() {
        let msgs: Vec<String> = errors.iter().map(ToString::to_string).collect();
        return Err(BundleError::Lock(msgs.join("; ")));
    }
    Ok(Bundle {
        version: wire.version,
        timezone: wire.timezone,
        key_id: wire.key_id,
        lock_text: wire.lock,
        lock,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::{Signer as _, SigningKey};

    const LOCK: &str = "version = 1\ntimezone = \"Asia/Tokyo\"\n";

    fn sign(seed: u8, version: u64, lock: &str) -> (Vec<u8>, [u8; 32]) {
        let key = SigningKey::from_bytes(&[seed; 32]);
        let public = key.verifying_key().to_bytes();
        let id = key_id(&public);
        let sig = key.sign(&canonical_bytes(version, "Asia/Tokyo", &id, lock));
        let wire = BundleWire {
            version,
            timezone: "Asia/Tokyo".into(),
            lock: lock.into(),
            signature: B64.encode(sig.to_bytes()),
            key_id: id,
        };
        (serde_json::to_vec(&wire).unwrap(), public)
    }

    #[test]
    fn verifies_and_reads_the_lock() {
        let (body, key) = sign(1, 5, LOCK);
        let v = verify_bundle(&body, &key).unwrap();
        assert_eq!(v.version, 5);
        assert_eq!(v.lock_text, LOCK);
        assert!(v.rules().unwrap().apps.is_empty());
    }

    #[test]
    fn any_change_breaks_the_signature() {
        let (body, key) = sign(2, 1, LOCK);
        let mut wire: BundleWire = serde_json::from_slice(&body).unwrap();
        wire.lock.push('\n');
        let bytes = serde_json::to_vec(&wire).unwrap();
        assert!(matches!(
            verify_bundle(&bytes, &key),
            Err(BundleError::BadSignature)
        ));
        let mut wire: BundleWire = serde_json::from_slice(&body).unwrap();
        wire.version = 2;
        let bytes = serde_json::to_vec(&wire).unwrap();
        assert!(matches!(
            verify_bundle(&bytes, &key),
            Err(BundleError::BadSignature)
        ));
        let (_, other) = sign(3, 1, LOCK);
        assert!(matches!(
            verify_bundle(&body, &other),
            Err(BundleError::WrongKey { .. })
        ));
        assert!(matches!(
            verify_bundle(b"{not json", &key),
            Err(BundleError::Malformed(_))
        ));
    }

    #[test]
    fn public_key_info_checks_the_id() {
        let key = SigningKey::from_bytes(&[4; 32]).verifying_key().to_bytes();
        let mut info = PublicKeyInfo {
            algorithm: "ed25519".into(),
            key_id: key_id(&key),
            public_key: B64.encode(key),
        };
        assert_eq!(info.key().unwrap(), key);
        info.key_id = "0000000000000000".into();
        assert!(info.key().is_err());
    }
}
