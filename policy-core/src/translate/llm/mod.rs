//! LLM translators (feature `llm`): Gemini ([`GeminiTranslator`]) and any
//! OpenAI-compatible chat-completions endpoint ([`OpenAiTranslator`]: OpenAI, a
//! llama.cpp server, vLLM, Ollama, a domestic provider).
//!
//! A model's answer is a proposal, never trusted. Each translator:
//!
//! 1. sends the text as data with a system instruction built from the attribute
//!    schema ([`prompt`]), temperature 0, and a response JSON schema generated from
//!    the wire types ([`wire`]);
//! 2. parses the answer, rejecting unknown fields and conditions that do not cite an
//!    exact part of the text ([`wire::to_translation`]);
//! 3. runs the full verification pipeline ([`crate::translate::verify()`] with
//!    [`Checks::model`]) before returning.
//!
//! Transport ([`Http`]): connect and total timeouts, bounded retries with exponential
//! backoff and jitter on 429, 5xx and network errors, and errors that say what to do
//! ([`LlmError`]: invalid key, quota exhausted, safety block, truncated output, ...).
//!
//! Configuration comes from the environment in the CLI ([`LlmConfig::gemini_from_env`],
//! [`LlmConfig::openai_from_env`]) and from [`LlmConfig`] directly in code and tests.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use chrono_tz::Tz;
use serde_json::Value;

use crate::decision::Slot;
use crate::translate::{verify, Checks, TranslateError, Translation};

pub mod gemini;
pub mod openai;
pub mod prompt;
pub mod wire;

pub use gemini::GeminiTranslator;
pub use openai::OpenAiTranslator;

/// Settings shared by the LLM translators.
#[derive(Debug, Clone)]
pub struct LlmConfig {
    /// The API's base URL, without a trailing slash
    /// (`https://generativelanguage.googleapis.com`, `https://api.openai.com/v1`).
    pub base_url: String,
    /// The API key; `None` only for OpenAI-compatible servers that need none.
    pub api_key: Option<String>,
    /// The model name (`gemini-2.5-flash`, `gpt-4o-mini`).
    pub model: String,
    /// Limit for establishing a connection.
    pub connect_timeout: Duration,
    /// Limit for one whole request, response included.
    pub timeout: Duration,
    /// Retries after the first attempt on 429, 5xx and network errors.
    pub max_retries: u32,
    /// The first backoff; it doubles with each retry (with jitter), up to
    /// `backoff_max`.
    pub backoff_base: Duration,
    /// The longest backoff.
    pub backoff_max: Duration,
    /// The policy's time zone (for the lint and the comparison with the offline
    /// translator).
    pub tz: Tz,
}

/// Default model of the Gemini translator.
pub const DEFAULT_GEMINI_MODEL: &str = "gemini-2.5-flash";
/// Default base URL of the Gemini API.
pub const DEFAULT_GEMINI_BASE_URL: &str = "https://generativelanguage.googleapis.com";
/// Default model of the OpenAI-compatible translator.
pub const DEFAULT_OPENAI_MODEL: &str = "gpt-4o-mini";
/// Default base URL of the OpenAI-compatible translator.
pub const DEFAULT_OPENAI_BASE_URL: &str = "https://api.openai.com/v1";

impl LlmConfig {
    /// A configuration with the default timeouts and retries.
    pub fn new(base_url: &str, api_key: Option<&str>, model: &str) -> LlmConfig {
        LlmConfig {
            base_url: base_url.trim_end_matches('/').to_string(),
            api_key: api_key.map(str::to_string),
            model: model.to_string(),
            connect_timeout: Duration::from_secs(10),
            timeout: Duration::from_secs(120),
            max_retries: 4,
            backoff_base: Duration::from_millis(1000),
            backoff_max: Duration::from_secs(30),
            tz: chrono_tz::Asia::Tokyo,
        }
    }

    /// Gemini from the environment: `GEMINI_API_KEY` (required), `RZTS_GEMINI_MODEL`,
    /// `GEMINI_BASE_URL`, plus the common `RZTS_LLM_*` settings.
    pub fn gemini_from_env() -> Result<LlmConfig, LlmError> {
        let key = env("GEMINI_API_KEY").ok_or(LlmError::MissingKey("GEMINI_API_KEY"))?;
        let base = env("GEMINI_BASE_URL").unwrap_or_else(|| DEFAULT_GEMINI_BASE_URL.into());
        let model = env("RZTS_GEMINI_MODEL").unwrap_or_else(|| DEFAULT_GEMINI_MODEL.into());
        LlmConfig::new(&base, Some(&key), &model).with_env_overrides()
    }

    /// An OpenAI-compatible endpoint from the environment: `OPENAI_BASE_URL`,
    /// `OPENAI_API_KEY` (required for the default base URL, optional for a local
    /// server), `RZTS_OPENAI_MODEL`, plus the common `RZTS_LLM_*` settings.
    pub fn openai_from_env() -> Result<LlmConfig, LlmError> {
        let base = env("OPENAI_BASE_URL").unwrap_or_else(|| DEFAULT_OPENAI_BASE_URL.into());
        let key = env("OPENAI_API_KEY");
        if key.is_none() && base.trim_end_matches('/') == DEFAULT_OPENAI_BASE_URL {
            return Err(LlmError::MissingKey("OPENAI_API_KEY"));
        }
        let model = env("RZTS_OPENAI_MODEL").unwrap_or_else(|| DEFAULT_OPENAI_MODEL.into());
        LlmConfig::new(&base, key.as_deref(), &model).with_env_overrides()
    }

    /// `RZTS_LLM_TIMEOUT_SECS`, `RZTS_LLM_CONNECT_TIMEOUT_SECS`, `RZTS_LLM_RETRIES`,
    /// `RZTS_LLM_BACKOFF_MS` override the defaults.
    fn with_env_overrides(mut self) -> Result<LlmConfig, LlmError> {
        let num = |name: &'static str| -> Result<Option<u64>, LlmError> {
            env(name)
                .map(|v| {
                    v.parse::<u64>()
                        .map_err(|_| LlmError::Config(format!("{name}={v:?} は整数ではありません")))
                })
                .transpose()
        };
        if let Some(s) = num("RZTS_LLM_TIMEOUT_SECS")? {
            self.timeout = Duration::from_secs(s.max(1));
        }
        if let Some(s) = num("RZTS_LLM_CONNECT_TIMEOUT_SECS")? {
            self.connect_timeout = Duration::from_secs(s.max(1));
        }
        if let Some(n) = num("RZTS_LLM_RETRIES")? {
            self.max_retries = n.min(10) as u32;
        }
        if let Some(ms) = num("RZTS_LLM_BACKOFF_MS")? {
            self.backoff_base = Duration::from_millis(ms);
        }
        Ok(self)
    }
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

/// Why a call to a model failed. Each message says what to do about it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LlmError {
    /// The API key variable is not set.
    #[error("{0} が設定されていません（API キーを環境変数で渡してください）")]
    MissingKey(&'static str),
    /// A setting is malformed.
    #[error("設定が不正です: {0}")]
    Config(String),
    /// The key was refused (400 API_KEY_INVALID, 401, 403).
    #[error("API キーが無効か権限がありません（HTTP {status}）: {message}")]
    InvalidKey {
        /// HTTP status.
        status: u16,
        /// The API's message.
        message: String,
    },
    /// 429 after every retry: rate limit or quota.
    #[error("クォータまたはレート制限を超えました（HTTP 429、{attempts} 回試行）: {message}")]
    Quota {
        /// Attempts made.
        attempts: u32,
        /// The API's message.
        message: String,
    },
    /// 5xx after every retry.
    #[error("サーバエラーが続きました（HTTP {status}、{attempts} 回試行）: {message}")]
    Server {
        /// The last HTTP status.
        status: u16,
        /// Attempts made.
        attempts: u32,
        /// The API's message.
        message: String,
    },
    /// Connection failure or timeout after every retry.
    #[error("接続できません（{attempts} 回試行）: {message}")]
    Network {
        /// Attempts made.
        attempts: u32,
        /// What failed.
        message: String,
    },
    /// Another HTTP error that retrying will not fix (400 bad request, 404 model not
    /// found, ...).
    #[error("API がリクエストを拒否しました（HTTP {status}）: {message}")]
    Rejected {
        /// HTTP status.
        status: u16,
        /// The API's message.
        message: String,
    },
    /// The model's output or the prompt was blocked by a safety filter.
    #[error("安全フィルタによりブロックされました（{0}）。テキストを見直してください")]
    Safety(String),
    /// The output was cut off at the token limit.
    #[error("モデルの出力が上限で途切れました（{0}）")]
    Truncated(String),
    /// The response does not have the API's shape.
    #[error("API の応答が不正です: {0}")]
    BadResponse(String),
}

impl From<LlmError> for TranslateError {
    fn from(e: LlmError) -> TranslateError {
        TranslateError::Failed(e.to_string())
    }
}

/// Tokens spent, summed over every call of a translator.
#[derive(Debug, Default)]
pub struct Usage {
    prompt: AtomicU64,
    output: AtomicU64,
    calls: AtomicU64,
}

impl Usage {
    pub(crate) fn add(&self, prompt: u64, output: u64) {
        self.prompt.fetch_add(prompt, Ordering::Relaxed);
        self.output.fetch_add(output, Ordering::Relaxed);
        self.calls.fetch_add(1, Ordering::Relaxed);
    }
    /// (calls, prompt tokens, output tokens) so far.
    pub fn totals(&self) -> (u64, u64, u64) {
        (
            self.calls.load(Ordering::Relaxed),
            self.prompt.load(Ordering::Relaxed),
            self.output.load(Ordering::Relaxed),
        )
    }
}

/// What every model translator holds: its configuration, the HTTP client, the system
/// instruction and response schema (built once), and the tokens spent.
#[derive(Debug)]
pub(crate) struct Session {
    pub(crate) cfg: LlmConfig,
    pub(crate) http: Http,
    pub(crate) system: String,
    pub(crate) schema: serde_json::Value,
    pub(crate) usage: Usage,
}

impl Session {
    pub(crate) fn new(cfg: LlmConfig) -> Result<Session, LlmError> {
        Ok(Session {
            http: Http::new(&cfg)?,
            cfg,
            system: prompt::system_instruction(),
            schema: wire::response_schema(),
            usage: Usage::default(),
        })
    }
}

/// A JSON-over-HTTPS client with timeouts and bounded retries.
#[derive(Debug)]
pub struct Http {
    client: reqwest::blocking::Client,
    max_retries: u32,
    backoff_base: Duration,
    backoff_max: Duration,
}

impl Http {
    /// A client for `cfg`'s timeouts and retries.
    pub fn new(cfg: &LlmConfig) -> Result<Http, LlmError> {
        let client = reqwest::blocking::Client::builder()
            .connect_timeout(cfg.connect_timeout)
            .timeout(cfg.timeout)
            .user_agent(concat!("rzts/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| LlmError::Config(format!("HTTP クライアントを作れません: {e}")))?;
        Ok(Http {
            client,
            max_retries: cfg.max_retries,
            backoff_base: cfg.backoff_base,
            backoff_max: cfg.backoff_max,
        })
    }

    /// The backoff before retry `n` (0-based): `base * 2^n` capped at the maximum,
    /// the upper half jittered so concurrent clients spread out.
    fn backoff(&self, n: u32) -> Duration {
        let full = self
            .backoff_base
            .saturating_mul(1u32.checked_shl(n.min(16)).unwrap_or(u32::MAX))
            .min(self.backoff_max);
        let half = full / 2;
        let mut h = RandomState::new().build_hasher();
        h.write_u32(n);
        let frac = (h.finish() % 1_000_001) as f64 / 1_000_000.0;
        half + half.mul_f64(frac)
    }

    /// POSTs `body` as JSON to `url` with `headers` and returns the parsed JSON of a
    /// 2xx response. Retries 429, 5xx and network errors; a `Retry-After` header of
    /// at most the maximum backoff is honoured.
    pub fn post_json(
        &self,
        url: &str,
        headers: &[(&str, String)],
        body: &Value,
    ) -> Result<Value, LlmError> {
        let mut attempt = 0u32;
        loop {
            let mut req = self.client.post(url).json(body);
            for (k, v) in headers {
                req = req.header(*k, v);
            }
            let outcome = req.send().and_then(|resp| {
                let status = resp.status().as_u16();
                let retry_after = resp
                    .headers()
                    .get("retry-after")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.trim().parse::<u64>().ok())
                    .map(Duration::from_secs);
                resp.text().map(|text| (status, retry_after, text))
            });
            let attempts = attempt + 1;
            let (failure, wait) = match outcome {
                Ok((status, _, text)) if (200..300).contains(&status) => {
                    return serde_json::from_str(&text).map_err(|e| {
                        LlmError::BadResponse(format!(
                            "JSON ではありません: {e}: {}",
                            snippet(&text)
                        ))
                    });
                }
                Ok((status, retry_after, text)) => {
                    let (message, reasons) = api_error(&text);
                    let key_invalid = reasons.iter().any(|r| r == "API_KEY_INVALID")
                        || (status == 400 && message.to_lowercase().contains("api key"));
                    match status {
                        401 | 403 => return Err(LlmError::InvalidKey { status, message }),
                        400 if key_invalid => return Err(LlmError::InvalidKey { status, message }),
                        429 => (LlmError::Quota { attempts, message }, retry_after),
                        500..=599 => (
                            LlmError::Server {
                                status,
                                attempts,
                                message,
                            },
                            retry_after,
                        ),
                        _ => return Err(LlmError::Rejected { status, message }),
                    }
                }
                Err(e) => {
                    let kind = if e.is_timeout() {
                        "タイムアウト"
                    } else if e.is_connect() {
                        "接続失敗"
                    } else {
                        "通信エラー"
                    };
                    (
                        LlmError::Network {
                            attempts,
                            message: format!("{kind}: {}", error_chain(&e)),
                        },
                        None,
                    )
                }
            };
            if attempt >= self.max_retries {
                return Err(failure);
            }
            let wait = wait
                .filter(|w| *w <= self.backoff_max)
                .unwrap_or_else(|| self.backoff(attempt));
            std::thread::sleep(wait);
            attempt += 1;
        }
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(inner) = src {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        src = inner.source();
    }
    s
}

/// At most 200 characters of a body, for messages.
pub(crate) fn snippet(s: &str) -> String {
    crate::check::clip(s, 200)
}

/// The message and reasons of an error body: Google's
/// `{"error":{"code","message","status","details":[{"reason"}]}}` and OpenAI's
/// `{"error":{"message","type","code"}}`.
fn api_error(body: &str) -> (String, Vec<String>) {
    let Ok(v) = serde_json::from_str::<Value>(body) else {
        return (snippet(body.trim()), Vec::new());
    };
    let e = &v["error"];
    let message = e["message"]
        .as_str()
        .map(str::to_string)
        .unwrap_or_else(|| snippet(body.trim()));
    let mut reasons: Vec<String> = e["details"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|d| d["reason"].as_str().map(str::to_string))
        .collect();
    for k in ["status", "code", "type"] {
        if let Some(s) = e[k].as_str() {
            reasons.push(s.to_string());
        }
    }
    let message = if reasons.is_empty() {
        message
    } else {
        format!("{message} [{}]", reasons.join(", "))
    };
    (message, reasons)
}

/// The model's content for one text, before parsing.
pub(crate) enum Reply {
    /// JSON text in the wire format.
    Content(String),
    /// The model declined (OpenAI's `refusal`).
    Refusal(String),
}

/// Turns the model's reply into a verified translation: parse (unknown fields
/// rejected), cite-check, convert through the canonical text, then the full
/// verification pipeline.
pub(crate) fn finish(
    text: &str,
    slot: Slot,
    reply: Reply,
    tz: Tz,
) -> Result<Translation, TranslateError> {
    let content = match reply {
        Reply::Content(c) => c,
        Reply::Refusal(r) => {
            return Err(TranslateError::Refused {
                phrase: text.to_string(),
                span: 0..text.len(),
                reason: format!("モデルが回答を拒否しました: {r}"),
            })
        }
    };
    let answer =
        wire::parse_answer(&content).map_err(|e| TranslateError::Rejected(e.to_string()))?;
    let t = match wire::to_translation(text, &answer) {
        Ok(Some(t)) => t,
        Ok(None) => {
            let reason = answer
                .reason
                .filter(|r| !r.trim().is_empty())
                .unwrap_or_else(|| "理由の説明はありません".into());
            return Err(TranslateError::Refused {
                phrase: text.to_string(),
                span: 0..text.len(),
                reason: format!("モデルの判断: {reason}"),
            });
        }
        Err(e) => return Err(TranslateError::Rejected(e.to_string())),
    };
    verify(&t, slot, &Checks::model(tz))?;
    Ok(t)
}
