//! The posture: the spec §2 `device` object, exactly the request context type the
//! decision server evaluates ([`policy_core::context::Device`]), so a report can
//! carry nothing the policies do not know and every unknown attribute is absent.

pub use policy_core::context::Device as Posture;

/// The posture as pretty JSON (what `rzts-agent collect` prints).
pub fn to_pretty_json(p: &Posture) -> String {
    serde_json::to_string_pretty(p).unwrap_or_else(|_| "{}".to_string())
}

/// True when a new posture differs from the last one reported (or none was), so
/// `rzts-agent run` reports at once instead of waiting for the next period.
pub fn changed(last: Option<&Posture>, now: &Posture) -> bool {
    last != Some(now)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn change_detection() {
        let mut a = Posture::default();
        assert!(changed(None, &a));
        assert!(!changed(Some(&a.clone()), &a));
        let b = a.clone();
        a.firewall = Some(true);
        assert!(changed(Some(&b), &a));
    }
}
