//! The `rzts` subcommands. Each returns the exit code, or an error (exit 2) whose
//! message names the file, app, slot and phrase or field at fault.

use std::fmt::Write as _;
use std::path::Path;
use std::process::ExitCode;

use policy_core::analysis::{find_flips, lint};
use policy_core::backtranslate::rule_ja;
use policy_core::cases::CasesFile;
use policy_core::context::Request;
use policy_core::decision::{Authentication, Slot};
use policy_core::eval::trace;
use policy_core::lock::{
    self, CompileOptions, CompiledPolicy, LockError, Lockfile, Progress, SlotOutcome,
};
use policy_core::policy::PolicyFile;
use policy_core::text::parse_rule;
use policy_core::translate::llm::{GeminiTranslator, LlmError, OpenAiTranslator, Usage};
use policy_core::translate::{verify, Checks, OfflineTranslator, Translator};

use crate::{SlotArg, TranslatorKind};

/// An error that ends the command with exit code 2.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// A file could not be read.
    #[error("{path}: {why}")]
    Read {
        /// The file.
        path: String,
        /// The OS error.
        why: String,
    },
    /// The policy file is malformed.
    #[error("{path}: {error}")]
    Policy {
        /// The file.
        path: String,
        /// What was wrong.
        error: policy_core::policy::PolicyError,
    },
    /// One or more lock problems (translation refusals, corrupt lock, ...).
    #[error("{}", join_lines(.0))]
    Lock(Vec<LockError>),
    /// The app is not in the policy.
    #[error("アプリ {0:?} はポリシーにありません")]
    UnknownApp(String),
    /// The request context is malformed.
    #[error("{path}: {error}")]
    Request {
        /// The file.
        path: String,
        /// What was wrong, naming the field.
        error: policy_core::context::RequestError,
    },
    /// The cases file is malformed.
    #[error("{path}: {error}")]
    Cases {
        /// The file.
        path: String,
        /// What was wrong.
        error: policy_core::cases::CasesError,
    },
    /// A one-off text could not be translated.
    #[error("{0}")]
    Translate(policy_core::translate::TranslateError),
    /// The chosen LLM translator cannot be set up (missing key, bad setting).
    #[error("翻訳器を使えません: {0}")]
    Translator(LlmError),
    /// A server or directory command failed.
    #[error("{0}")]
    Directory(#[from] crate::directory::DirectoryError),
}

fn join_lines(errors: &[LockError]) -> String {
    errors
        .iter()
        .map(|e| e.to_string())
        .collect::<Vec<_>>()
        .join("\n")
}

fn read(path: &Path) -> Result<String, CliError> {
    if path == Path::new("-") {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut s).map_err(|e| {
            CliError::Read {
                path: "-".into(),
                why: e.to_string(),
            }
        })?;
        return Ok(s);
    }
    std::fs::read_to_string(path).map_err(|e| CliError::Read {
        path: path.display().to_string(),
        why: e.to_string(),
    })
}

fn load_policy(path: &Path) -> Result<PolicyFile, CliError> {
    PolicyFile::from_toml_str(&read(path)?).map_err(|error| CliError::Policy {
        path: path.display().to_string(),
        error,
    })
}

/// The chosen translator, kept concrete so the LLM ones can report token usage.
enum Chosen {
    Offline(OfflineTranslator),
    Gemini(Box<GeminiTranslator>),
    OpenAi(Box<OpenAiTranslator>),
}

impl Chosen {
    fn new(kind: TranslatorKind, tz: policy_core::chrono_tz::Tz) -> Result<Chosen, CliError> {
        Ok(match kind {
            TranslatorKind::Offline => Chosen::Offline(OfflineTranslator::new()),
            TranslatorKind::Gemini => Chosen::Gemini(Box::new(
                GeminiTranslator::from_env()
                    .map_err(CliError::Translator)?
                    .with_tz(tz),
            )),
            TranslatorKind::Openai => Chosen::OpenAi(Box::new(
                OpenAiTranslator::from_env()
                    .map_err(CliError::Translator)?
                    .with_tz(tz),
            )),
        })
    }

    fn get(&self) -> &dyn Translator {
        match self {
            Chosen::Offline(t) => t,
            Chosen::Gemini(t) => t.as_ref(),
            Chosen::OpenAi(t) => t.as_ref(),
        }
    }

    fn usage(&self) -> Option<&Usage> {
        match self {
            Chosen::Offline(_) => None,
            Chosen::Gemini(t) => Some(t.usage()),
            Chosen::OpenAi(t) => Some(t.usage()),
        }
    }

    fn print_usage(&self) {
        if let Some((calls, prompt, output)) = self.usage().map(Usage::totals) {
            if calls > 0 {
                eprintln!(
                    "{}: API の応答 {calls} 件、入力 {prompt} トークン、出力 {output} トークン",
                    self.get().id()
                );
            }
        }
    }
}

fn policy_tz(policy: &PolicyFile, path: &Path) -> Result<policy_core::chrono_tz::Tz, CliError> {
    policy.tz().map_err(|error| CliError::Policy {
        path: path.display().to_string(),
        error,
    })
}

/// A progress bar on standard error while many texts translate (hidden when
/// standard error is not a terminal).
struct Bar(std::sync::OnceLock<indicatif::ProgressBar>);

impl Bar {
    /// Fewer texts than this show no bar.
    const MIN_TEXTS: usize = 3;

    fn report(&self, p: Progress<'_>) {
        match p {
            Progress::Started { total } if total >= Self::MIN_TEXTS => {
                let bar = indicatif::ProgressBar::new(total as u64);
                if let Ok(style) = indicatif::ProgressStyle::with_template(
                    "{spinner} 翻訳中 [{bar:30}] {pos}/{len} {elapsed} {wide_msg}",
                ) {
                    bar.set_style(style.progress_chars("=> "));
                }
                bar.enable_steady_tick(std::time::Duration::from_millis(200));
                let _ = self.0.set(bar);
            }
            Progress::Started { .. } => {}
            Progress::Finished { app, slot, ok } => {
                if let Some(bar) = self.0.get() {
                    let mark = if ok { "" } else { "（失敗）" };
                    bar.set_message(format!("{app} {}{mark}", slot.label_ja()));
                    bar.inc(1);
                }
            }
        }
    }

    fn finish(&self) {
        if let Some(bar) = self.0.get() {
            bar.finish_and_clear();
        }
    }
}

/// Reads the existing lock if there is one; a corrupt lock is not reused but is
/// reported, so nothing from it is trusted.
fn previous_lock(path: &Path) -> Option<Lockfile> {
    if !path.exists() {
        return None;
    }
    match Lockfile::read(path) {
        Ok(l) => Some(l),
        Err(e) => {
            eprintln!("注意: 既存のロックは使いません（{e}）。すべて翻訳し直します");
            None
        }
    }
}

pub fn compile(
    policy_path: &Path,
    kind: TranslatorKind,
    jobs: usize,
) -> Result<ExitCode, CliError> {
    let policy = load_policy(policy_path)?;
    let lock_path = lock::lock_path(policy_path);
    let previous = previous_lock(&lock_path);
    let tz = policy_tz(&policy, policy_path)?;
    let chosen = Chosen::new(kind, tz)?;
    let t = chosen.get();
    let bar = Bar(std::sync::OnceLock::new());
    let progress = |p: Progress<'_>| bar.report(p);
    let options = CompileOptions {
        // The offline translator is fast and CPU-bound: one at a time, as always.
        jobs: if kind == TranslatorKind::Offline {
            1
        } else {
            jobs
        },
        progress: Some(&progress),
    };
    let result = lock::compile_with_options(&policy, t, previous.as_ref(), &options);
    bar.finish();
    chosen.print_usage();
    let (lockfile, report) = match result {
        Ok(r) => r,
        Err(errors) => {
            // Nothing was written: the previous lock (if any) is exactly as it was.
            eprintln!(
                "{} は変更していません（{} 件のエラー）",
                lock_path.display(),
                errors.len()
            );
            return Err(CliError::Lock(errors));
        }
    };
    lockfile
        .write_atomic(&lock_path)
        .map_err(|e| CliError::Lock(vec![e]))?;
    let translated = report
        .iter()
        .filter(|(_, _, o)| *o == SlotOutcome::Translated)
        .count();
    for (app, slot, outcome) in &report {
        match outcome {
            SlotOutcome::Reused => println!("{app} {}: 変更なし（再利用）", slot.label_ja()),
            SlotOutcome::Translated => {
                println!("{app} {}: 翻訳しました", slot.label_ja());
                if let Some(entry) = lockfile.apps.get(app).and_then(|a| a.slot(*slot)) {
                    print_entry(entry);
                }
            }
        }
    }
    print_lint(&lockfile);
    println!(
        "{} を書き出しました（翻訳 {translated} 件、再利用 {} 件）",
        lock_path.display(),
        report.len() - translated
    );
    Ok(ExitCode::SUCCESS)
}

/// A freshly translated entry for review: translator, rule, back-translation and the
/// source phrase of each condition.
fn print_entry(entry: &lock::LockedRule) {
    let Ok(rule) = parse_rule(&entry.rule) else {
        return;
    };
    println!("    翻訳器: {}", entry.translator);
    println!("    規則: {rule}");
    println!("    意味: {}", rule_ja(&rule));
    for (c, src) in rule.conditions().iter().zip(&entry.sources) {
        println!("      {c}  ←「{src}」");
    }
}

/// Lint findings are warnings: they are printed but do not fail the compile, since a
/// strict policy (a require nobody meets) can be intended while an app is closed.
fn print_lint(lockfile: &Lockfile) {
    let Ok(compiled) = lockfile.rules() else {
        return;
    };
    for (app, (_, rules)) in &compiled.apps {
        for r in rules.require.iter().chain(&rules.deny) {
            for f in lint(r.rule(), r.slot(), compiled.tz) {
                eprintln!("警告: {app} の{}: {}", r.slot().label_ja(), f.message);
            }
        }
    }
}

pub fn check(policy_path: &Path) -> Result<ExitCode, CliError> {
    let policy = load_policy(policy_path)?;
    let lock_path = lock::lock_path(policy_path);
    if !lock_path.exists() {
        eprintln!(
            "{} がありません。`rzts compile` を実行してください",
            lock_path.display()
        );
        return Ok(ExitCode::from(1));
    }
    let lockfile = match Lockfile::read(&lock_path) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("{e}");
            return Ok(ExitCode::from(1));
        }
    };
    match lockfile.verify(&policy) {
        Ok(()) => {
            println!(
                "{} は {} と一致しています（{} アプリ）",
                lock_path.display(),
                policy_path.display(),
                lockfile.apps.len()
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(errors) => {
            for e in errors {
                eprintln!("{e}");
            }
            Ok(ExitCode::from(1))
        }
    }
}

/// The lock for a policy, compiled first (and written) when missing or stale.
fn fresh_rules(policy_path: &Path) -> Result<CompiledPolicy, CliError> {
    let policy = load_policy(policy_path)?;
    let lock_path = lock::lock_path(policy_path);
    let previous = previous_lock(&lock_path);
    let lockfile = match previous {
        Some(l) if l.verify(&policy).is_ok() => l,
        previous => {
            eprintln!(
                "注意: {} が古いかないため、オフライン翻訳でコンパイルします",
                lock_path.display()
            );
            let l = lock::compile(&policy, &OfflineTranslator::new(), previous.as_ref())
                .map_err(CliError::Lock)?;
            l.write_atomic(&lock_path)
                .map_err(|e| CliError::Lock(vec![e]))?;
            l
        }
    };
    lockfile.rules().map_err(CliError::Lock)
}

pub fn show(policy_path: &Path, only: Option<&str>) -> Result<ExitCode, CliError> {
    let compiled = fresh_rules(policy_path)?;
    if let Some(app) = only {
        if !compiled.apps.contains_key(app) {
            return Err(CliError::UnknownApp(app.to_string()));
        }
    }
    let mut out = String::new();
    for (app, (mode, rules)) in &compiled.apps {
        if only.is_some_and(|o| o != app) {
            continue;
        }
        let mode = serde_json::to_value(mode)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default();
        let _ = writeln!(out, "[{app}] ({mode})");
        for (slot, r) in [(Slot::Require, &rules.require), (Slot::Deny, &rules.deny)] {
            match r {
                None => {
                    let none = match slot {
                        Slot::Require => "なし（常に満たす）",
                        Slot::Deny => "なし（常に該当しない）",
                    };
                    let _ = writeln!(out, "  {}: {none}", slot.label_ja());
                }
                Some(r) => {
                    let _ = writeln!(out, "  {}: {}", slot.label_ja(), r.rule());
                    let _ = writeln!(out, "    意味: {}", r.japanese());
                }
            }
        }
    }
    print!("{out}");
    Ok(ExitCode::SUCCESS)
}

pub fn diff(old: &Path, new: &Path) -> Result<ExitCode, CliError> {
    let read_lock = |p: &Path| -> Result<CompiledPolicy, CliError> {
        let l = Lockfile::from_toml_str(&read(p)?).map_err(|e| CliError::Lock(vec![e]))?;
        l.rules().map_err(CliError::Lock)
    };
    let (a, b) = (read_lock(old)?, read_lock(new)?);
    let tz = b.tz;
    let mut changed = 0;
    let names: std::collections::BTreeSet<&String> = a.apps.keys().chain(b.apps.keys()).collect();
    for name in names {
        match (a.apps.get(name), b.apps.get(name)) {
            (None, Some(_)) => {
                changed += 1;
                println!("+ {name}: 追加されたアプリ");
            }
            (Some(_), None) => {
                changed += 1;
                println!("- {name}: 削除されたアプリ");
            }
            (Some((_, ra)), Some((_, rb))) => {
                if ra == rb {
                    continue;
                }
                changed += 1;
                println!("~ {name}:");
                for (slot, x, y) in [
                    (Slot::Require, &ra.require, &rb.require),
                    (Slot::Deny, &ra.deny, &rb.deny),
                ] {
                    if x == y {
                        continue;
                    }
                    let show = |r: &Option<policy_core::decision::CompiledRule>| {
                        r.as_ref()
                            .map_or("（なし）".to_string(), |r| r.rule().to_string())
                    };
                    println!("    {}: {}", slot.label_ja(), show(x));
                    println!("      → {}", show(y));
                }
                let report = find_flips(ra, rb, tz, 5);
                if report.flips.is_empty() {
                    let note = if report.exhaustive {
                        "判定が変わるリクエストはありません（境界値をすべて確認）"
                    } else {
                        "判定が変わるリクエストは見つかりませんでした（探索は上限で打ち切り）"
                    };
                    println!("    {note}");
                }
                for f in &report.flips {
                    println!("    {:?} → {:?}: {}", f.old.effect, f.new.effect, f.request);
                }
            }
            (None, None) => {}
        }
    }
    if changed == 0 {
        println!("変更はありません");
    }
    Ok(ExitCode::SUCCESS)
}

pub fn decide(
    policy_path: &Path,
    app: &str,
    request_path: &Path,
    explain: bool,
    anonymous: bool,
) -> Result<ExitCode, CliError> {
    // Read the request before compiling, so a malformed request never triggers work.
    let json = read(request_path)?;
    let req = Request::from_json(&json).map_err(|error| CliError::Request {
        path: request_path.display().to_string(),
        error,
    })?;
    let compiled = fresh_rules(policy_path)?;
    let authn = if anonymous {
        Authentication::Anonymous
    } else {
        Authentication::Authenticated
    };
    let Some((_, rules)) = compiled.apps.get(app) else {
        return Err(CliError::UnknownApp(app.to_string()));
    };
    let decision = rules.decide(&req, authn, compiled.tz);
    let mut value = serde_json::to_value(&decision).unwrap_or_default();
    if explain {
        let mut tr = serde_json::Map::new();
        for r in rules.require.iter().chain(&rules.deny) {
            let lines = trace(r.rule(), &req, compiled.tz);
            tr.insert(
                r.slot().as_str().into(),
                serde_json::to_value(lines).unwrap_or_default(),
            );
        }
        if let Some(obj) = value.as_object_mut() {
            obj.insert("trace".into(), serde_json::Value::Object(tr));
        }
    }
    println!(
        "{}",
        serde_json::to_string_pretty(&value).unwrap_or_default()
    );
    Ok(ExitCode::SUCCESS)
}

pub fn test(cases_path: &Path) -> Result<ExitCode, CliError> {
    let text = read(cases_path)?;
    let path = cases_path.display().to_string();
    let file = CasesFile::from_toml_str(&text).map_err(|error| CliError::Cases {
        path: path.clone(),
        error,
    })?;
    let outcomes = file
        .run(&OfflineTranslator::new())
        .map_err(|error| CliError::Cases { path, error })?;
    let failed: Vec<_> = outcomes.iter().filter(|o| !o.passed).collect();
    for o in &failed {
        println!("FAIL {}: {}", o.label, o.detail);
    }
    println!(
        "{} passed, {} failed",
        outcomes.len() - failed.len(),
        failed.len()
    );
    Ok(if failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

pub fn translate(text: &str, slot: SlotArg, kind: TranslatorKind) -> Result<ExitCode, CliError> {
    let slot = match slot {
        SlotArg::Require => Slot::Require,
        SlotArg::Deny => Slot::Deny,
    };
    let tz = policy_core::chrono_tz::Asia::Tokyo;
    let chosen = Chosen::new(kind, tz)?;
    let t = chosen
        .get()
        .translate(text, slot)
        .map_err(CliError::Translate)?;
    // The checks every translation passes before it may enter a lock (the LLM
    // translators have already run the stricter ones).
    let checks = if kind == TranslatorKind::Offline {
        Checks::basic()
    } else {
        Checks::model(tz)
    };
    let verified = verify(&t, slot, &checks).map_err(CliError::Translate)?;
    chosen.print_usage();
    // The printed rule must read back to the same rule, as the lock will store it.
    debug_assert_eq!(parse_rule(&t.rule.to_string()).ok().as_ref(), Some(&t.rule));
    if kind != TranslatorKind::Offline {
        println!("翻訳器: {}", chosen.get().id());
    }
    println!("規則: {}", t.rule);
    println!("意味: {}", verified.back_translation);
    for (i, c) in t.rule.conditions().iter().enumerate() {
        println!("  {c}  ←「{}」", t.cited(i).unwrap_or("?"));
    }
    if let policy_core::translate::verify::OfflineComparison::Agrees(_) = verified.offline {
        println!("オフライン翻訳と意味が一致しています");
    }
    for f in lint(&t.rule, slot, tz) {
        println!("警告: {}", f.message);
    }
    Ok(ExitCode::SUCCESS)
}
