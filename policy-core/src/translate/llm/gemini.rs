//! The Gemini translator: `POST {base}/v1beta/models/{model}:generateContent` with
//! the key in `x-goog-api-key`, structured output (`responseMimeType:
//! application/json` and `responseJsonSchema`) and temperature 0.
//!
//! The response's `candidates[0].content.parts[*].text` is the answer;
//! `finishReason` other than `STOP` is an error (`MAX_TOKENS`: truncated; `SAFETY`,
//! `RECITATION`, `BLOCKLIST`, `PROHIBITED_CONTENT`, `SPII`: safety block), as is a
//! prompt blocked by `promptFeedback.blockReason`. `usageMetadata` is added to
//! [`GeminiTranslator::usage`].

use serde_json::{json, Value};

use super::{finish, prompt, snippet, LlmConfig, LlmError, Reply, Session, Usage};
use crate::decision::Slot;
use crate::translate::{TranslateError, Translation, Translator};

/// Translates with a Gemini model. See the module documentation.
#[derive(Debug)]
pub struct GeminiTranslator {
    s: Session,
}

impl GeminiTranslator {
    /// A translator for `cfg` (the key is required).
    pub fn new(cfg: LlmConfig) -> Result<GeminiTranslator, LlmError> {
        if cfg.api_key.is_none() {
            return Err(LlmError::MissingKey("GEMINI_API_KEY"));
        }
        Ok(GeminiTranslator {
            s: Session::new(cfg)?,
        })
    }

    /// A translator configured from the environment ([`LlmConfig::gemini_from_env`]).
    pub fn from_env() -> Result<GeminiTranslator, LlmError> {
        GeminiTranslator::new(LlmConfig::gemini_from_env()?)
    }

    /// Sets the policy's time zone.
    pub fn with_tz(mut self, tz: chrono_tz::Tz) -> Self {
        self.s.cfg.tz = tz;
        self
    }

    /// Tokens spent so far.
    pub fn usage(&self) -> &Usage {
        &self.s.usage
    }

    /// The request body for one text.
    pub fn request_body(&self, text: &str, slot: Slot) -> Value {
        json!({
            "systemInstruction": { "parts": [ { "text": self.s.system } ] },
            "contents": [ { "role": "user", "parts": [ { "text": prompt::user_message(text, slot) } ] } ],
            "generationConfig": {
                "temperature": 0,
                "responseMimeType": "application/json",
                "responseJsonSchema": self.s.schema,
            }
        })
    }

    fn call(&self, text: &str, slot: Slot) -> Result<Reply, LlmError> {
        let url = format!(
            "{}/v1beta/models/{}:generateContent",
            self.s.cfg.base_url, self.s.cfg.model
        );
        let key = self.s.cfg.api_key.clone().unwrap_or_default();
        let resp = self.s.http.post_json(
            &url,
            &[("x-goog-api-key", key)],
            &self.request_body(text, slot),
        )?;
        let u = &resp["usageMetadata"];
        self.s.usage.add(
            u["promptTokenCount"].as_u64().unwrap_or(0),
            u["candidatesTokenCount"].as_u64().unwrap_or(0)
                + u["thoughtsTokenCount"].as_u64().unwrap_or(0),
        );
        parse_response(&resp)
    }
}

fn parse_response(resp: &Value) -> Result<Reply, LlmError> {
    if let Some(block) = resp["promptFeedback"]["blockReason"].as_str() {
        let msg = resp["promptFeedback"]["blockReasonMessage"]
            .as_str()
            .map(|m| format!(": {m}"))
            .unwrap_or_default();
        return Err(LlmError::Safety(format!(
            "promptFeedback.blockReason {block}{msg}"
        )));
    }
    let Some(cand) = resp["candidates"].get(0) else {
        return Err(LlmError::BadResponse(format!(
            "candidates がありません: {}",
            snippet(&resp.to_string())
        )));
    };
    let reason = cand["finishReason"].as_str().unwrap_or("STOP");
    match reason {
        "STOP" => {}
        "MAX_TOKENS" => return Err(LlmError::Truncated(format!("finishReason {reason}"))),
        "SAFETY" | "RECITATION" | "BLOCKLIST" | "PROHIBITED_CONTENT" | "SPII" | "IMAGE_SAFETY" => {
            let rated: Vec<String> = cand["safetyRatings"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|r| r["blocked"].as_bool() == Some(true))
                .filter_map(|r| r["category"].as_str().map(str::to_string))
                .collect();
            let detail = if rated.is_empty() {
                String::new()
            } else {
                format!(", {}", rated.join(", "))
            };
            return Err(LlmError::Safety(format!("finishReason {reason}{detail}")));
        }
        other => {
            return Err(LlmError::BadResponse(format!(
                "想定外の finishReason {other}"
            )))
        }
    }
    let text: String = cand["content"]["parts"]
        .as_array()
        .into_iter()
        .flatten()
        // Thought summaries are not the answer.
        .filter(|p| p["thought"].as_bool() != Some(true))
        .filter_map(|p| p["text"].as_str())
        .collect();
    if text.trim().is_empty() {
        return Err(LlmError::BadResponse(
            "candidates[0].content.parts に text がありません".into(),
        ));
    }
    Ok(Reply::Content(text))
}

impl Translator for GeminiTranslator {
    fn id(&self) -> String {
        format!("gemini/{}", self.s.cfg.model)
    }

    fn translate(&self, text: &str, slot: Slot) -> Result<Translation, TranslateError> {
        let reply = self.call(text, slot)?;
        finish(text, slot, reply, self.s.cfg.tz)
    }
}
