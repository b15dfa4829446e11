//! The policy in force, and reloading it when its files change.
//!
//! At start the policy file is compiled with the offline translator, reusing every
//! rule of the lock beside it whose text is unchanged (so a lock made by an LLM
//! translator keeps its rules), and the lock is written back atomically when it
//! changed. Then the policy file and its lock are checked every
//! `reload_interval_ms`: on a change the policy is recompiled the same way. A
//! policy that fails to compile leaves the last good rules in force; the failure
//! is logged and shown by `GET /v1/status` and `/metrics` until a later change
//! compiles. The bundle version increases only when the compiled lock changes, and
//! is kept in `<data_dir>/bundle_state.json` so that it never goes back across
//! restarts.

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio::sync::watch;

use policy_core::lock::{self, CompiledPolicy, Lockfile};
use policy_core::policy::PolicyFile;
use policy_core::translate::OfflineTranslator;

use crate::bundle::{SignedBundle, Signer};
use crate::metrics::Metrics;
use crate::sha256_hex;

/// The compiled policy being served.
#[derive(Debug)]
pub struct PolicySnapshot {
    /// Bundle version of these rules.
    pub version: u64,
    /// The lock.
    pub lock: Lockfile,
    /// The lock's TOML text (what the bundle carries).
    pub lock_text: String,
    /// The rules, ready to decide.
    pub compiled: CompiledPolicy,
    /// When these rules were loaded.
    pub loaded_at: DateTime<Utc>,
}

/// Why the policy on disk is not in force.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReloadFailure {
    /// When the failure was seen.
    pub at: DateTime<Utc>,
    /// Every problem, each naming the app and slot where there is one.
    pub errors: Vec<String>,
}

impl std::fmt::Display for ReloadFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.errors.join("; "))
    }
}

/// What one check of the files found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReloadOutcome {
    /// The files are as last seen.
    Unchanged,
    /// The files changed but compile to the same lock (comments, formatting).
    SameRules,
    /// New rules are in force under this bundle version.
    Reloaded(u64),
    /// The files changed and do not compile; the last good rules stay.
    Failed(ReloadFailure),
}

#[derive(Debug, Default, Clone, Serialize, Deserialize)]
struct BundleState {
    version: u64,
    lock_sha256: String,
}

/// Holds the policy in force and its signed bundle.
pub struct PolicyManager {
    policy_path: PathBuf,
    lock_path: PathBuf,
    state_path: PathBuf,
    signer: Arc<Signer>,
    current: RwLock<Arc<PolicySnapshot>>,
    bundle_tx: watch::Sender<Arc<SignedBundle>>,
    last_error: Mutex<Option<ReloadFailure>>,
    seen: Mutex<[u8; 32]>,
}

impl std::fmt::Debug for PolicyManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PolicyManager")
            .field("policy_path", &self.policy_path)
            .field("version", &self.current().version)
            .finish_non_exhaustive()
    }
}

/// The two files' contents, as last read.
struct Files {
    policy: String,
    lock: Option<String>,
    fingerprint: [u8; 32],
}

fn read_files(policy_path: &Path, lock_path: &Path) -> Result<Files, String> {
    let policy = std::fs::read_to_string(policy_path)
        .map_err(|e| format!("{}: {e}", policy_path.display()))?;
    let lock = std::fs::read_to_string(lock_path).ok();
    let mut h = Sha256::new();
    h.update(policy.as_bytes());
    h.update([0xff]);
    if let Some(l) = &lock {
        h.update(l.as_bytes());
    }
    Ok(Files {
        policy,
        lock,
        fingerprint: h.finalize().into(),
    })
}

/// Compiles the policy text, reusing the on-disk lock's rules, else `fallback`'s.
fn compile(files: &Files, fallback: Option<&Lockfile>) -> Result<Lockfile, Vec<String>> {
    let policy = PolicyFile::from_toml_str(&files.policy).map_err(|e| vec![e.to_string()])?;
    let on_disk = files
        .lock
        .as_deref()
        .and_then(|t| Lockfile::from_toml_str(t).ok());
    let previous = on_disk.as_ref().or(fallback);
    let lock = lock::compile(&policy, &OfflineTranslator::new(), previous)
        .map_err(|errs| errs.iter().map(ToString::to_string).collect::<Vec<_>>())?;
    // What the server decides with must also pass the integrity check PEPs run.
    let errors = lock.verify_integrity();
    if !errors.is_empty() {
        return Err(errors.iter().map(ToString::to_string).collect());
    }
    Ok(lock)
}

impl PolicyManager {
    /// Compiles the policy at `policy_path` (blocking: may translate). The bundle
    /// version continues from `state_path`.
    pub fn load(
        policy_path: &Path,
        state_path: &Path,
        signer: Arc<Signer>,
    ) -> Result<PolicyManager, ReloadFailure> {
        let fail = |errors: Vec<String>| ReloadFailure {
            at: Utc::now(),
            errors,
        };
        let lock_path = lock::lock_path(policy_path);
        let files = read_files(policy_path, &lock_path).map_err(|e| fail(vec![e]))?;
        let lock = compile(&files, None).map_err(fail)?;
        let compiled = lock
            .rules()
            .map_err(|errs| fail(errs.iter().map(ToString::to_string).collect()))?;
        let lock_text = lock.to_toml_string();
        let sha = sha256_hex(lock_text.as_bytes());
        let state: BundleState = std::fs::read_to_string(state_path)
            .ok()
            .and_then(|s| serde_json::from_str(&s).ok())
            .unwrap_or_default();
        let version = if state.lock_sha256 == sha && state.version > 0 {
            state.version
        } else {
            state.version + 1
        };
        let mut seen = files.fingerprint;
        if files.lock.as_deref() != Some(lock_text.as_str()) {
            match lock.write_atomic(&lock_path) {
                Ok(()) => {
                    seen = read_files(policy_path, &lock_path)
                        .map(|f| f.fingerprint)
                        .unwrap_or(seen)
                }
                Err(e) => tracing::warn!(error = %e, "could not write the lock file"),
            }
        }
        save_state(state_path, version, &sha);
        let bundle = Arc::new(signer.sign(version, &lock.timezone, &lock_text));
        let (bundle_tx, _) = watch::channel(bundle);
        Ok(PolicyManager {
            policy_path: policy_path.to_path_buf(),
            lock_path,
            state_path: state_path.to_path_buf(),
            signer,
            current: RwLock::new(Arc::new(PolicySnapshot {
                version,
                lock,
                lock_text,
                compiled,
                loaded_at: Utc::now(),
            })),
            bundle_tx,
            last_error: Mutex::new(None),
            seen: Mutex::new(seen),
        })
    }

    /// The policy file.
    pub fn policy_path(&self) -> &Path {
        &self.policy_path
    }

    /// The rules in force.
    pub fn current(&self) -> Arc<PolicySnapshot> {
        self.current
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The signed bundle of the rules in force.
    pub fn bundle(&self) -> Arc<SignedBundle> {
        self.bundle_tx.borrow().clone()
    }

    /// Notified each time a new bundle is in force.
    pub fn subscribe(&self) -> watch::Receiver<Arc<SignedBundle>> {
        self.bundle_tx.subscribe()
    }

    /// The signer.
    pub fn signer(&self) -> &Signer {
        &self.signer
    }

    /// Why the policy on disk is not in force, if it is not.
    pub fn last_error(&self) -> Option<ReloadFailure> {
        self.last_error
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Checks the files once and reloads when they changed (blocking).
    pub fn check(&self) -> ReloadOutcome {
        let files = match read_files(&self.policy_path, &self.lock_path) {
            Ok(f) => f,
            Err(e) => {
                // A missing file is a failure once, not every interval.
                let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
                let fp: [u8; 32] = Sha256::digest(e.as_bytes()).into();
                if *seen == fp {
                    return ReloadOutcome::Unchanged;
                }
                *seen = fp;
                return self.fail(vec![e]);
            }
        };
        if *self.seen.lock().unwrap_or_else(|p| p.into_inner()) == files.fingerprint {
            return ReloadOutcome::Unchanged;
        }
        // An editor may be half-way through writing: wait until the files settle.
        std::thread::sleep(Duration::from_millis(100));
        match read_files(&self.policy_path, &self.lock_path) {
            Ok(again) if again.fingerprint == files.fingerprint => {}
            _ => return ReloadOutcome::Unchanged,
        }
        *self.seen.lock().unwrap_or_else(|p| p.into_inner()) = files.fingerprint;

        let current = self.current();
        let lock = match compile(&files, Some(&current.lock)) {
            Ok(l) => l,
            Err(errors) => return self.fail(errors),
        };
        let compiled = match lock.rules() {
            Ok(c) => c,
            Err(errs) => return self.fail(errs.iter().map(ToString::to_string).collect()),
        };
        let lock_text = lock.to_toml_string();
        if files.lock.as_deref() != Some(lock_text.as_str()) {
            match lock.write_atomic(&self.lock_path) {
                Ok(()) => {
                    if let Ok(f) = read_files(&self.policy_path, &self.lock_path) {
                        *self.seen.lock().unwrap_or_else(|p| p.into_inner()) = f.fingerprint;
                    }
                }
                Err(e) => tracing::warn!(error = %e, "could not write the lock file"),
            }
        }
        if lock_text == current.lock_text {
            self.clear_error();
            return ReloadOutcome::SameRules;
        }
        let version = current.version + 1;
        save_state(&self.state_path, version, &sha256_hex(lock_text.as_bytes()));
        let bundle = Arc::new(self.signer.sign(version, &lock.timezone, &lock_text));
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(PolicySnapshot {
            version,
            lock,
            lock_text,
            compiled,
            loaded_at: Utc::now(),
        });
        self.bundle_tx.send_replace(bundle);
        // Only now: whoever sees no error must also see the new rules in force.
        self.clear_error();
        ReloadOutcome::Reloaded(version)
    }

    fn clear_error(&self) {
        *self.last_error.lock().unwrap_or_else(|p| p.into_inner()) = None;
    }

    fn fail(&self, errors: Vec<String>) -> ReloadOutcome {
        let f = ReloadFailure {
            at: Utc::now(),
            errors,
        };
        *self.last_error.lock().unwrap_or_else(|p| p.into_inner()) = Some(f.clone());
        ReloadOutcome::Failed(f)
    }
}

fn save_state(path: &Path, version: u64, lock_sha256: &str) {
    let state = BundleState {
        version,
        lock_sha256: lock_sha256.to_string(),
    };
    let text = serde_json::to_string(&state).unwrap_or_default();
    let tmp = path.with_extension("json.tmp");
    let result = std::fs::write(&tmp, text).and_then(|()| std::fs::rename(&tmp, path));
    if let Err(e) = result {
        tracing::warn!(path = %path.display(), error = %e, "could not save the bundle version");
    }
}

/// Checks the policy files every `interval` until `shutdown` turns true.
pub async fn watch_loop(
    manager: Arc<PolicyManager>,
    metrics: Arc<Metrics>,
    interval: Duration,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = shutdown.changed() => return,
        }
        if *shutdown.borrow() {
            return;
        }
        let m = manager.clone();
        let outcome = match tokio::task::spawn_blocking(move || m.check()).await {
            Ok(o) => o,
            Err(e) => {
                tracing::error!(error = %e, "policy reload task failed");
                continue;
            }
        };
        match outcome {
            ReloadOutcome::Unchanged => {}
            ReloadOutcome::SameRules => {
                metrics.policy_error.store(0, Ordering::Relaxed);
                tracing::info!(policy = %manager.policy_path().display(), "policy file changed; rules unchanged");
            }
            ReloadOutcome::Reloaded(version) => {
                metrics.reloads.fetch_add(1, Ordering::Relaxed);
                metrics.policy_error.store(0, Ordering::Relaxed);
                metrics.bundle_version.store(version, Ordering::Relaxed);
                tracing::info!(policy = %manager.policy_path().display(), version, "policy reloaded");
            }
            ReloadOutcome::Failed(f) => {
                metrics.reload_errors.fetch_add(1, Ordering::Relaxed);
                metrics.policy_error.store(1, Ordering::Relaxed);
                tracing::error!(
                    policy = %manager.policy_path().display(),
                    error = %f,
                    "policy reload failed; keeping the last good rules"
                );
            }
        }
    }
}
