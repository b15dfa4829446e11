//! The per-user limit on concurrent relayed connections.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Counts each user's open connections.
#[derive(Debug)]
pub struct UserLimits {
    max: usize,
    open: Mutex<HashMap<String, usize>>,
}

/// One counted connection; dropping it frees the slot.
#[derive(Debug)]
pub struct Slot {
    limits: Arc<UserLimits>,
    user: String,
}

impl UserLimits {
    /// At most `max` connections per user.
    pub fn new(max: usize) -> Arc<UserLimits> {
        Arc::new(UserLimits {
            max,
            open: Mutex::new(HashMap::new()),
        })
    }

    /// A slot for `user`, or `None` when the user is at the limit.
    pub fn acquire(self: &Arc<Self>, user: &str) -> Option<Slot> {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        let n = open.entry(user.to_string()).or_insert(0);
        if *n >= self.max {
            return None;
        }
        *n += 1;
        Some(Slot {
            limits: self.clone(),
            user: user.to_string(),
        })
    }

    /// The user's open connections.
    pub fn open(&self, user: &str) -> usize {
        let open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        open.get(user).copied().unwrap_or(0)
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut open = self.limits.open.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = open.get_mut(&self.user) {
            *n -= 1;
            if *n == 0 {
                open.remove(&self.user);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_counted_per_user_and_freed_on_drop() {
        let l = UserLimits::new(2);
        let a = l.acquire("tanaka").unwrap();
        let _b = l.acquire("tanaka").unwrap();
        assert!(l.acquire("tanaka").is_none());
        assert!(l.acquire("suzuki").is_some());
        drop(a);
        assert_eq!(l.open("tanaka"), 1);
        assert!(l.acquire("tanaka").is_some());
    }
}
