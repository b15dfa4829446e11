//! `rzts serve` and the directory commands (`user`, `group`, `device`, `logs`).
//!
//! The directory commands open the server's store directly (the URL comes from the
//! same server config), so an administrator can manage users before the server ever
//! runs; SQLite in WAL mode lets them run beside a live server.

use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use clap::Subcommand;
use pdp_server::config::ServerConfig;
use pdp_server::model::{LogQuery, NewUser};
use pdp_server::store::{self, Store, StoreError};
use policy_core::decision::Effect;

/// An error of a server-side command (exit 2).
#[derive(Debug, thiserror::Error)]
pub enum DirectoryError {
    /// The server config could not be read.
    #[error("{0}")]
    Config(String),
    /// The store failed or refused.
    #[error("{0}")]
    Store(#[from] StoreError),
    /// Bad arguments.
    #[error("{0}")]
    Usage(String),
    /// The server failed.
    #[error("{0}")]
    Server(String),
}

/// `rzts user ...`
#[derive(Debug, Subcommand)]
pub enum UserCmd {
    /// Add a user; the password is read from standard input (one line) when
    /// `--password-stdin` is given, else the user has no password (SSO only).
    Add {
        /// Login id.
        id: String,
        /// E-mail address (alerts go here).
        #[arg(long)]
        email: String,
        /// Display name.
        #[arg(long)]
        name: Option<String>,
        /// Read the password from standard input.
        #[arg(long)]
        password_stdin: bool,
    },
    /// List users.
    List,
    /// Disable a user (denied everywhere).
    Disable {
        /// Login id.
        id: String,
    },
    /// Enable a user again.
    Enable {
        /// Login id.
        id: String,
    },
    /// Enrol a TOTP second factor: prints the otpauth:// URL for the user's
    /// authenticator app (shown once).
    Totp {
        /// Login id.
        id: String,
    },
    /// Issue the user's SOCKS gateway credential (printed once; replaces the old
    /// one), or revoke it. The user logs in to the gateway with the user id and
    /// this token.
    ProxyToken {
        /// Login id.
        id: String,
        /// Revoke the token instead of issuing one.
        #[arg(long)]
        revoke: bool,
    },
}

/// `rzts group ...`
#[derive(Debug, Subcommand)]
pub enum GroupCmd {
    /// Add a group.
    Add {
        /// Group name as policies spell it (経理部).
        name: String,
    },
    /// List groups with their members.
    List,
    /// Add a user to a group.
    AddMember {
        /// Group name.
        group: String,
        /// User id.
        user: String,
    },
    /// Remove a user from a group.
    RemoveMember {
        /// Group name.
        group: String,
        /// User id.
        user: String,
    },
}

/// `rzts device ...`
#[derive(Debug, Subcommand)]
pub enum DeviceCmd {
    /// Register a device for its owner.
    Register {
        /// Device id.
        id: String,
        /// Owner's user id.
        #[arg(long)]
        owner: String,
    },
    /// Issue a one-time enrolment code for a device agent (`rzts-agent enroll
    /// --server URL --code CODE` on the device); the code is shown once, stored
    /// only as a hash, single use, and expires.
    Enroll {
        /// The future device's owner (user id).
        #[arg(long)]
        owner: String,
        /// Register the device under this id (default: generated at enrolment;
        /// an existing device of the same owner is re-keyed).
        #[arg(long)]
        id: Option<String>,
        /// Minutes until the code expires.
        #[arg(long, default_value_t = pdp_server::devices::DEFAULT_CODE_TTL_MINUTES)]
        ttl_minutes: u32,
    },
    /// List devices with their last report time.
    List,
    /// Remove a device.
    Remove {
        /// Device id.
        id: String,
    },
}

/// `rzts logs` filters.
#[derive(Debug, clap::Args)]
pub struct LogsArgs {
    /// Only this user.
    #[arg(long)]
    pub user: Option<String>,
    /// Only this target (app, or domain:port).
    #[arg(long)]
    pub target: Option<String>,
    /// Only allow or deny.
    #[arg(long, value_parser = ["allow", "deny"])]
    pub decision: Option<String>,
    /// Only records at or after this RFC 3339 time.
    #[arg(long)]
    pub since: Option<String>,
    /// At most this many records (newest first).
    #[arg(long, default_value_t = 100)]
    pub limit: usize,
    /// Print JSON lines (for a SIEM) instead of a table.
    #[arg(long)]
    pub jsonl: bool,
}

fn load_config(path: Option<&Path>) -> Result<ServerConfig, DirectoryError> {
    // The same file `rzts serve` reads, enforcement-point tables included.
    crate::serve::load(path).map(|c| c.server)
}

fn open_store(config: Option<&Path>) -> Result<Arc<dyn Store>, DirectoryError> {
    let cfg = load_config(config)?;
    std::fs::create_dir_all(&cfg.data_dir)
        .map_err(|e| DirectoryError::Config(format!("{}: {e}", cfg.data_dir.display())))?;
    let store = store::open(&cfg.store_url())?;
    store.migrate()?;
    Ok(store)
}

pub fn user(config: Option<PathBuf>, cmd: UserCmd) -> Result<ExitCode, DirectoryError> {
    let store = open_store(config.as_deref())?;
    match cmd {
        UserCmd::Add {
            id,
            email,
            name,
            password_stdin,
        } => {
            let password_hash = if password_stdin {
                let mut s = String::new();
                std::io::stdin()
                    .read_to_string(&mut s)
                    .map_err(|e| DirectoryError::Usage(e.to_string()))?;
                let pw = s.lines().next().unwrap_or_default();
                pdp_server::api::admin::password_acceptable(pw).map_err(|why| {
                    DirectoryError::Usage(format!("password {why} (パスワードは 8〜1024 文字)"))
                })?;
                Some(pdp_server::api::admin::hash_password(pw).map_err(DirectoryError::Usage)?)
            } else {
                None
            };
            let u = store.create_user(&NewUser {
                display_name: name.unwrap_or_else(|| id.clone()),
                id,
                email,
                password_hash,
            })?;
            println!("ユーザ {} を追加しました", u.id);
        }
        UserCmd::List => {
            for u in store.list_users()? {
                let state = if u.disabled { "無効" } else { "有効" };
                println!("{}\t{}\t{}\t{state}", u.id, u.email, u.display_name);
            }
        }
        UserCmd::Disable { id } => {
            store.set_user_disabled(&id, true)?;
            println!("ユーザ {id} を無効にしました");
        }
        UserCmd::Enable { id } => {
            store.set_user_disabled(&id, false)?;
            println!("ユーザ {id} を有効にしました");
        }
        UserCmd::Totp { id } => {
            let secret = pdp_server::totp::new_secret().map_err(DirectoryError::Usage)?;
            store.set_user_totp(&id, Some(&secret))?;
            println!("{}", pdp_server::totp::otpauth_url(&secret, &id));
        }
        UserCmd::ProxyToken { id, revoke: true } => {
            store.set_proxy_credential(&id, None)?;
            println!("{id} のプロキシトークンを無効にしました");
        }
        UserCmd::ProxyToken { id, revoke: false } => {
            // Only the SHA-256 is stored; the token is printed this once.
            let token = pdp_server::config::random_token()
                .map_err(|e| DirectoryError::Usage(e.to_string()))?;
            let digest = pdp_server::api::pep::token_digest(&token);
            store.set_proxy_credential(&id, Some(&digest))?;
            println!("{token}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub fn group(config: Option<PathBuf>, cmd: GroupCmd) -> Result<ExitCode, DirectoryError> {
    let store = open_store(config.as_deref())?;
    match cmd {
        GroupCmd::Add { name } => {
            store.create_group(&name)?;
            println!("グループ {name} を追加しました");
        }
        GroupCmd::List => {
            for g in store.list_groups()? {
                println!("{}\t{}", g.name, g.members.join(","));
            }
        }
        GroupCmd::AddMember { group, user } => {
            store.add_member(&group, &user)?;
            println!("{user} を {group} に追加しました");
        }
        GroupCmd::RemoveMember { group, user } => {
            store.remove_member(&group, &user)?;
            println!("{user} を {group} から外しました");
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub fn device(config: Option<PathBuf>, cmd: DeviceCmd) -> Result<ExitCode, DirectoryError> {
    let store = open_store(config.as_deref())?;
    match cmd {
        DeviceCmd::Register { id, owner } => {
            store.register_device(&id, &owner)?;
            println!("デバイス {id}（所有者 {owner}）を登録しました");
        }
        DeviceCmd::Enroll {
            owner,
            id,
            ttl_minutes,
        } => {
            let issued = pdp_server::devices::issue_enrollment(&owner, id.as_deref(), ttl_minutes)
                .map_err(|e| DirectoryError::Usage(e.to_string()))?;
            store.create_enrollment(&issued.record)?;
            println!("{}", issued.code);
            eprintln!(
                "登録コード（1 回限り、{} まで有効、所有者 {owner}）。デバイスで実行: rzts-agent enroll --server <URL> --code {}",
                issued.record.expires_at.to_rfc3339(),
                issued.code
            );
        }
        DeviceCmd::List => {
            for d in store.list_devices()? {
                let seen = d
                    .last_seen
                    .map_or("報告なし".to_string(), |t| t.to_rfc3339());
                println!("{}\t{}\t{seen}", d.id, d.owner);
            }
        }
        DeviceCmd::Remove { id } => {
            store.delete_device(&id)?;
            println!("デバイス {id} を削除しました");
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub fn logs(config: Option<PathBuf>, args: LogsArgs) -> Result<ExitCode, DirectoryError> {
    let store = open_store(config.as_deref())?;
    let since = match &args.since {
        Some(s) => Some(
            chrono::DateTime::parse_from_rfc3339(s)
                .map_err(|e| DirectoryError::Usage(format!("--since {s:?}: {e}")))?
                .with_timezone(&chrono::Utc),
        ),
        None => None,
    };
    let decision = match args.decision.as_deref() {
        Some("allow") => Some(Effect::Allow),
        Some("deny") => Some(Effect::Deny),
        _ => None,
    };
    let records = store.query_access(&LogQuery {
        user: args.user,
        target: args.target,
        decision,
        since,
        limit: Some(args.limit),
    })?;
    for r in records {
        if args.jsonl {
            println!("{}", serde_json::to_string(&r).unwrap_or_default());
        } else {
            let d = match r.decision {
                Effect::Allow => "allow",
                Effect::Deny => "deny",
            };
            let codes: Vec<&str> = r.reason_codes().collect();
            let messages: Vec<&str> = r
                .reasons
                .iter()
                .map(|x| &*x.message)
                .filter(|m| !m.is_empty())
                .collect();
            println!(
                "{}\t{}\t{}\t{}\t{d}\t{}\t{}\t{}",
                r.time.to_rfc3339(),
                r.decision_id,
                r.user.as_deref().unwrap_or("-"),
                r.target,
                r.country.as_deref().unwrap_or("-"),
                codes.join(","),
                messages.join(" / ")
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
