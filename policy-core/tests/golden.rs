//! The shared golden translation cases (`../shared/golden/translations.toml`) must all
//! pass with the offline translator, and each golden text's compiled canonical form and
//! back-translation is snapshotted so a reviewer sees every change of a translation.

use std::path::PathBuf;

use policy_core::cases::CasesFile;
use policy_core::decision::Slot;
use policy_core::translate::{OfflineTranslator, Translator};

fn golden_path() -> PathBuf {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    manifest.join("../../shared/golden/translations.toml")
}

fn load() -> CasesFile {
    let path = golden_path();
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("golden cases missing at {}: {e}", path.display()));
    CasesFile::from_toml_str(&text).expect("golden cases parse")
}

#[test]
fn every_golden_case_passes() {
    let file = load();
    let outcomes = file.run(&OfflineTranslator::new()).expect("cases run");
    let failed: Vec<String> = outcomes
        .iter()
        .filter(|o| !o.passed)
        .map(|o| format!("{}: {}", o.label, o.detail))
        .collect();
    assert!(outcomes.len() > 90, "too few outcomes: {}", outcomes.len());
    assert!(
        failed.is_empty(),
        "{} failed:\n{}",
        failed.len(),
        failed.join("\n")
    );
}

#[test]
fn golden_translations_snapshot() {
    let file = load();
    let t = OfflineTranslator::new();
    let mut report = String::new();
    for case in &file.cases {
        for (slot, text) in [(Slot::Require, &case.require), (Slot::Deny, &case.deny)] {
            let Some(text) = text else { continue };
            report.push_str(&format!("## {} {}\n{}\n", case.id, slot.as_str(), text));
            match t.translate(text, slot) {
                Ok(tr) => {
                    report.push_str(&format!("rule: {}\n", tr.rule));
                    report.push_str(&format!(
                        "ja:   {}\n",
                        policy_core::backtranslate::rule_ja(&tr.rule)
                    ));
                    for i in 0..tr.spans.len() {
                        report.push_str(&format!("cite: {}\n", tr.cited(i).unwrap_or("?")));
                    }
                }
                Err(e) => report.push_str(&format!("refused: {e}\n")),
            }
            report.push('\n');
        }
    }
    insta::assert_snapshot!("golden_translations", report);
}
