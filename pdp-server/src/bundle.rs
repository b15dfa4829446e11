//! Signing policy bundles: what `GET /v1/bundle` serves so that enforcement points
//! linking policy-core can decide locally.
//!
//! The format and the verifying side live in [`pep_client::bundle`] (re-exported
//! here), so an enforcement point checks bundles without linking the server.
//!
//! ```
//! use pdp_server::bundle::{verify_bundle, Signer};
//! let signer = Signer::from_seed([7u8; 32]);
//! let lock = "version = 1\ntimezone = \"Asia/Tokyo\"\n";
//! let signed = signer.sign(1, "Asia/Tokyo", lock);
//! let b = verify_bundle(&signed.body, &signer.public_key()).unwrap();
//! assert_eq!(b.version, 1);
//! let tampered = String::from_utf8(signed.body.to_vec()).unwrap().replace("\"version\":1", "\"version\":2");
//! assert!(verify_bundle(tampered.as_bytes(), &signer.public_key()).is_err());
//! ```

use std::path::Path;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use bytes::Bytes;
use ed25519_dalek::{Signer as _, SigningKey};

pub use pep_client::bundle::{
    canonical_bytes, key_id, verify_bundle, Bundle, BundleError, BundleWire, PublicKeyInfo,
    SIGNATURE_CONTEXT,
};

/// A serialised, signed bundle ready to serve.
#[derive(Debug, Clone)]
pub struct SignedBundle {
    /// The bundle version.
    pub version: u64,
    /// The `ETag` value, `"N"`.
    pub etag: String,
    /// The JSON body.
    pub body: Bytes,
}

/// The server's bundle signing key.
pub struct Signer {
    key: SigningKey,
    key_id: String,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signer")
            .field("key_id", &self.key_id)
            .finish_non_exhaustive()
    }
}

impl Signer {
    /// A signer from a 32-byte secret seed.
    pub fn from_seed(seed: [u8; 32]) -> Signer {
        let key = SigningKey::from_bytes(&seed);
        let key_id = key_id(&key.verifying_key().to_bytes());
        Signer { key, key_id }
    }

    /// A new random key.
    pub fn generate() -> Result<Signer, BundleError> {
        let mut seed = [0u8; 32];
        getrandom::getrandom(&mut seed).map_err(|e| BundleError::Key {
            path: "-".into(),
            why: format!("no randomness: {e}"),
        })?;
        Ok(Signer::from_seed(seed))
    }

    /// Loads the key at `path` (base64 of the 32-byte seed), or generates one and
    /// saves it there readable by the owner only. The flag is true when generated.
    pub fn load_or_generate(path: &Path) -> Result<(Signer, bool), BundleError> {
        let err = |why: String| BundleError::Key {
            path: path.display().to_string(),
            why,
        };
        match std::fs::read_to_string(path) {
            Ok(text) => {
                let raw = B64
                    .decode(text.trim())
                    .map_err(|e| err(format!("not base64: {e}")))?;
                let seed: [u8; 32] = raw
                    .try_into()
                    .map_err(|_| err("not a 32-byte ed25519 seed".into()))?;
                Ok((Signer::from_seed(seed), false))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let signer = Signer::generate()?;
                let text = format!("{}\n", B64.encode(signer.key.to_bytes()));
                crate::config::write_secret_file(path, text.as_bytes())
                    .map_err(|e| err(e.to_string()))?;
                Ok((signer, true))
            }
            Err(e) => Err(err(e.to_string())),
        }
    }

    /// The 32-byte public key.
    pub fn public_key(&self) -> [u8; 32] {
        self.key.verifying_key().to_bytes()
    }

    /// The key id.
    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    /// The public key as served by `GET /v1/bundle/key`.
    pub fn public_key_info(&self) -> PublicKeyInfo {
        PublicKeyInfo {
            algorithm: "ed25519".into(),
            key_id: self.key_id.clone(),
            public_key: B64.encode(self.public_key()),
        }
    }

    /// Signs a bundle.
    pub fn sign(&self, version: u64, timezone: &str, lock: &str) -> SignedBundle {
        let msg = canonical_bytes(version, timezone, &self.key_id, lock);
        let signature = self.key.sign(&msg);
        let wire = BundleWire {
            version,
            timezone: timezone.to_string(),
            lock: lock.to_string(),
            signature: B64.encode(signature.to_bytes()),
            key_id: self.key_id.clone(),
        };
        let body = serde_json::to_vec(&wire).unwrap_or_default();
        SignedBundle {
            version,
            etag: format!("\"{version}\""),
            body: Bytes::from(body),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOCK: &str = "version = 1\ntimezone = \"Asia/Tokyo\"\n";

    #[test]
    fn sign_and_verify_round_trip() {
        let s = Signer::from_seed([1; 32]);
        let b = s.sign(5, "Asia/Tokyo", LOCK);
        assert_eq!(b.etag, "\"5\"");
        let v = verify_bundle(&b.body, &s.public_key()).unwrap();
        assert_eq!(v.version, 5);
        let other = Signer::from_seed([3; 32]);
        assert!(verify_bundle(&b.body, &other.public_key()).is_err());
    }

    #[test]
    fn public_key_info_round_trips() {
        let s = Signer::from_seed([4; 32]);
        assert_eq!(s.public_key_info().key().unwrap(), s.public_key());
    }
}
