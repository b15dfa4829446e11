//! The admin API (`Authorization: Bearer <admin token>`).
//!
//! | route | body | answer |
//! |---|---|---|
//! | `GET /v1/admin/users` | | `{"users": [...]}` |
//! | `POST /v1/admin/users` | `{"id", "email", "display_name"?, "password"?}` | 201, the user |
//! | `GET /v1/admin/users/{id}` | | the user |
//! | `POST /v1/admin/users/{id}/disable`, `.../enable` | | `{"id", "disabled"}` |
//! | `POST /v1/admin/users/{id}/password` | `{"password"}` | `{"id"}` |
//! | `POST /v1/admin/users/{id}/totp` | - | `{"id", "secret", "otpauth_url"}` (enrols TOTP; shown once) |
//! | `DELETE /v1/admin/users/{id}/totp` | - | `{"id"}` (removes TOTP) |
//! | `POST /v1/admin/users/{id}/proxy-token` | - | `{"id", "proxy_token"}` (new SOCKS gateway credential, replaces the old one; shown once) |
//! | `DELETE /v1/admin/users/{id}/proxy-token` | - | `{"id"}` (revokes it) |
//! | `GET /v1/admin/groups` | | `{"groups": [{"name", "members"}]}` |
//! | `POST /v1/admin/groups` | `{"name"}` | 201 |
//! | `POST /v1/admin/groups/{name}/members` | `{"user"}` | the group |
//! | `DELETE /v1/admin/groups/{name}/members/{user}` | | the group |
//! | `GET /v1/admin/devices` | | `{"devices": [...]}` |
//! | `POST /v1/admin/devices` | `{"id", "owner"}` | 201, the device |
//! | `POST /v1/admin/devices/enroll` | `{"owner", "id"?, "ttl_minutes"?}` | 201 `{"code", "owner", "device_id", "expires_at"}`: a one-time enrolment code for `rzts-agent enroll` (shown once, default 60 minutes) |
//! | `GET`, `DELETE /v1/admin/devices/{id}` | | the device / `{"id"}` |
//! | `PUT /v1/admin/devices/{id}/posture` | a spec §2 `device` object | the device |
//! | `GET /v1/admin/apps` | | the compiled policy: each app's mode, texts, rules |
//!
//! Passwords are stored as argon2id PHC strings and never returned. Path segments
//! are percent-decoded (group names are Japanese).

use std::sync::Arc;

use hyper::body::Incoming;
use hyper::{Method, Request, StatusCode};
use serde::{Deserialize, Serialize};

use policy_core::decision::Slot;

use super::{blocking, json, parse_json, read_body, require_admin, ApiError, Resp};
use crate::model::{Device, Group, NewUser, User};
use crate::server::AppState;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateUser {
    id: String,
    email: String,
    #[serde(default)]
    display_name: Option<String>,
    #[serde(default)]
    password: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Password {
    password: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateGroup {
    name: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Member {
    user: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RegisterDevice {
    id: String,
    owner: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EnrollDevice {
    owner: String,
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    ttl_minutes: Option<u32>,
}

#[derive(Serialize)]
struct Users {
    users: Vec<User>,
}

#[derive(Serialize)]
struct Groups {
    groups: Vec<Group>,
}

#[derive(Serialize)]
struct Devices {
    devices: Vec<Device>,
}

#[derive(Serialize)]
struct UserState<'a> {
    id: &'a str,
    disabled: bool,
}

#[derive(Serialize)]
struct Id<'a> {
    id: &'a str,
}

#[derive(Serialize)]
struct SlotInfo {
    text: String,
    rule: String,
    japanese: String,
    translator: String,
}

#[derive(Serialize)]
struct AppInfo {
    name: String,
    mode: policy_core::policy::Mode,
    require: Option<SlotInfo>,
    deny: Option<SlotInfo>,
}

#[derive(Serialize)]
struct Apps {
    bundle_version: u64,
    timezone: String,
    apps: Vec<AppInfo>,
}

/// Checks a name used as an id: 1 to 128 characters, no control characters, no `/`.
fn check_name(field: &str, v: &str) -> Result<(), ApiError> {
    if v.trim().is_empty() || v.chars().count() > 128 {
        return Err(ApiError::field(field, "must be 1 to 128 characters"));
    }
    if v.chars().any(|c| c.is_control() || c == '/') || v.trim() != v {
        return Err(ApiError::field(
            field,
            "must not contain control characters, '/' or surrounding spaces",
        ));
    }
    Ok(())
}

/// The password rule of the directory (admin API and `rzts user add`): 8 to 1024
/// characters. `Err` says what is wrong.
pub fn password_acceptable(p: &str) -> Result<(), &'static str> {
    if p.chars().count() < 8 || p.len() > 1024 {
        return Err("must be 8 to 1024 characters");
    }
    Ok(())
}

fn check_password(field: &str, p: &str) -> Result<(), ApiError> {
    password_acceptable(p).map_err(|why| ApiError::field(field, why))
}

/// An argon2id PHC string for a password (CPU-heavy: call off the async threads).
pub fn hash_password(password: &str) -> Result<String, String> {
    use argon2::password_hash::{PasswordHasher as _, SaltString};
    let mut salt = [0u8; 16];
    getrandom::getrandom(&mut salt).map_err(|e| e.to_string())?;
    let salt = SaltString::encode_b64(&salt).map_err(|e| e.to_string())?;
    argon2::Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| e.to_string())
}

/// [`hash_password`] on a blocking thread.
async fn hash_off_thread(password: String) -> Result<String, ApiError> {
    tokio::task::spawn_blocking(move || hash_password(&password))
        .await
        .map_err(ApiError::internal)?
        .map_err(ApiError::internal)
}

/// Checks a password against an argon2 PHC string.
pub fn verify_password(password: &str, phc: &str) -> bool {
    use argon2::password_hash::{PasswordHash, PasswordVerifier as _};
    PasswordHash::new(phc).is_ok_and(|h| {
        argon2::Argon2::default()
            .verify_password(password.as_bytes(), &h)
            .is_ok()
    })
}

fn group_of(groups: Vec<Group>, name: &str) -> Result<Group, ApiError> {
    groups
        .into_iter()
        .find(|g| g.name == name)
        .ok_or_else(|| ApiError::not_found(format!("no such group: {name}")))
}

fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "method not allowed on this admin resource",
    )
}

/// Removes `user` from group `name` (the user in the path or in the body) and
/// answers the group.
async fn remove_member(state: &AppState, name: &str, user: &str) -> Result<Resp, ApiError> {
    let (g, u) = (name.to_string(), user.to_string());
    let groups = blocking(state, move |s| {
        s.remove_member(&g, &u)?;
        s.list_groups()
    })
    .await?;
    state.enricher.invalidate_user(user);
    Ok(json(StatusCode::OK, &group_of(groups, name)?))
}

/// Routes `/v1/admin/{rest...}`.
pub async fn route(
    state: &Arc<AppState>,
    req: Request<Incoming>,
    method: &Method,
    rest: &[String],
) -> Result<Resp, ApiError> {
    require_admin(state, &req)?;
    let limit = state.config.max_body_bytes;
    let seg: Vec<&str> = rest.iter().map(String::as_str).collect();
    match (method.clone(), seg.as_slice()) {
        (Method::GET, ["users"]) => {
            let users = blocking(state, |s| s.list_users()).await?;
            Ok(json(StatusCode::OK, &Users { users }))
        }
        (Method::POST, ["users"]) => {
            let b: CreateUser = parse_json(&read_body(req, limit).await?)?;
            check_name("id", &b.id)?;
            if !b.email.contains('@') || b.email.trim() != b.email || b.email.len() > 254 {
                return Err(ApiError::field("email", "not an e-mail address"));
            }
            if let Some(p) = &b.password {
                check_password("password", p)?;
            }
            let password_hash = match b.password {
                Some(p) => Some(hash_off_thread(p).await?),
                None => None,
            };
            let new = NewUser {
                display_name: b.display_name.unwrap_or_else(|| b.id.clone()),
                id: b.id,
                email: b.email,
                password_hash,
            };
            let user = blocking(state, move |s| s.create_user(&new)).await?;
            state.enricher.invalidate_user(&user.id);
            Ok(json(StatusCode::CREATED, &user))
        }
        (Method::GET, ["users", id]) => {
            let id = id.to_string();
            let what = id.clone();
            match blocking(state, move |s| s.get_user(&id)).await? {
                Some(u) => Ok(json(StatusCode::OK, &u)),
                None => Err(ApiError::not_found(format!("no such user: {what}"))),
            }
        }
        (Method::POST, ["users", id, action @ ("disable" | "enable")]) => {
            let disabled = *action == "disable";
            let uid = id.to_string();
            blocking(state, move |s| s.set_user_disabled(&uid, disabled)).await?;
            state.enricher.invalidate_user(id);
            Ok(json(StatusCode::OK, &UserState { id, disabled }))
        }
        (Method::POST | Method::PUT, ["users", id, "password"]) => {
            let b: Password = parse_json(&read_body(req, limit).await?)?;
            check_password("password", &b.password)?;
            let hash = hash_off_thread(b.password).await?;
            let uid = id.to_string();
            blocking(state, move |s| s.set_user_password(&uid, &hash)).await?;
            Ok(json(StatusCode::OK, &Id { id }))
        }
        (Method::POST, ["users", id, "totp"]) => {
            // Enrol (or re-enrol) a TOTP second factor: the new secret is returned once.
            let secret = crate::totp::new_secret().map_err(ApiError::internal)?;
            let (uid, sec) = (id.to_string(), secret.clone());
            blocking(state, move |s| s.set_user_totp(&uid, Some(&sec))).await?;
            let url = crate::totp::otpauth_url(&secret, id);
            Ok(json(
                StatusCode::OK,
                &serde_json::json!({"id": id, "secret": secret, "otpauth_url": url}),
            ))
        }
        (Method::DELETE, ["users", id, "totp"]) => {
            let uid = id.to_string();
            blocking(state, move |s| s.set_user_totp(&uid, None)).await?;
            Ok(json(StatusCode::OK, &Id { id }))
        }
        (Method::POST, ["users", id, "proxy-token"]) => {
            // Only its SHA-256 is stored: the token is shown this once.
            let token = crate::config::random_token().map_err(ApiError::internal)?;
            let (uid, digest) = (id.to_string(), super::pep::token_digest(&token));
            blocking(state, move |s| s.set_proxy_credential(&uid, Some(&digest))).await?;
            Ok(json(
                StatusCode::OK,
                &serde_json::json!({"id": id, "proxy_token": token}),
            ))
        }
        (Method::DELETE, ["users", id, "proxy-token"]) => {
            let uid = id.to_string();
            blocking(state, move |s| s.set_proxy_credential(&uid, None)).await?;
            Ok(json(StatusCode::OK, &Id { id }))
        }
        (_, ["users", ..]) => Err(method_not_allowed()),

        (Method::GET, ["groups"]) => {
            let groups = blocking(state, |s| s.list_groups()).await?;
            Ok(json(StatusCode::OK, &Groups { groups }))
        }
        (Method::POST, ["groups"]) => {
            let b: CreateGroup = parse_json(&read_body(req, limit).await?)?;
            check_name("name", &b.name)?;
            let name = b.name.clone();
            blocking(state, move |s| s.create_group(&name)).await?;
            Ok(json(
                StatusCode::CREATED,
                &Group {
                    name: b.name,
                    members: Vec::new(),
                },
            ))
        }
        (Method::POST, ["groups", name, "members"]) => {
            let b: Member = parse_json(&read_body(req, limit).await?)?;
            check_name("user", &b.user)?;
            let (g, u) = (name.to_string(), b.user.clone());
            let groups = blocking(state, move |s| {
                s.add_member(&g, &u)?;
                s.list_groups()
            })
            .await?;
            state.enricher.invalidate_user(&b.user);
            Ok(json(StatusCode::OK, &group_of(groups, name)?))
        }
        (Method::DELETE, ["groups", name, "members", user]) => {
            remove_member(state, name, user).await
        }
        (Method::DELETE, ["groups", name, "members"]) => {
            let b: Member = parse_json(&read_body(req, limit).await?)?;
            remove_member(state, name, &b.user).await
        }
        (_, ["groups", ..]) => Err(method_not_allowed()),

        (Method::GET, ["devices"]) => {
            let devices = blocking(state, |s| s.list_devices()).await?;
            Ok(json(StatusCode::OK, &Devices { devices }))
        }
        (Method::POST, ["devices"]) => {
            let b: RegisterDevice = parse_json(&read_body(req, limit).await?)?;
            check_name("id", &b.id)?;
            check_name("owner", &b.owner)?;
            let (id, owner) = (b.id.clone(), b.owner);
            let d = blocking(state, move |s| s.register_device(&id, &owner)).await?;
            state.enricher.invalidate_device(&b.id);
            Ok(json(StatusCode::CREATED, &d))
        }
        (Method::POST, ["devices", "enroll"]) => {
            let b: EnrollDevice = parse_json(&read_body(req, limit).await?)?;
            check_name("owner", &b.owner)?;
            if let Some(id) = &b.id {
                check_name("id", id)?;
            }
            let ttl = b
                .ttl_minutes
                .unwrap_or(crate::devices::DEFAULT_CODE_TTL_MINUTES);
            let issued =
                crate::devices::issue_enrollment(&b.owner, b.id.as_deref(), ttl).map_err(|e| {
                    match e {
                        crate::devices::IssueError::Lifetime => {
                            ApiError::field("ttl_minutes", e.to_string())
                        }
                        crate::devices::IssueError::Randomness(_) => ApiError::internal(e),
                    }
                })?;
            let new = issued.record.clone();
            blocking(state, move |s| s.create_enrollment(&new)).await?;
            Ok(json(StatusCode::CREATED, &issued.answer()))
        }
        (Method::GET, ["devices", id]) => {
            let did = id.to_string();
            match blocking(state, move |s| s.get_device(&did)).await? {
                Some(d) => Ok(json(StatusCode::OK, &d)),
                None => Err(ApiError::not_found(format!("no such device: {id}"))),
            }
        }
        (Method::DELETE, ["devices", id]) => {
            let did = id.to_string();
            blocking(state, move |s| s.delete_device(&did)).await?;
            state.enricher.invalidate_device(id);
            Ok(json(StatusCode::OK, &Id { id }))
        }
        (Method::PUT, ["devices", id, "posture"]) => {
            let posture: policy_core::context::Device = parse_json(&read_body(req, limit).await?)?;
            if posture.id.as_deref().is_some_and(|x| x != *id) {
                return Err(ApiError::field(
                    "id",
                    "differs from the device id in the path",
                ));
            }
            let did = id.to_string();
            let posture = crate::devices::directory_posture(posture);
            let d = blocking(state, move |s| {
                s.record_posture(&did, &posture, chrono::Utc::now())?;
                s.get_device(&did)
            })
            .await?;
            state.enricher.invalidate_device(id);
            d.map(|d| json(StatusCode::OK, &d))
                .ok_or_else(|| ApiError::not_found(format!("no such device: {id}")))
        }
        (_, ["devices", ..]) => Err(method_not_allowed()),

        (Method::GET, ["apps"]) => Ok(json(StatusCode::OK, &apps(state))),
        (_, ["apps"]) => Err(method_not_allowed()),
        _ => Err(ApiError::not_found(format!(
            "no such admin endpoint: /v1/admin/{}",
            rest.join("/")
        ))),
    }
}

fn apps(state: &AppState) -> Apps {
    let p = state.policy.current();
    let apps = p
        .lock
        .apps
        .iter()
        .map(|(name, locked)| {
            let rules = p.compiled.apps.get(name).map(|(_, r)| r);
            let slot = |slot: Slot| {
                let l = locked.slot(slot)?;
                let compiled = rules.and_then(|r| match slot {
                    Slot::Require => r.require.as_ref(),
                    Slot::Deny => r.deny.as_ref(),
                });
                Some(SlotInfo {
                    text: l.text.clone(),
                    rule: l.rule.clone(),
                    japanese: compiled.map(|c| c.japanese()).unwrap_or_default(),
                    translator: l.translator.clone(),
                })
            };
            AppInfo {
                name: name.clone(),
                mode: locked.mode,
                require: slot(Slot::Require),
                deny: slot(Slot::Deny),
            }
        })
        .collect();
    Apps {
        bundle_version: p.version,
        timezone: p.lock.timezone.clone(),
        apps,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_hash_with_argon2id() {
        let h = hash_password("correct horse").unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(verify_password("correct horse", &h));
        assert!(!verify_password("wrong horse", &h));
    }

    #[test]
    fn names_are_checked() {
        assert!(check_name("id", "tanaka").is_ok());
        assert!(check_name("name", "経理部").is_ok());
        assert!(check_name("id", "").is_err());
        assert!(check_name("id", " x").is_err());
        assert!(check_name("id", "a/b").is_err());
    }
}
