//! TOTP second factor (RFC 6238, SHA-1, 6 digits, 30 s), through the `totp-rs` crate.
//!
//! The directory stores each enrolled user's secret (base32); login flows of the
//! enforcement points check a code with [`verify`]. Enrolment hands the administrator
//! an `otpauth://` URL for the user's authenticator app.

use totp_rs::{Algorithm, Secret, TOTP};

/// Digits per code.
pub const DIGITS: usize = 6;
/// Seconds per code.
pub const STEP: u64 = 30;
/// Codes one step before or after are accepted (clock drift).
pub const SKEW: u8 = 1;

/// A new random secret (160 bits, as RFC 4226 recommends), base32-encoded.
pub fn new_secret() -> Result<String, String> {
    let mut bytes = [0u8; 20];
    getrandom::getrandom(&mut bytes).map_err(|e| e.to_string())?;
    Ok(base32(&bytes))
}

/// Unpadded RFC 4648 base32 of `bytes` (upper case), as TOTP secrets are
/// written; also the alphabet of enrolment codes and device ids.
pub(crate) fn base32(bytes: &[u8]) -> String {
    Secret::Raw(bytes.to_vec()).to_encoded().to_string()
}

fn totp(secret_b32: &str) -> Option<TOTP> {
    let bytes = Secret::Encoded(secret_b32.to_string()).to_bytes().ok()?;
    TOTP::new(Algorithm::SHA1, DIGITS, SKEW, STEP, bytes).ok()
}

/// True when `code` is valid for the secret at `unix_time` (± [`SKEW`] steps). A
/// malformed secret or code is never valid.
pub fn verify(secret_b32: &str, code: &str, unix_time: u64) -> bool {
    code.len() == DIGITS
        && code.bytes().all(|b| b.is_ascii_digit())
        && totp(secret_b32).is_some_and(|t| t.check(code, unix_time))
}

/// The `otpauth://` URL an authenticator app reads (usually as a QR code).
pub fn otpauth_url(secret_b32: &str, account: &str) -> String {
    use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
    // Everything but RFC 3986's unreserved characters.
    const ENCODED: &AsciiSet = &NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'.')
        .remove(b'_')
        .remove(b'~');
    format!(
        "otpauth://totp/RZTS:{}?secret={secret_b32}&issuer=RZTS&algorithm=SHA1&digits={DIGITS}&period={STEP}",
        utf8_percent_encode(account, ENCODED)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc6238_vector() {
        // RFC 6238 appendix B: ASCII "12345678901234567890", T = 59 s → 94287082 (8
        // digits); the 6-digit code is its last six digits.
        let secret = Secret::Raw(b"12345678901234567890".to_vec())
            .to_encoded()
            .to_string();
        assert!(verify(&secret, "287082", 59));
        assert!(!verify(&secret, "287083", 59));
        // Far outside the skew window.
        assert!(!verify(&secret, "287082", 59 + 10 * STEP));
    }

    #[test]
    fn fresh_secrets_work_and_garbage_is_refused() {
        let s = new_secret().unwrap();
        assert_eq!(s.len(), 32);
        let t = totp(&s).unwrap();
        let code = t.generate(1_800_000_000);
        assert!(verify(&s, &code, 1_800_000_000));
        assert!(!verify("not base32!", &code, 1_800_000_000));
        assert!(!verify(&s, "12345", 1_800_000_000));
        assert!(!verify(&s, "abcdef", 1_800_000_000));
        assert!(otpauth_url(&s, "田中@example").starts_with("otpauth://totp/RZTS:%E7%94%B0"));
    }
}
