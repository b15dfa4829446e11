//! The OpenAI-compatible translator: `POST {base}/chat/completions` with a Bearer
//! key (optional for local servers), temperature 0 and `response_format` of type
//! `json_schema` (strict), for OpenAI, llama.cpp's server, vLLM, Ollama and
//! providers that keep policies in the country.
//!
//! The response's `choices[0].message.content` is the answer and
//! `choices[0].message.refusal` a refusal; `finish_reason` `length` means truncated,
//! `content_filter` a safety block. `usage` is added to [`OpenAiTranslator::usage`].

use serde_json::{json, Value};

use super::{finish, prompt, snippet, LlmConfig, LlmError, Reply, Session, Usage};
use crate::decision::Slot;
use crate::translate::{TranslateError, Translation, Translator};

/// Translates with an OpenAI-compatible chat-completions endpoint. See the module
/// documentation.
#[derive(Debug)]
pub struct OpenAiTranslator {
    s: Session,
}

impl OpenAiTranslator {
    /// A translator for `cfg`.
    pub fn new(cfg: LlmConfig) -> Result<OpenAiTranslator, LlmError> {
        Ok(OpenAiTranslator {
            s: Session::new(cfg)?,
        })
    }

    /// A translator configured from the environment ([`LlmConfig::openai_from_env`]).
    pub fn from_env() -> Result<OpenAiTranslator, LlmError> {
        OpenAiTranslator::new(LlmConfig::openai_from_env()?)
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
            "model": self.s.cfg.model,
            "temperature": 0,
            "messages": [
                { "role": "system", "content": self.s.system },
                { "role": "user", "content": prompt::user_message(text, slot) },
            ],
            "response_format": {
                "type": "json_schema",
                "json_schema": { "name": "rzts_rule", "strict": true, "schema": self.s.schema },
            },
        })
    }

    fn call(&self, text: &str, slot: Slot) -> Result<Reply, LlmError> {
        let url = format!("{}/chat/completions", self.s.cfg.base_url);
        let headers: Vec<(&str, String)> = self
            .s
            .cfg
            .api_key
            .iter()
            .map(|k| ("authorization", format!("Bearer {k}")))
            .collect();
        let resp = self
            .s
            .http
            .post_json(&url, &headers, &self.request_body(text, slot))?;
        let u = &resp["usage"];
        self.s.usage.add(
            u["prompt_tokens"].as_u64().unwrap_or(0),
            u["completion_tokens"].as_u64().unwrap_or(0),
        );
        parse_response(&resp)
    }
}

fn parse_response(resp: &Value) -> Result<Reply, LlmError> {
    let Some(choice) = resp["choices"].get(0) else {
        return Err(LlmError::BadResponse(format!(
            "choices がありません: {}",
            snippet(&resp.to_string())
        )));
    };
    let msg = &choice["message"];
    if let Some(r) = msg["refusal"].as_str().filter(|r| !r.trim().is_empty()) {
        return Ok(Reply::Refusal(r.to_string()));
    }
    match choice["finish_reason"].as_str().unwrap_or("stop") {
        "stop" => {}
        "length" => return Err(LlmError::Truncated("finish_reason length".into())),
        "content_filter" => return Err(LlmError::Safety("finish_reason content_filter".into())),
        other => {
            return Err(LlmError::BadResponse(format!(
                "想定外の finish_reason {other}"
            )))
        }
    }
    match msg["content"].as_str() {
        Some(c) if !c.trim().is_empty() => Ok(Reply::Content(c.to_string())),
        _ => Err(LlmError::BadResponse(
            "choices[0].message.content がありません".into(),
        )),
    }
}

impl Translator for OpenAiTranslator {
    fn id(&self) -> String {
        format!("openai/{}", self.s.cfg.model)
    }

    fn translate(&self, text: &str, slot: Slot) -> Result<Translation, TranslateError> {
        let reply = self.call(text, slot)?;
        finish(text, slot, reply, self.s.cfg.tz)
    }
}
