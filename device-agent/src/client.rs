//! The agent's HTTP client: JSON POSTs to the decision server, with the server's
//! error answers (`{"error", "message"}`) turned into [`AgentError::Refused`].

use std::time::Duration;

use crate::AgentError;

/// Posts `body` (JSON bytes) to `base` + `path` with extra headers; the parsed JSON
/// answer on 2xx.
pub async fn post_json<T: serde::de::DeserializeOwned>(
    base: &str,
    path: &str,
    body: Vec<u8>,
    headers: &[(&str, String)],
) -> Result<T, AgentError> {
    let url = format!("{}{path}", base.trim_end_matches('/'));
    let client = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(10))
        .timeout(Duration::from_secs(30))
        .build()
        .map_err(|e| AgentError::Http(e.to_string()))?;
    let mut req = client
        .post(&url)
        .header("content-type", "application/json")
        .body(body);
    for (k, v) in headers {
        req = req.header(*k, v);
    }
    let resp = req
        .send()
        .await
        .map_err(|e| AgentError::Http(format!("{url}: {e}")))?;
    let status = resp.status();
    let bytes = resp
        .bytes()
        .await
        .map_err(|e| AgentError::Http(format!("{url}: {e}")))?;
    if !status.is_success() {
        let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or_default();
        let field = |k: &str| v.get(k).and_then(|x| x.as_str()).unwrap_or("").to_string();
        return Err(AgentError::Refused {
            status: status.as_u16(),
            code: field("error"),
            message: field("message"),
        });
    }
    serde_json::from_slice(&bytes)
        .map_err(|e| AgentError::Http(format!("{url}: unexpected answer: {e}")))
}
