//! Offline compilation of a 100-app policy file (goal: < 50 ms for the whole file).
//!
//! The file comes from `rzts_benches::policy_file::hundred_apps_toml` (deterministic,
//! 100 apps, ~180 Japanese texts varied from the golden set). Benchmarks, all in the
//! `compile` group:
//!
//! * `compile/100_apps/cold`: what `rzts compile` does minus file I/O on a policy
//!   without a lock: parse the TOML, translate every text with the offline
//!   translator, build the lock and render it as TOML. **This is the < 50 ms goal.**
//! * `compile/100_apps/translate_only`: just the `OfflineTranslator::translate` calls.
//! * `compile/100_apps/incremental`: recompiling against an up-to-date lock (every
//!   entry reused, nothing translated), as `rzts compile` does on an unchanged file.
//! * `compile/100_apps/load_lock`: reading the lock back and building the decision
//!   rules (`Lockfile::from_toml_str` + `Lockfile::rules`), what `rzts decide` pays
//!   at start-up.
//!
//! Run: `CARGO_TARGET_DIR=/tmp/bench-target cargo bench -p rzts-benches --bench compile
//! -- --warm-up-time 1 --measurement-time 3`

#[path = "common/clock.rs"]
mod clock;

use std::hint::black_box;
use std::time::{Duration, Instant};

use clock::Clock;
use criterion::{criterion_group, criterion_main, Criterion};
use policy_core::lock::{self, Lockfile};
use policy_core::policy::PolicyFile;
use policy_core::translate::{OfflineTranslator, Translator};
use rzts_benches::policy_file::{hundred_apps, hundred_apps_toml, APPS};

/// The goal for `compile/100_apps/cold`.
const GOAL: Duration = Duration::from_millis(50);

fn cold(toml: &str, translator: &OfflineTranslator) -> String {
    let policy = PolicyFile::from_toml_str(toml).expect("generated policy file parses");
    let lock = lock::compile(&policy, translator, None).expect("every generated text translates");
    lock.to_toml_string()
}

fn bench_compile(c: &mut Criterion<Clock>) {
    let toml = hundred_apps_toml();
    let translator = OfflineTranslator::new();

    // Not timed: the whole file compiles, every app is in the lock, and the lock
    // verifies and loads.
    let policy = PolicyFile::from_toml_str(&toml).expect("generated policy file parses");
    assert_eq!(policy.apps.len(), APPS);
    let lock = match lock::compile(&policy, &translator, None) {
        Ok(l) => l,
        Err(errors) => {
            for e in &errors {
                eprintln!("{e}");
            }
            panic!(
                "{} texts of the generated policy did not compile",
                errors.len()
            );
        }
    };
    assert_eq!(lock.apps.len(), APPS);
    assert!(lock.verify(&policy).is_ok(), "fresh lock verifies");
    let lock_text = lock.to_toml_string();
    let loaded = Lockfile::from_toml_str(&lock_text).expect("lock reads back");
    assert_eq!(loaded, lock);
    assert_eq!(loaded.rules().expect("lock loads").apps.len(), APPS);
    let texts: usize = hundred_apps()
        .iter()
        .map(|a| 1 + usize::from(!a.deny.is_empty()))
        .sum();

    // One plain timing of the goal before criterion's statistics, so the log shows it.
    let start = Instant::now();
    black_box(cold(&toml, &translator));
    let once = start.elapsed();
    eprintln!(
        "compile/100_apps: {APPS} apps, {texts} texts, {} bytes of TOML; one cold compile took {once:?} (goal < {GOAL:?})",
        toml.len()
    );

    let mut group = c.benchmark_group("compile/100_apps");
    group.sample_size(10);
    group.bench_function("cold", |b| b.iter(|| cold(black_box(&toml), &translator)));
    let apps = hundred_apps();
    group.bench_function("translate_only", |b| {
        b.iter(|| {
            for app in &apps {
                black_box(translator.translate(&app.require, policy_core::decision::Slot::Require))
                    .ok();
                if !app.deny.is_empty() {
                    black_box(translator.translate(&app.deny, policy_core::decision::Slot::Deny))
                        .ok();
                }
            }
        })
    });
    group.bench_function("incremental", |b| {
        b.iter(|| {
            let policy = PolicyFile::from_toml_str(black_box(&toml)).expect("parses");
            lock::compile(&policy, &translator, Some(&lock)).expect("compiles")
        })
    });
    group.bench_function("load_lock", |b| {
        b.iter(|| {
            Lockfile::from_toml_str(black_box(&lock_text))
                .expect("reads")
                .rules()
                .expect("loads")
        })
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().with_measurement(Clock::from_env());
    targets = bench_compile
}
criterion_main!(benches);
