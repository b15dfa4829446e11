//! Storage: one trait, two backends. Embedded SQLite (WAL) by default, PostgreSQL
//! when the configured URL says so (`postgres://...`). The same test suite runs
//! against both.
//!
//! The trait is synchronous on purpose: SQLite is, and the server calls the store
//! from `tokio::task::spawn_blocking`, so one shape serves both backends.

use crate::model::{AccessRecord, Device, Group, LogQuery, NewUser, User};

/// A storage failure.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The thing asked for does not exist.
    #[error("not found: {0}")]
    NotFound(String),
    /// It exists already.
    #[error("already exists: {0}")]
    Conflict(String),
    /// The database failed.
    #[error("database error: {0}")]
    Backend(String),
}

/// Everything the server persists.
pub trait Store: Send + Sync + 'static {
    /// Creates or upgrades the schema.
    fn migrate(&self) -> Result<(), StoreError>;

    /// Adds a user; `Conflict` when the id exists.
    fn create_user(&self, user: &NewUser) -> Result<User, StoreError>;
    /// A user by id.
    fn get_user(&self, id: &str) -> Result<Option<User>, StoreError>;
    /// All users, by id.
    fn list_users(&self) -> Result<Vec<User>, StoreError>;
    /// Enables or disables a user; `NotFound` for an unknown id.
    fn set_user_disabled(&self, id: &str, disabled: bool) -> Result<(), StoreError>;
    /// Replaces the password hash.
    fn set_user_password(&self, id: &str, password_hash: &str) -> Result<(), StoreError>;
    /// Sets or clears the TOTP secret.
    fn set_user_totp(&self, id: &str, secret: Option<&str>) -> Result<(), StoreError>;

    /// Adds a group; `Conflict` when it exists.
    fn create_group(&self, name: &str) -> Result<(), StoreError>;
    /// All groups with their members, by name.
    fn list_groups(&self) -> Result<Vec<Group>, StoreError>;
    /// Adds a user to a group (idempotent); `NotFound` for an unknown user or group.
    fn add_member(&self, group: &str, user: &str) -> Result<(), StoreError>;
    /// Removes a user from a group (idempotent).
    fn remove_member(&self, group: &str, user: &str) -> Result<(), StoreError>;
    /// The names of the groups a user belongs to, sorted.
    fn groups_of(&self, user: &str) -> Result<Vec<String>, StoreError>;

    /// Registers a device for an owner; `Conflict` when the id exists, `NotFound`
    /// for an unknown owner.
    fn register_device(&self, id: &str, owner: &str) -> Result<Device, StoreError>;
    /// A device by id.
    fn get_device(&self, id: &str) -> Result<Option<Device>, StoreError>;
    /// All devices, by id.
    fn list_devices(&self) -> Result<Vec<Device>, StoreError>;
    /// Stores a posture report as the device's latest and updates `last_seen`.
    fn record_posture(
        &self,
        id: &str,
        posture: &policy_core::context::Device,
        at: chrono::DateTime<chrono::Utc>,
    ) -> Result<(), StoreError>;
    /// Removes a device.
    fn delete_device(&self, id: &str) -> Result<(), StoreError>;

    /// Appends access records; when this returns `Ok` they are durable (committed
    /// and synced), so a decision may be acknowledged.
    fn append_access(&self, records: &[AccessRecord]) -> Result<(), StoreError>;
    /// Reads the access log, newest first.
    fn query_access(&self, query: &LogQuery) -> Result<Vec<AccessRecord>, StoreError>;
    /// A user's latest `n` accesses, newest first (for the anomaly detector).
    fn recent_access(&self, user: &str, n: usize) -> Result<Vec<AccessRecord>, StoreError>;
}
