//! Per-decision latency: RZTS against cedar-policy and regorus on the same policies.
//!
//! One criterion group per policy (`decision/g01`, `decision/ten_conditions`), and in
//! each the three engines on the same two requests: `decision/<policy>/<engine>/allow`
//! and `.../deny`. Everything an engine needs (parsed policies, the request in its own
//! form, entities, a loaded Rego engine) is built before timing; the timed closure is
//! only the call a policy decision point makes per request:
//!
//! * RZTS: `AppRules::decide(&request, Authentication::Authenticated, Asia/Tokyo)`,
//!   returning a `Decision` with its reasons (a denial includes building the Japanese
//!   explanation).
//! * Cedar: `Authorizer::is_authorized(&request, &policy_set, &entities)`.
//! * regorus: `engine.set_input(input.clone())` (a reference-count bump) then
//!   `engine.eval_rule("data.rzts.allow")`.
//!
//! A second group per policy, `breakdown/<policy>/...`, is diagnostic only: it splits
//! RZTS's time into evaluating the two rules (`rzts_eval`), also finding the causes of
//! a denial (`rzts_explain`), and the full `decide` with its Japanese reasons
//! (`rzts_decide`, whose reasons are prepared when the rules are compiled).
//!
//! Before any timing, every request of the fixtures (the timed ones and the check-only
//! ones: boundary values, missing attributes) is decided by all three engines and the
//! bench aborts unless all three agree with the expected decision.
//!
//! Run: `CARGO_TARGET_DIR=/tmp/bench-target cargo bench -p rzts-benches --bench decision
//! -- --warm-up-time 1 --measurement-time 3`

#[path = "common/clock.rs"]
mod clock;

use std::hint::black_box;

use cedar_policy::{
    Authorizer, Context, Decision as CedarDecision, Entities, EntityUid, PolicySet,
    Request as CedarRequest,
};
use clock::Clock;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use policy_core::ast::Rule;
use policy_core::context::Request;
use policy_core::decision::{AppRules, Authentication, Effect};
use policy_core::eval::{eval_rule, explain, Truth};
use regorus::{Engine, Value as RegoValue};
use rzts_benches::decision::{
    cedar_context, policies, rego_input, rzts_request, PolicyFixture, RequestFixture, REGO_QUERY,
};
use rzts_benches::TZ;

/// One request in each engine's form.
struct PreparedRequest {
    name: String,
    expected: Effect,
    rzts: Request,
    cedar: CedarRequest,
    rego: RegoValue,
}

/// One policy loaded in the three engines, with its requests.
struct Prepared {
    name: &'static str,
    app: AppRules,
    cedar_policies: PolicySet,
    rego: Engine,
    timed: Vec<PreparedRequest>,
    check_only: Vec<PreparedRequest>,
}

fn uid(s: &str) -> EntityUid {
    s.parse()
        .unwrap_or_else(|e| panic!("bad entity uid {s}: {e}"))
}

fn prepare_request(f: &RequestFixture) -> PreparedRequest {
    let rzts = rzts_request(f);
    let context = Context::from_json_value(cedar_context(&rzts), None)
        .unwrap_or_else(|e| panic!("cedar context for {:?}: {e}", f.name));
    let cedar = CedarRequest::new(
        uid(r#"User::"tanaka""#),
        uid(r#"Action::"access""#),
        uid(r#"App::"keiri-portal""#),
        context,
        None,
    )
    .unwrap_or_else(|e| panic!("cedar request for {:?}: {e}", f.name));
    let rego = RegoValue::from_json_str(&rego_input(&rzts).to_string())
        .unwrap_or_else(|e| panic!("rego input for {:?}: {e}", f.name));
    PreparedRequest {
        name: f.name.clone(),
        expected: f.expected,
        rzts,
        cedar,
        rego,
    }
}

/// The RZTS rule for a slot: parsed from the canonical text when the parser is
/// available (and then checked equal to the AST built by hand), else the AST.
fn rzts_rule(ast: &Rule, text: &str, what: &str) -> Rule {
    assert_eq!(ast.to_string(), text, "{what}: the AST prints differently");
    match policy_core::text::parse_rule(text) {
        Ok(parsed) => {
            assert_eq!(&parsed, ast, "{what}: parse(text) differs from the AST");
            parsed
        }
        Err(e) => {
            eprintln!("note: {what}: parse_rule unavailable ({e}); using the AST built by hand");
            ast.clone()
        }
    }
}

fn prepare(p: &PolicyFixture) -> Prepared {
    let require = rzts_rule(&p.require, p.require_text, &format!("{} require", p.name));
    let deny = rzts_rule(&p.deny, p.deny_text, &format!("{} deny", p.name));
    let app = AppRules::new(Some(require), Some(deny));
    let cedar_policies: PolicySet = p
        .cedar
        .parse()
        .unwrap_or_else(|e| panic!("cedar policy {}: {e:?}", p.name));
    let mut rego = Engine::new();
    rego.add_policy(format!("{}.rego", p.name), p.rego.to_string())
        .unwrap_or_else(|e| panic!("rego policy {}: {e}", p.name));
    Prepared {
        name: p.name,
        app,
        cedar_policies,
        rego,
        timed: p.timed.iter().map(prepare_request).collect(),
        check_only: p.check_only.iter().map(prepare_request).collect(),
    }
}

fn rzts_effect(app: &AppRules, req: &Request) -> Effect {
    app.decide(req, Authentication::Authenticated, TZ).effect
}

fn cedar_effect(
    authorizer: &Authorizer,
    policies: &PolicySet,
    entities: &Entities,
    req: &CedarRequest,
) -> Effect {
    match authorizer.is_authorized(req, policies, entities).decision() {
        CedarDecision::Allow => Effect::Allow,
        CedarDecision::Deny => Effect::Deny,
    }
}

fn rego_effect(engine: &mut Engine, input: &RegoValue) -> Effect {
    engine.set_input(input.clone());
    let v = engine
        .eval_rule(REGO_QUERY.to_string())
        .unwrap_or_else(|e| panic!("rego eval: {e}"));
    if v == RegoValue::from(true) {
        Effect::Allow
    } else {
        assert_eq!(v, RegoValue::from(false), "data.rzts.allow is a boolean");
        Effect::Deny
    }
}

/// Not timed: all three engines agree with the expected decision on every request.
fn check_equivalence(p: &mut Prepared, authorizer: &Authorizer, entities: &Entities) {
    for r in p.timed.iter().chain(&p.check_only) {
        let rzts = rzts_effect(&p.app, &r.rzts);
        let cedar = cedar_effect(authorizer, &p.cedar_policies, entities, &r.cedar);
        let rego = rego_effect(&mut p.rego, &r.rego);
        let (require, deny) = slots(&p.app);
        assert_eq!(
            eval_only(require, deny, &r.rzts),
            rzts,
            "{} / {}",
            p.name,
            r.name
        );
        assert_eq!(
            eval_and_explain(require, deny, &r.rzts).0,
            rzts,
            "{} / {}",
            p.name,
            r.name
        );
        assert!(
            rzts == r.expected && cedar == r.expected && rego == r.expected,
            "{} / {}: expected {:?}, rzts {:?}, cedar {:?}, regorus {:?}",
            p.name,
            r.name,
            r.expected,
            rzts,
            cedar,
            rego
        );
    }
    eprintln!(
        "decision/{}: rzts, cedar and regorus agree on all {} requests",
        p.name,
        p.timed.len() + p.check_only.len()
    );
}

fn bench_decisions(c: &mut Criterion<Clock>) {
    let authorizer = Authorizer::new();
    let entities = Entities::empty();
    for fixture in policies() {
        let mut p = prepare(&fixture);
        check_equivalence(&mut p, &authorizer, &entities);

        let mut group = c.benchmark_group(format!("decision/{}", p.name));
        for r in &p.timed {
            group.bench_with_input(BenchmarkId::new("rzts", &r.name), &r.rzts, |b, req| {
                b.iter(|| {
                    p.app
                        .decide(black_box(req), Authentication::Authenticated, TZ)
                })
            });
            group.bench_with_input(BenchmarkId::new("cedar", &r.name), &r.cedar, |b, req| {
                b.iter(|| authorizer.is_authorized(black_box(req), &p.cedar_policies, &entities))
            });
            let engine = &mut p.rego;
            group.bench_with_input(BenchmarkId::new("regorus", &r.name), &r.rego, |b, input| {
                b.iter(|| {
                    engine.set_input(black_box(input).clone());
                    engine.eval_rule(REGO_QUERY.to_string())
                })
            });
        }
        group.finish();

        // Diagnostic rows (not part of the engine comparison): where RZTS's time goes.
        // `rzts_decide` is the same call as `decision/<policy>/rzts`; `rzts_eval` only
        // evaluates the two rules to an effect (no reasons at all); `rzts_explain` adds
        // `eval::explain` on each slot that blocked access, i.e. finding the causes of a
        // denial without turning them into Japanese sentences.
        let mut group = c.benchmark_group(format!("breakdown/{}", p.name));
        let (require, deny) = slots(&p.app);
        for r in &p.timed {
            group.bench_with_input(
                BenchmarkId::new("rzts_decide", &r.name),
                &r.rzts,
                |b, req| {
                    b.iter(|| {
                        p.app
                            .decide(black_box(req), Authentication::Authenticated, TZ)
                    })
                },
            );
            group.bench_with_input(BenchmarkId::new("rzts_eval", &r.name), &r.rzts, |b, req| {
                b.iter(|| eval_only(require, deny, black_box(req)))
            });
            group.bench_with_input(
                BenchmarkId::new("rzts_explain", &r.name),
                &r.rzts,
                |b, req| b.iter(|| eval_and_explain(require, deny, black_box(req))),
            );
        }
        group.finish();
    }
}

fn slots(app: &AppRules) -> (&Rule, &Rule) {
    let require = app.require.as_ref().map(|r| r.rule());
    let deny = app.deny.as_ref().map(|r| r.rule());
    (
        require.expect("benchmark policies have a require rule"),
        deny.expect("benchmark policies have a deny rule"),
    )
}

fn eval_only(require: &Rule, deny: &Rule, req: &Request) -> Effect {
    if eval_rule(require, req, TZ) == Truth::True && eval_rule(deny, req, TZ) == Truth::False {
        Effect::Allow
    } else {
        Effect::Deny
    }
}

fn eval_and_explain(require: &Rule, deny: &Rule, req: &Request) -> (Effect, usize) {
    let r = eval_rule(require, req, TZ);
    let d = eval_rule(deny, req, TZ);
    if r == Truth::True && d == Truth::False {
        return (Effect::Allow, 0);
    }
    let mut causes = 0;
    if r != Truth::True {
        causes += explain(require, req, TZ).1.len();
    }
    if d != Truth::False {
        causes += explain(deny, req, TZ).1.len();
    }
    (Effect::Deny, causes)
}

criterion_group! {
    name = benches;
    config = Criterion::default().with_measurement(Clock::from_env());
    targets = bench_decisions
}
criterion_main!(benches);
