//! `POST /v1/decide`: decisions for enforcement points.
//!
//! Request, one decision:
//!
//! ```json
//! {"app": "github", "pep": "saml", "authenticated": true, "context": { ...spec §2... }}
//! ```
//!
//! `pep` is `saml`, `tunnel`, `socks` or `api` (default `api`); `authenticated` is
//! required (only the PEP knows whether it verified the user); `context` defaults
//! to `{}`. A batch is `{"requests": [ ...the same objects... ]}` and is answered
//! `{"decisions": [ ... ]}` in the same order.
//!
//! Answer: `{"decision": "allow"|"deny", "reasons": [{"code", "message", ...}],
//! "decision_id": "<ULID>"}` plus `"risk"` when the anomaly detector assessed the
//! access. The answer is sent only once the access record is durable; if the
//! access log cannot be written the answer is 503 and no decision is given.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use chrono::Utc;
use hyper::body::Incoming;
use hyper::{Request, StatusCode};
use serde::{Deserialize, Serialize};

use policy_core::context::Request as Context;
use policy_core::decision::{Authentication, Decision, Effect, Reason};

use super::{json, parse_json, read_body, ApiError, Resp};
use crate::detector::Assessment;
use crate::enrich::Enriched;
use crate::model::AccessRecord;
use crate::server::AppState;

/// Which kind of enforcement point asks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Pep {
    /// The SAML IdP proxy.
    Saml,
    /// The tunnel edge.
    Tunnel,
    /// The SOCKS5 gateway.
    Socks,
    /// Anything else calling the API.
    #[default]
    Api,
}

impl Pep {
    /// The name as in the access log.
    pub fn as_str(self) -> &'static str {
        match self {
            Pep::Saml => "saml",
            Pep::Tunnel => "tunnel",
            Pep::Socks => "socks",
            Pep::Api => "api",
        }
    }
}

/// One decision request.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DecideRequest {
    /// The protected target's name in the policy file.
    pub app: String,
    /// Which kind of PEP asks.
    #[serde(default)]
    pub pep: Pep,
    /// Whether the PEP verified the user's identity.
    pub authenticated: bool,
    /// The request context (spec §2).
    #[serde(default)]
    pub context: Context,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Body {
    app: Option<String>,
    pep: Option<Pep>,
    authenticated: Option<bool>,
    context: Option<Context>,
    requests: Option<Vec<DecideRequest>>,
}

/// One finding of the detector, as answered.
#[derive(Debug, Clone, Serialize)]
pub struct FindingOut {
    /// Finding code (`new_country`, ...).
    pub code: &'static str,
    /// Japanese explanation.
    pub message: String,
}

/// The detector's view of the access, as answered.
#[derive(Debug, Clone, Serialize)]
pub struct RiskOut {
    /// Whether the access is suspicious.
    pub suspicious: bool,
    /// 0..=1.
    pub score: f64,
    /// What was found.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub findings: Vec<FindingOut>,
}

/// One answer.
#[derive(Debug, Clone, Serialize)]
pub struct Answer {
    /// allow / deny.
    pub decision: Effect,
    /// Why.
    pub reasons: Vec<Reason>,
    /// The id the PEP shows so a helpdesk can find the access record.
    pub decision_id: String,
    /// The detector's assessment, when the request named a user.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub risk: Option<RiskOut>,
}

#[derive(Serialize)]
struct BatchAnswer {
    decisions: Vec<Answer>,
}

/// A denial with one reason about `attribute` (the enforcement points' helper,
/// plus the attribute concerned).
fn denial(code: &'static str, attribute: &'static str, message: String) -> Decision {
    let mut d = pep_client::policy::denial(code, message);
    d.reasons[0].attribute = Some(attribute.into());
    d
}

/// The access log's target: `host:port` for the gateway, else the app.
fn target(pep: Pep, app: String, ctx: &Context) -> String {
    if pep == Pep::Socks {
        let host = ctx
            .destination
            .domain
            .as_ref()
            .map(|d| d.as_str().to_string())
            .or_else(|| ctx.destination.ip.map(|ip| ip.to_string()));
        if let Some(h) = host {
            return match ctx.destination.port {
                Some(p) => format!("{h}:{p}"),
                None => h,
            };
        }
    }
    app
}

/// Decides one enriched request: a disabled user and (when configured) a
/// suspicious access are denied before the rules are consulted.
fn decide_enriched(
    state: &AppState,
    compiled: &policy_core::lock::CompiledPolicy,
    item: &DecideRequest,
    e: &Enriched,
) -> Decision {
    if e.user_disabled() {
        let id = e.request.user.id.as_deref().unwrap_or_default();
        return denial(
            "user.disabled",
            "user.id",
            format!("ユーザー「{id}」は無効化されているため拒否"),
        );
    }
    if let Some(a) = &e.assessment {
        if state.enricher.detector().should_block(a) {
            state.metrics.blocked.fetch_add(1, Ordering::Relaxed);
            let why: Vec<&str> = a.findings.iter().map(|f| f.message_ja.as_str()).collect();
            return denial(
                "risk.blocked",
                "risk.suspicious",
                format!("不審なアクセスと判定されたため拒否（{}）", why.join("。")),
            );
        }
    }
    let authn = if item.authenticated {
        Authentication::Authenticated
    } else {
        Authentication::Anonymous
    };
    compiled
        .decide(&item.app, &e.request, authn)
        .unwrap_or_else(|| {
            // The app was checked before; it can only vanish in a race with a reload.
            denial(
                "app.unknown",
                "destination.app",
                format!("アプリ「{}」はポリシーにないため拒否", item.app),
            )
        })
}

/// The handler.
pub async fn decide(state: &Arc<AppState>, req: Request<Incoming>) -> Result<Resp, ApiError> {
    let t0 = Instant::now();
    let body = read_body(req, state.config.max_body_bytes).await?;
    let parsed: Body = parse_json(&body)?;
    let (items, batch) = match parsed.requests {
        Some(items) => {
            if parsed.app.is_some()
                || parsed.pep.is_some()
                || parsed.authenticated.is_some()
                || parsed.context.is_some()
            {
                return Err(ApiError::field(
                    "requests",
                    "a batch (requests) cannot be combined with app/pep/authenticated/context",
                ));
            }
            if items.is_empty() {
                return Err(ApiError::field("requests", "empty batch"));
            }
            if items.len() > state.config.max_batch {
                return Err(ApiError::field(
                    "requests",
                    format!("at most {} requests per batch", state.config.max_batch),
                ));
            }
            (items, true)
        }
        None => {
            let app = parsed
                .app
                .ok_or_else(|| ApiError::field("app", "missing field `app`"))?;
            let authenticated = parsed.authenticated.ok_or_else(|| {
                ApiError::field(
                    "authenticated",
                    "missing field `authenticated` (true when the PEP verified the user)",
                )
            })?;
            let item = DecideRequest {
                app,
                pep: parsed.pep.unwrap_or_default(),
                authenticated,
                context: parsed.context.unwrap_or_default(),
            };
            (vec![item], false)
        }
    };

    let snapshot = state.policy.current();
    for (i, item) in items.iter().enumerate() {
        if !snapshot.compiled.apps.contains_key(&item.app) {
            let known: Vec<&str> = snapshot.compiled.apps.keys().map(String::as_str).collect();
            let mut e = ApiError::new(
                StatusCode::NOT_FOUND,
                "unknown_app",
                format!(
                    "アプリ「{}」はポリシーにありません（あるもの: {}）",
                    item.app,
                    known.join(", ")
                ),
            );
            e.field = Some(if batch {
                format!("requests[{i}].app")
            } else {
                "app".into()
            });
            return Err(e);
        }
    }

    let now = Utc::now();
    let tz = snapshot.compiled.tz;
    let mut answers = Vec::with_capacity(items.len());
    let mut records = Vec::with_capacity(items.len());
    let mut alerts: Vec<(String, AccessRecord, Assessment)> = Vec::new();
    for mut item in items {
        let context = std::mem::take(&mut item.context);
        let enriched = state.enricher.enrich(context, &item.app, tz, now).await?;
        let decision = decide_enriched(state, &snapshot.compiled, &item, &enriched);
        let ctx = &enriched.request;
        let target = target(item.pep, item.app, ctx);
        let mut record = AccessRecord::new(item.pep.as_str(), target, ctx, &decision, now);
        record.anomalies = enriched
            .assessment
            .as_ref()
            .map(Assessment::codes)
            .unwrap_or_default();
        let decision_id = record.decision_id.clone();
        state.enricher.note(&record, ctx.device.location);
        let risk = enriched.assessment.as_ref().map(|a| RiskOut {
            suspicious: a.suspicious,
            score: a.score,
            findings: a
                .findings
                .iter()
                .map(|f| FindingOut {
                    code: f.code,
                    message: f.message_ja.clone(),
                })
                .collect(),
        });
        if let Some(a) = enriched.assessment.filter(|a| a.suspicious) {
            state.metrics.suspicious.fetch_add(1, Ordering::Relaxed);
            if state.smtp.is_some() {
                let email = enriched
                    .user
                    .as_ref()
                    .map(|u| u.email.clone())
                    .or_else(|| ctx.user.email.clone())
                    .unwrap_or_default();
                alerts.push((email, record.clone(), a));
            }
        }
        records.push(record);
        answers.push(Answer {
            decision: decision.effect,
            reasons: decision.reasons,
            decision_id,
            risk,
        });
    }

    // Durable before acknowledged.
    state.log.append_all(records).await?;
    let elapsed = t0.elapsed();
    for a in &answers {
        state.metrics.decision(a.decision, elapsed);
        tracing::debug!(decision_id = %a.decision_id, decision = ?a.decision, "decided");
    }
    for (email, record, assessment) in alerts {
        spawn_alert(state.clone(), email, record, assessment);
    }
    if batch {
        Ok(json(StatusCode::OK, &BatchAnswer { decisions: answers }))
    } else {
        let one = answers.pop().expect("one answer");
        Ok(json(StatusCode::OK, &one))
    }
}

/// Mails the alert in the background; the decision never waits for it.
fn spawn_alert(state: Arc<AppState>, email: String, record: AccessRecord, a: Assessment) {
    let Some(smtp) = state.smtp.clone() else {
        return;
    };
    tokio::spawn(async move {
        match crate::alert::send_alert(&smtp, &email, &record, &a).await {
            Ok(()) => {
                state.metrics.alerts_sent.fetch_add(1, Ordering::Relaxed);
                tracing::info!(decision_id = %record.decision_id, user = ?record.user, "alert mail sent");
            }
            Err(e) => {
                state.metrics.alerts_failed.fetch_add(1, Ordering::Relaxed);
                tracing::error!(decision_id = %record.decision_id, error = %e, "alert mail failed");
            }
        }
    });
}
