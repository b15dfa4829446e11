//! The lock file: per app and slot, the source text, its SHA-256, the translator that
//! produced the rule, the rule in canonical text, and the text each condition cites.
//!
//! Translation happens once: [`compile`] reuses every entry whose text is unchanged,
//! so a rule changes only when its text changes. [`Lockfile::verify`] detects a lock
//! that is stale (texts, apps, mode or time zone changed since) or hand-edited (each
//! entry carries a seal over its contents), and re-checks every rule, so `rzts check`
//! can prove in CI that the committed lock is exactly what the texts compile to.
//!
//! ```
//! use policy_core::{lock, policy::PolicyFile, translate::OfflineTranslator};
//! let p = PolicyFile::from_toml_str(r#"
//! [apps.github]
//! mode = "saml"
//! require = "多要素認証を利用していること"
//! "#).unwrap();
//! let l = lock::compile(&p, &OfflineTranslator::new(), None).unwrap();
//! assert!(l.verify(&p).is_ok());
//! let text = l.to_toml_string();
//! let again = lock::Lockfile::from_toml_str(&text).unwrap();
//! assert_eq!(again, l);
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::decision::{AppRules, Slot};
use crate::policy::{Mode, PolicyFile};
use crate::text::parse_rule;
use crate::translate::{verify, Checks, TranslateError, Translator};

/// The lock format version this build reads and writes.
pub const LOCK_VERSION: u32 = 1;

/// One compiled slot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LockedRule {
    /// The Japanese source text.
    pub text: String,
    /// SHA-256 of `text` (hex).
    pub sha256: String,
    /// Which translator produced `rule` (`offline/1`, `gemini/...`).
    pub translator: String,
    /// The rule in canonical text form.
    pub rule: String,
    /// For each condition of the rule, in order, the source text it was translated from.
    #[serde(default)]
    pub sources: Vec<String>,
    /// SHA-256 over the fields above; a mismatch means the entry was edited by hand.
    pub seal: String,
}

impl LockedRule {
    fn new(text: &str, translator: String, rule: String, sources: Vec<String>) -> LockedRule {
        let mut r = LockedRule {
            text: text.to_string(),
            sha256: sha256_hex(text.as_bytes()),
            translator,
            rule,
            sources,
            seal: String::new(),
        };
        r.seal = r.compute_seal();
        r
    }

    fn compute_seal(&self) -> String {
        let mut h = Sha256::new();
        for part in [&self.sha256, &self.translator, &self.rule] {
            h.update(part.as_bytes());
            h.update([0u8]);
        }
        for s in &self.sources {
            h.update(s.as_bytes());
            h.update([0u8]);
        }
        hex(&h.finalize())
    }
}

/// One app's compiled slots.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LockedApp {
    /// How the app is protected.
    pub mode: Mode,
    /// 必須条件, absent when the text is empty.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub require: Option<LockedRule>,
    /// 拒否条件, absent when the text is empty.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deny: Option<LockedRule>,
}

impl LockedApp {
    /// The entry of a slot.
    pub fn slot(&self, slot: Slot) -> Option<&LockedRule> {
        match slot {
            Slot::Require => self.require.as_ref(),
            Slot::Deny => self.deny.as_ref(),
        }
    }
}

/// A lock file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Lockfile {
    /// Format version.
    pub version: u32,
    /// The policy's time zone.
    pub timezone: String,
    /// Apps by name.
    #[serde(default)]
    pub apps: BTreeMap<String, LockedApp>,
}

/// Something wrong with a lock or with compiling one. Every variant names the app and
/// slot it concerns where there is one.
#[derive(Debug, Clone, thiserror::Error)]
pub enum LockError {
    /// The lock file is not valid TOML or not a lock.
    #[error("ロックファイルを読めません: {0}")]
    Corrupt(String),
    /// The lock was written by a newer or older format.
    #[error("ロックファイルの形式 {0} には対応していません（{LOCK_VERSION} のみ）")]
    Version(u32),
    /// The lock does not match the policy file.
    #[error("ロックファイルが古くなっています（{app} {slot}）: {why}。`rzts compile` を実行してください")]
    Stale {
        /// The app.
        app: String,
        /// `require`, `deny`, `mode` or `-`.
        slot: String,
        /// What differs.
        why: String,
    },
    /// An entry's seal does not match its contents.
    #[error("ロックファイルが手で編集されています（{app} {slot}）: 封印が一致しません")]
    HandEdited {
        /// The app.
        app: String,
        /// The slot.
        slot: Slot,
    },
    /// A stored rule does not parse or type-check.
    #[error("ロックファイルの規則が不正です（{app} {slot}）: {why}")]
    BadRule {
        /// The app.
        app: String,
        /// The slot.
        slot: Slot,
        /// The parser's or checker's message.
        why: String,
    },
    /// A text could not be translated.
    #[error("翻訳できません（{app} の{}）: {error}", slot.label_ja())]
    Translate {
        /// The app.
        app: String,
        /// The slot.
        slot: Slot,
        /// The translator's error.
        error: TranslateError,
    },
    /// Reading or writing the file failed.
    #[error("{path}: {why}")]
    Io {
        /// The file.
        path: String,
        /// The OS error.
        why: String,
    },
}

fn sha256_hex(b: &[u8]) -> String {
    hex(&Sha256::digest(b))
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Where the lock of a policy file lives: `policies.lock` beside `policies.toml`.
pub fn lock_path(policy: &Path) -> PathBuf {
    policy.with_extension("lock")
}

/// How compiling treated one slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SlotOutcome {
    /// The text was unchanged; the locked rule was kept without translating.
    Reused,
    /// The text was translated.
    Translated,
}

/// Compiles a policy: unchanged texts keep their locked rule (no translation),
/// changed or new texts are translated and verified ([`crate::translate::verify()`]
/// with [`Checks::basic`]: every condition cites its source, the rule type-checks).
/// All errors are collected, so one run shows every text that needs attention; on
/// any error no lock is returned.
pub fn compile(
    policy: &PolicyFile,
    translator: &dyn Translator,
    previous: Option<&Lockfile>,
) -> Result<Lockfile, Vec<LockError>> {
    compile_with_report(policy, translator, previous).map(|(l, _)| l)
}

/// Per app and slot, whether compiling reused or translated it.
pub type CompileReport = Vec<(String, Slot, SlotOutcome)>;

/// [`compile`], also reporting per app and slot whether it was reused or translated.
pub fn compile_with_report(
    policy: &PolicyFile,
    translator: &dyn Translator,
    previous: Option<&Lockfile>,
) -> Result<(Lockfile, CompileReport), Vec<LockError>> {
    compile_with_options(policy, translator, previous, &CompileOptions::default())
}

/// What [`compile_with_options`] reports while it works.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress<'a> {
    /// Translation is about to start: this many texts need it.
    Started {
        /// Texts to translate (unchanged ones are not counted).
        total: usize,
    },
    /// One text was translated (or failed to be).
    Finished {
        /// The app.
        app: &'a str,
        /// The slot.
        slot: Slot,
        /// Whether it succeeded.
        ok: bool,
    },
}

/// How to compile: how many texts to translate at once, and whom to tell.
#[derive(Clone, Copy, Default)]
pub struct CompileOptions<'a> {
    /// Translations running at once (0 and 1 both mean one at a time). Network
    /// translators benefit; the result does not depend on it.
    pub jobs: usize,
    /// Called as translation starts and as each text finishes (from worker threads).
    pub progress: Option<&'a (dyn Fn(Progress<'_>) + Sync)>,
}

impl std::fmt::Debug for CompileOptions<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CompileOptions")
            .field("jobs", &self.jobs)
            .field("progress", &self.progress.is_some())
            .finish()
    }
}

/// [`compile_with_report`] with a concurrency limit and progress reports. The lock
/// and the errors are the same, in the same order, whatever `jobs` is.
pub fn compile_with_options(
    policy: &PolicyFile,
    translator: &dyn Translator,
    previous: Option<&Lockfile>,
    options: &CompileOptions<'_>,
) -> Result<(Lockfile, CompileReport), Vec<LockError>> {
    // Which slots are reused and which need translating, in policy order.
    enum Plan {
        Reuse(LockedRule),
        Translate(usize),
    }
    let mut plans: Vec<(String, Slot, Plan)> = Vec::new();
    let mut work: Vec<(String, Slot, String)> = Vec::new();
    for (name, app) in &policy.apps {
        for slot in [Slot::Require, Slot::Deny] {
            let Some(text) = app.text(slot) else { continue };
            let sha = sha256_hex(text.as_bytes());
            let reusable = previous
                .and_then(|p| p.apps.get(name))
                .and_then(|a| a.slot(slot))
                .filter(|r| r.sha256 == sha && r.text == text && r.seal == r.compute_seal())
                .filter(|r| parse_rule(&r.rule).is_ok());
            let plan = match reusable {
                Some(r) => Plan::Reuse(r.clone()),
                None => {
                    work.push((name.clone(), slot, text.to_string()));
                    Plan::Translate(work.len() - 1)
                }
            };
            plans.push((name.clone(), slot, plan));
        }
    }

    let results = translate_all(translator, &work, options);

    let mut apps: BTreeMap<String, LockedApp> = BTreeMap::new();
    let mut errors = Vec::new();
    let mut report = Vec::new();
    for (name, app) in &policy.apps {
        apps.insert(
            name.clone(),
            LockedApp {
                mode: app.mode,
                require: None,
                deny: None,
            },
        );
    }
    let mut results: Vec<Option<Result<LockedRule, TranslateError>>> =
        results.into_iter().map(Some).collect();
    for (name, slot, plan) in plans {
        let entry = match plan {
            Plan::Reuse(r) => {
                report.push((name.clone(), slot, SlotOutcome::Reused));
                r
            }
            Plan::Translate(i) => match results.get_mut(i).and_then(Option::take) {
                Some(Ok(r)) => {
                    report.push((name.clone(), slot, SlotOutcome::Translated));
                    r
                }
                Some(Err(error)) => {
                    errors.push(LockError::Translate {
                        app: name.clone(),
                        slot,
                        error,
                    });
                    continue;
                }
                None => continue,
            },
        };
        if let Some(locked) = apps.get_mut(&name) {
            match slot {
                Slot::Require => locked.require = Some(entry),
                Slot::Deny => locked.deny = Some(entry),
            }
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok((
        Lockfile {
            version: LOCK_VERSION,
            timezone: policy.timezone().to_string(),
            apps,
        },
        report,
    ))
}

/// Translates and verifies one text into a lock entry.
fn translate_one(
    translator: &dyn Translator,
    text: &str,
    slot: Slot,
) -> Result<LockedRule, TranslateError> {
    let t = translator.translate(text, slot)?;
    verify(&t, slot, &Checks::basic())?;
    let sources = (0..t.spans.len())
        .map(|i| t.cited(i).unwrap_or_default().to_string())
        .collect();
    Ok(LockedRule::new(
        text,
        translator.id(),
        t.rule.to_string(),
        sources,
    ))
}

/// Translates every work item with at most `options.jobs` at once; results in the
/// order of `work`.
fn translate_all(
    translator: &dyn Translator,
    work: &[(String, Slot, String)],
    options: &CompileOptions<'_>,
) -> Vec<Result<LockedRule, TranslateError>> {
    let report = |p: Progress<'_>| {
        if let Some(f) = options.progress {
            f(p);
        }
    };
    report(Progress::Started { total: work.len() });
    let run = |(app, slot, text): &(String, Slot, String)| {
        let r = translate_one(translator, text, *slot);
        report(Progress::Finished {
            app,
            slot: *slot,
            ok: r.is_ok(),
        });
        r
    };
    let jobs = options.jobs.clamp(1, work.len().max(1));
    if jobs == 1 {
        return work.iter().map(run).collect();
    }
    let next = AtomicUsize::new(0);
    let slots: Vec<Mutex<Option<Result<LockedRule, TranslateError>>>> =
        work.iter().map(|_| Mutex::new(None)).collect();
    std::thread::scope(|scope| {
        for _ in 0..jobs {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(item) = work.get(i) else { break };
                let r = run(item);
                if let Ok(mut slot) = slots[i].lock() {
                    *slot = Some(r);
                }
            });
        }
    });
    slots
        .into_iter()
        .map(|m| {
            m.into_inner().ok().flatten().unwrap_or_else(|| {
                Err(TranslateError::Failed(
                    "翻訳スレッドが異常終了しました".into(),
                ))
            })
        })
        .collect()
}

impl Lockfile {
    /// Parses a lock file (does not verify it against a policy).
    pub fn from_toml_str(s: &str) -> Result<Lockfile, LockError> {
        let l: Lockfile = toml::from_str(s).map_err(|e| LockError::Corrupt(e.to_string()))?;
        if l.version != LOCK_VERSION {
            return Err(LockError::Version(l.version));
        }
        crate::policy::parse_tz(&l.timezone).map_err(|e| LockError::Corrupt(e.to_string()))?;
        Ok(l)
    }

    /// Reads a lock file from disk.
    pub fn read(path: &Path) -> Result<Lockfile, LockError> {
        let s = std::fs::read_to_string(path).map_err(|e| LockError::Io {
            path: path.display().to_string(),
            why: e.to_string(),
        })?;
        Lockfile::from_toml_str(&s)
    }

    /// The lock as TOML, with a header that tells reviewers what it is.
    pub fn to_toml_string(&self) -> String {
        let body = toml::to_string_pretty(self).unwrap_or_default();
        format!(
            "# RZTS policy lock, written by `rzts compile`. Commit it and review its diffs:\n\
             # each rule changes only when its Japanese text changes. Do not edit by hand.\n\n{body}"
        )
    }

    /// Writes the lock atomically: a temporary file beside it, then a rename, so a
    /// failure never leaves a half-written lock in place of the previous one.
    pub fn write_atomic(&self, path: &Path) -> Result<(), LockError> {
        let io = |e: std::io::Error| LockError::Io {
            path: path.display().to_string(),
            why: e.to_string(),
        };
        let tmp = path.with_extension("lock.tmp");
        std::fs::write(&tmp, self.to_toml_string()).map_err(io)?;
        std::fs::rename(&tmp, path).map_err(io)
    }

    /// Checks the lock against its policy: every text present with the same hash, no
    /// extra apps, same modes and time zone, seals intact, every rule valid.
    pub fn verify(&self, policy: &PolicyFile) -> Result<(), Vec<LockError>> {
        let mut errors = self.verify_integrity();
        if self.timezone != policy.timezone() {
            errors.push(LockError::Stale {
                app: "-".into(),
                slot: "-".into(),
                why: format!(
                    "タイムゾーンが {} から {} に変わりました",
                    self.timezone,
                    policy.timezone()
                ),
            });
        }
        for (name, app) in &policy.apps {
            let Some(locked) = self.apps.get(name) else {
                errors.push(LockError::Stale {
                    app: name.clone(),
                    slot: "-".into(),
                    why: "ロックにありません".into(),
                });
                continue;
            };
            if locked.mode != app.mode {
                errors.push(LockError::Stale {
                    app: name.clone(),
                    slot: "mode".into(),
                    why: "モードが変わりました".into(),
                });
            }
            for slot in [Slot::Require, Slot::Deny] {
                let why = match (app.text(slot), locked.slot(slot)) {
                    (None, None) => continue,
                    (Some(_), None) => "テキストが追加されました",
                    (None, Some(_)) => "テキストが削除されました",
                    (Some(t), Some(r)) if r.sha256 != sha256_hex(t.as_bytes()) || r.text != t => {
                        "テキストが変更されました"
                    }
                    _ => continue,
                };
                errors.push(LockError::Stale {
                    app: name.clone(),
                    slot: slot.as_str().into(),
                    why: why.into(),
                });
            }
        }
        for name in self.apps.keys() {
            if !policy.apps.contains_key(name) {
                errors.push(LockError::Stale {
                    app: name.clone(),
                    slot: "-".into(),
                    why: "ポリシーファイルにないアプリです".into(),
                });
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }

    /// Seals and rules only (no policy needed): what `rzts diff` and the decision
    /// server check before trusting a lock.
    pub fn verify_integrity(&self) -> Vec<LockError> {
        let mut errors = Vec::new();
        for (name, app) in &self.apps {
            for slot in [Slot::Require, Slot::Deny] {
                let Some(r) = app.slot(slot) else { continue };
                if r.seal != r.compute_seal() || r.sha256 != sha256_hex(r.text.as_bytes()) {
                    errors.push(LockError::HandEdited {
                        app: name.clone(),
                        slot,
                    });
                    continue;
                }
                if let Err(e) = parse_rule(&r.rule) {
                    errors.push(LockError::BadRule {
                        app: name.clone(),
                        slot,
                        why: e.to_string(),
                    });
                }
            }
        }
        errors
    }

    /// The rules ready for deciding, after [`Lockfile::verify_integrity`] passes.
    pub fn rules(&self) -> Result<CompiledPolicy, Vec<LockError>> {
        let errors = self.verify_integrity();
        if !errors.is_empty() {
            return Err(errors);
        }
        let tz = crate::policy::parse_tz(&self.timezone)
            .map_err(|e| vec![LockError::Corrupt(e.to_string())])?;
        let mut apps = BTreeMap::new();
        for (name, app) in &self.apps {
            let get = |slot| -> Result<Option<crate::ast::Rule>, Vec<LockError>> {
                match app.slot(slot) {
                    None => Ok(None),
                    Some(r) => parse_rule(&r.rule).map(Some).map_err(|e| {
                        vec![LockError::BadRule {
                            app: name.clone(),
                            slot,
                            why: e.to_string(),
                        }]
                    }),
                }
            };
            let rules = AppRules::new(get(Slot::Require)?, get(Slot::Deny)?);
            apps.insert(name.clone(), (app.mode, rules));
        }
        Ok(CompiledPolicy { tz, apps })
    }
}

/// A verified lock, ready to decide requests.
#[derive(Debug, Clone)]
pub struct CompiledPolicy {
    /// The time zone of clock conditions.
    pub tz: chrono_tz::Tz,
    /// Each app's mode and rules.
    pub apps: BTreeMap<String, (Mode, AppRules)>,
}

impl CompiledPolicy {
    /// Decides a request for an app; `None` for an unknown app.
    pub fn decide(
        &self,
        app: &str,
        req: &crate::context::Request,
        authn: crate::decision::Authentication,
    ) -> Option<crate::decision::Decision> {
        self.apps
            .get(app)
            .map(|(_, rules)| rules.decide(req, authn, self.tz))
    }
}
