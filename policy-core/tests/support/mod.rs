//! A local HTTP/1.1 server for the LLM tests: it speaks the Gemini
//! (`/v1beta/models/{model}:generateContent`) and OpenAI (`/chat/completions`) wire
//! formats and replays recorded responses from `tests/fixtures/llm/`, so the real
//! client code (reqwest, timeouts, retries, parsing) runs over TCP on 127.0.0.1 with
//! no network. Shared by `policy-core/tests/llm_*.rs` and the CLI's
//! `tests/llm_cli.rs`.
//!
//! Plain `std::net` and one thread per connection: the tests make a handful of
//! requests each, and this needs no async runtime or server crate in the build.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use policy_core::decision::Slot;
use policy_core::translate::{TranslateError, Translation};
use serde_json::Value;

/// One request the server received.
#[derive(Debug, Clone)]
pub struct Hit {
    /// `POST`.
    pub method: String,
    /// The path, e.g. `/v1beta/models/gemini-2.5-flash:generateContent`.
    pub path: String,
    /// Header names lower-cased.
    pub headers: Vec<(String, String)>,
    /// The JSON body (`Null` when it was not JSON).
    pub body: Value,
}

impl Hit {
    /// A header's value.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Which wire format the request used.
    pub fn provider(&self) -> &'static str {
        if self.path.ends_with(":generateContent") {
            "gemini"
        } else {
            "openai"
        }
    }

    /// The `{"slot", "text"}` user message the translators send.
    pub fn user_message(&self) -> Option<(String, String)> {
        let s = match self.provider() {
            "gemini" => self.body["contents"][0]["parts"][0]["text"].as_str()?,
            _ => self.body["messages"]
                .as_array()?
                .iter()
                .rev()
                .find(|m| m["role"] == "user")?["content"]
                .as_str()?,
        };
        let v: Value = serde_json::from_str(s).ok()?;
        Some((v["slot"].as_str()?.into(), v["text"].as_str()?.into()))
    }
}

/// What the server answers.
#[derive(Debug, Clone)]
pub struct Reply {
    /// HTTP status.
    pub status: u16,
    /// Body (JSON).
    pub body: String,
    /// Extra headers.
    pub headers: Vec<(String, String)>,
    /// Wait this long before answering (for timeouts).
    pub delay: Duration,
}

impl Reply {
    /// `status` with a fixture file's contents as the body.
    pub fn fixture(status: u16, name: &str) -> Reply {
        Reply {
            status,
            body: fixture(name),
            headers: Vec::new(),
            delay: Duration::ZERO,
        }
    }
    /// `status` with `body`.
    pub fn raw(status: u16, body: &str) -> Reply {
        Reply {
            status,
            body: body.to_string(),
            headers: Vec::new(),
            delay: Duration::ZERO,
        }
    }
    /// Adds a header.
    pub fn header(mut self, k: &str, v: &str) -> Reply {
        self.headers.push((k.into(), v.into()));
        self
    }
    /// Answers after `d`.
    pub fn after(mut self, d: Duration) -> Reply {
        self.delay = d;
        self
    }
}

type Handler = dyn Fn(&Hit, usize) -> Reply + Send + Sync;

/// A running server; stops when dropped.
pub struct Server {
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    hits: Arc<Mutex<Vec<Hit>>>,
    stop: Arc<AtomicBool>,
    accept: Option<JoinHandle<()>>,
}

impl Server {
    /// Starts a server whose `handler` answers each request, given the request and
    /// its 0-based number.
    pub fn start(handler: impl Fn(&Hit, usize) -> Reply + Send + Sync + 'static) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        let hits = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let handler: Arc<Handler> = Arc::new(handler);
        let counter = Arc::new(AtomicUsize::new(0));
        let (h2, s2) = (hits.clone(), stop.clone());
        let accept = std::thread::spawn(move || {
            for conn in listener.incoming() {
                if s2.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                let (handler, hits, counter) = (handler.clone(), h2.clone(), counter.clone());
                std::thread::spawn(move || serve(conn, &*handler, &hits, &counter));
            }
        });
        Server {
            base,
            hits,
            stop,
            accept: Some(accept),
        }
    }

    /// Replays the recorded golden answers: the provider from the path, the text
    /// from the user message, the fixture from `texts.json`. An unknown text gets a
    /// 500, so a test that sends one fails loudly.
    pub fn golden() -> Server {
        Server::start(|hit, _| golden_reply(hit))
    }

    /// Every request so far.
    pub fn hits(&self) -> Vec<Hit> {
        self.hits.lock().expect("lock").clone()
    }
}

/// The recorded answer for a request's text, or a 500 for an unknown text.
pub fn golden_reply(hit: &Hit) -> Reply {
    let Some((_, text)) = hit.user_message() else {
        return Reply::raw(400, r#"{"error":{"message":"no user message"}}"#);
    };
    match text_id(&text) {
        Some(id) => Reply::fixture(200, &format!("{}/{id}.json", hit.provider())),
        None => Reply::raw(
            500,
            &format!(r#"{{"error":{{"message":"no fixture for {text:?}"}}}}"#),
        ),
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop.
        let _ = TcpStream::connect(self.base.trim_start_matches("http://"));
        if let Some(h) = self.accept.take() {
            let _ = h.join();
        }
    }
}

fn serve(conn: TcpStream, handler: &Handler, hits: &Mutex<Vec<Hit>>, counter: &AtomicUsize) {
    let _ = conn.set_read_timeout(Some(Duration::from_secs(10)));
    let mut reader = BufReader::new(match conn.try_clone() {
        Ok(c) => c,
        Err(_) => return,
    });
    let mut line = String::new();
    if reader.read_line(&mut line).is_err() || line.is_empty() {
        return;
    }
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or_default().to_string();
    let path = parts.next().unwrap_or_default().to_string();
    let mut headers = Vec::new();
    let mut len = 0usize;
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).is_err() {
            return;
        }
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            let (k, v) = (k.trim().to_ascii_lowercase(), v.trim().to_string());
            if k == "content-length" {
                len = v.parse().unwrap_or(0);
            }
            headers.push((k, v));
        }
    }
    let mut body = vec![0u8; len];
    if reader.read_exact(&mut body).is_err() {
        return;
    }
    let hit = Hit {
        method,
        path,
        headers,
        body: serde_json::from_slice(&body).unwrap_or(Value::Null),
    };
    let n = counter.fetch_add(1, Ordering::SeqCst);
    hits.lock().expect("lock").push(hit.clone());
    let reply = handler(&hit, n);
    if !reply.delay.is_zero() {
        std::thread::sleep(reply.delay);
    }
    let mut out = format!(
        "HTTP/1.1 {} X\r\ncontent-type: application/json; charset=UTF-8\r\ncontent-length: {}\r\nconnection: close\r\n",
        reply.status,
        reply.body.len()
    );
    for (k, v) in &reply.headers {
        out.push_str(&format!("{k}: {v}\r\n"));
    }
    out.push_str("\r\n");
    let mut conn = conn;
    let _ = conn.write_all(out.as_bytes());
    let _ = conn.write_all(reply.body.as_bytes());
    let _ = conn.flush();
}

/// The fixtures directory (from policy-core's tests or from the workspace root's).
pub fn fixtures_dir() -> PathBuf {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let here = root.join("tests/fixtures/llm");
    if here.is_dir() {
        here
    } else {
        root.join("policy-core/tests/fixtures/llm")
    }
}

/// A fixture file's contents.
pub fn fixture(name: &str) -> String {
    let p = fixtures_dir().join(name);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// `(id, slot, text)` of every recorded text.
pub fn texts() -> Vec<(String, Slot, String)> {
    let v: Value = serde_json::from_str(&fixture("texts.json")).expect("texts.json");
    v.as_array()
        .expect("array")
        .iter()
        .map(|e| {
            (
                e["id"].as_str().unwrap_or_default().to_string(),
                serde_json::from_value(e["slot"].clone()).expect("slot"),
                e["text"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

/// The message of a translation that must fail with [`TranslateError::Failed`].
pub fn failed(r: Result<Translation, TranslateError>) -> String {
    match r {
        Err(TranslateError::Failed(m)) => m,
        Ok(t) => panic!("expected a failure, got {}", t.rule),
        Err(e) => panic!("expected Failed, got {e:?}"),
    }
}

/// The text of a recorded id (`G01`).
pub fn text(id: &str) -> String {
    texts()
        .into_iter()
        .find(|(i, _, _)| i == id)
        .map(|(_, _, t)| t)
        .unwrap_or_else(|| panic!("no text {id}"))
}

/// The id of a recorded text.
pub fn text_id(text: &str) -> Option<String> {
    texts()
        .into_iter()
        .find(|(_, _, t)| t == text)
        .map(|(i, _, _)| i)
}
