//! `GET /v1/logs` (JSON) and `GET /v1/logs/export` (JSON lines, for a SIEM); admin
//! token required.
//!
//! Filters, all optional: `user`, `target`, `decision` (`allow`/`deny`), `since`
//! (RFC 3339), `limit` (default 100, at most 10 000). Newest first.

use std::sync::Arc;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use hyper::body::Incoming;
use hyper::{Request, StatusCode};
use serde::Serialize;

use policy_core::decision::Effect;

use super::{bytes_response, json, query_pairs, require_admin, ApiError, Resp};
use crate::model::{AccessRecord, LogQuery};
use crate::server::AppState;

/// Most records one query returns.
pub const MAX_LIMIT: usize = 10_000;

#[derive(Serialize)]
struct Records {
    records: Vec<AccessRecord>,
}

/// Reads the filters of a log query from the query string.
pub fn parse_query(pairs: Vec<(String, String)>) -> Result<LogQuery, ApiError> {
    let mut q = LogQuery::default();
    for (k, v) in pairs {
        match k.as_str() {
            "user" => q.user = Some(v),
            "target" => q.target = Some(v),
            "decision" => {
                q.decision = Some(match v.as_str() {
                    "allow" => Effect::Allow,
                    "deny" => Effect::Deny,
                    _ => return Err(ApiError::field("decision", "allow or deny")),
                })
            }
            "since" => {
                let t = DateTime::parse_from_rfc3339(&v).map_err(|e| {
                    ApiError::field("since", format!("RFC 3339 time expected: {e}"))
                })?;
                q.since = Some(t.with_timezone(&Utc));
            }
            "limit" => {
                let n = v
                    .parse::<usize>()
                    .ok()
                    .filter(|n| (1..=MAX_LIMIT).contains(n))
                    .ok_or_else(|| ApiError::field("limit", format!("1 to {MAX_LIMIT}")))?;
                q.limit = Some(n);
            }
            _ => return Err(ApiError::field(k, "unknown query parameter")),
        }
    }
    Ok(q)
}

/// The handler; `export` answers JSON lines.
pub async fn query(
    state: &Arc<AppState>,
    req: Request<Incoming>,
    export: bool,
) -> Result<Resp, ApiError> {
    require_admin(state, &req)?;
    let pairs = query_pairs(&req, &["user", "target", "decision", "since", "limit"])?;
    let mut q = parse_query(pairs)?;
    if export && q.limit.is_none() {
        q.limit = Some(MAX_LIMIT);
    }
    // Records are acknowledged once journaled and stored just after: wait (briefly)
    // until every decision answered before this query is in the store.
    if !state
        .log
        .sync_index(std::time::Duration::from_secs(5))
        .await
    {
        tracing::warn!("access log query answered while the store is behind the journal");
    }
    let records = super::blocking(state, move |store| store.query_access(&q)).await?;
    if !export {
        return Ok(json(StatusCode::OK, &Records { records }));
    }
    let mut out = Vec::with_capacity(records.len() * 256);
    for r in &records {
        serde_json::to_writer(&mut out, r).map_err(ApiError::internal)?;
        out.push(b'\n');
    }
    Ok(bytes_response(
        StatusCode::OK,
        "application/x-ndjson",
        Bytes::from(out),
    ))
}
