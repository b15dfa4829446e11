//! Decision test cases: Japanese texts plus requests plus expected decisions, the
//! format of `shared/golden/translations.toml` and of a team's own `rzts test` files.
//!
//! ```toml
//! timezone = "Asia/Tokyo"
//! [[case]]
//! id = "G03"
//! require = "多要素認証を利用していること"
//! expect = [
//!   { decision = "allow", request = { auth = { mfa = true } } },
//! ]
//! [[case]]
//! id = "G30"
//! require = "部長の承認を得ていること"
//! refuse = true
//! ```
//!
//! Each case is translated with the given translator, and every expected request
//! decided (the user taken as authenticated). A case with `refuse = true` passes only
//! when the translator refuses the text.

use chrono_tz::Tz;
use serde::Deserialize;

use crate::context::Request;
use crate::decision::{AppRules, Authentication, Effect, Slot};
use crate::translate::Translator;

/// A cases file that could not be read.
#[derive(Debug, thiserror::Error)]
pub enum CasesError {
    /// Not valid TOML, or not the expected shape.
    #[error("テストケースファイルを読めません: {0}")]
    Toml(String),
    /// A request in a case is malformed.
    #[error("ケース {case} の期待 {index} のリクエストが不正です: {error}")]
    Request {
        /// The case id.
        case: String,
        /// 0-based index in `expect`.
        index: usize,
        /// What was wrong.
        error: crate::context::RequestError,
    },
    /// The time zone is not an IANA name.
    #[error("タイムゾーン {0:?} が不明です")]
    Timezone(String),
}

/// A cases file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CasesFile {
    /// IANA time zone for clock conditions (default `Asia/Tokyo`).
    #[serde(default)]
    pub timezone: Option<String>,
    /// The cases.
    #[serde(default, rename = "case")]
    pub cases: Vec<Case>,
}

/// One case.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Case {
    /// Identifier shown in reports.
    pub id: String,
    /// 必須条件 text.
    #[serde(default)]
    pub require: Option<String>,
    /// 拒否条件 text.
    #[serde(default)]
    pub deny: Option<String>,
    /// The translator must refuse the text.
    #[serde(default)]
    pub refuse: bool,
    /// Requests and their expected decisions.
    #[serde(default)]
    pub expect: Vec<Expectation>,
}

/// One request and the decision it must get.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expectation {
    /// `allow` or `deny`.
    pub decision: Effect,
    /// The request context, as a TOML table shaped like the JSON of spec §2.
    pub request: toml::Table,
}

/// The result of one expectation (or of a refusal check).
#[derive(Debug, Clone)]
pub struct Outcome {
    /// `G01#2` style label.
    pub label: String,
    /// Passed?
    pub passed: bool,
    /// What was expected, what came out, and why (for failures).
    pub detail: String,
}

impl CasesFile {
    /// Parses a cases file.
    pub fn from_toml_str(s: &str) -> Result<CasesFile, CasesError> {
        toml::from_str(s).map_err(|e| CasesError::Toml(e.to_string()))
    }

    /// The time zone.
    pub fn tz(&self) -> Result<Tz, CasesError> {
        let name = self.timezone.as_deref().unwrap_or("Asia/Tokyo");
        name.parse::<Tz>()
            .map_err(|_| CasesError::Timezone(name.to_string()))
    }

    /// Runs every case with `translator`; one outcome per expectation (and one per
    /// refusal case). Malformed requests are errors, not failures.
    pub fn run(&self, translator: &dyn Translator) -> Result<Vec<Outcome>, CasesError> {
        let tz = self.tz()?;
        let mut out = Vec::new();
        for case in &self.cases {
            let texts = [
                (Slot::Require, case.require.as_deref()),
                (Slot::Deny, case.deny.as_deref()),
            ];
            let mut rules = [None, None];
            let mut refusal = None;
            for (k, (slot, text)) in texts.iter().enumerate() {
                let Some(text) = text.filter(|t| !t.trim().is_empty()) else {
                    continue;
                };
                match translator.translate(text, *slot) {
                    Ok(t) => rules[k] = Some(t.rule),
                    Err(e) => refusal = Some(format!("{}: {e}", slot.label_ja())),
                }
            }
            if case.refuse {
                let passed = refusal.is_some();
                let detail = match (&refusal, &rules) {
                    (Some(r), _) => format!("refused as expected: {r}"),
                    (None, [r, d]) => format!(
                        "expected a refusal, got require={} deny={}",
                        r.as_ref().map_or("-".into(), |r| r.to_string()),
                        d.as_ref().map_or("-".into(), |r| r.to_string())
                    ),
                };
                out.push(Outcome {
                    label: format!("{}#refuse", case.id),
                    passed,
                    detail,
                });
                continue;
            }
            if let Some(r) = refusal {
                out.push(Outcome {
                    label: format!("{}#translate", case.id),
                    passed: false,
                    detail: format!("expected a translation, got a refusal: {r}"),
                });
                continue;
            }
            let [require, deny] = rules;
            let app = AppRules::new(require, deny);
            for (i, exp) in case.expect.iter().enumerate() {
                let json = serde_json::to_string(&exp.request)
                    .map_err(|e| CasesError::Toml(e.to_string()))?;
                let req = Request::from_json(&json).map_err(|error| CasesError::Request {
                    case: case.id.clone(),
                    index: i,
                    error,
                })?;
                let d = app.decide(&req, Authentication::Authenticated, tz);
                let passed = d.effect == exp.decision;
                let reasons: Vec<&str> = d.reasons.iter().map(|r| &*r.message).collect();
                out.push(Outcome {
                    label: format!("{}#{}", case.id, i + 1),
                    passed,
                    detail: format!(
                        "expected {:?}, got {:?} for {json}: {}",
                        exp.decision,
                        d.effect,
                        reasons.join(" / ")
                    ),
                });
            }
        }
        Ok(out)
    }
}
