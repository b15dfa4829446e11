//! Posture collection: one [`Collector`] per OS, all behind the same trait.
//!
//! The rule every collector follows: a value it cannot determine stays unknown
//! (`None`); it never guesses `true`. The Windows and macOS collectors run the OS's
//! own tools through a [`Runner`] and parse their output with pure functions
//! (`windows::parse_*`, `macos::parse_*`), so their logic is tested on any OS with
//! recorded outputs. The Linux collector reads `/etc`, `/proc` and `/sys` under a
//! configurable root and runs a few tools the same way.

pub mod linux;
pub mod macos;
pub mod windows;

use std::io::Read as _;
use std::net::{IpAddr, UdpSocket};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::posture::Posture;

/// What a collector found: the spec §2 `device` object, plus details that are not
/// policy attributes (shown by `rzts-agent collect --details`, never reported).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Collection {
    /// The posture to report (unknown attributes absent).
    pub posture: Posture,
    /// Facts that are not spec §2 attributes.
    pub details: Details,
}

/// Facts beside the posture.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Details {
    /// The kernel release (`uname -r`, `Darwin 23.4.0`, the Windows build).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kernel: Option<String>,
    /// Why attributes are unknown (a tool missing, access denied, unparseable output).
    pub notes: Vec<String>,
}

impl Details {
    /// Records why something is unknown.
    pub fn note(&mut self, what: impl Into<String>) {
        self.notes.push(what.into());
    }
}

/// How to collect.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Options {
    /// Report `device.location` when the OS has a location source (off by default,
    /// an organisation's choice). No collector implements one yet: Linux has no OS
    /// location service, and the Windows and macOS location APIs need a signed,
    /// user-consented app; the attribute stays absent.
    pub location: bool,
}

/// A posture collector for one OS.
pub trait Collector: Send + Sync {
    /// The OS family it collects for.
    fn family(&self) -> policy_core::context::OsFamily;
    /// Collects the posture now (blocking: reads files and runs tools).
    fn collect(&self, options: &Options) -> Collection;
}

/// The collector for the OS this program runs on (the Linux one on other Unixes).
pub fn for_this_os() -> Box<dyn Collector> {
    let runner = Box::new(SystemRunner::default());
    if cfg!(target_os = "windows") {
        Box::new(windows::WindowsCollector::new(runner))
    } else if cfg!(target_os = "macos") {
        Box::new(macos::MacosCollector::new(runner))
    } else {
        Box::new(linux::LinuxCollector::new(runner))
    }
}

/// What a tool printed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Output {
    /// The exit code (`None` when killed by a signal or the time limit).
    pub code: Option<i32>,
    /// Standard output (lossy UTF-8).
    pub stdout: String,
    /// Standard error (lossy UTF-8).
    pub stderr: String,
}

impl Output {
    /// Standard output when the tool exited with 0, else `None`.
    pub fn ok(&self) -> Option<&str> {
        (self.code == Some(0)).then_some(self.stdout.as_str())
    }
}

/// Runs an external tool; tests substitute recorded outputs.
pub trait Runner: Send + Sync {
    /// Runs `program` with `args`; `None` when it cannot be started (not installed).
    fn run(&self, program: &str, args: &[&str]) -> Option<Output>;

    /// Standard output of a run that exited with 0, else `None`.
    fn stdout(&self, program: &str, args: &[&str]) -> Option<String> {
        self.run(program, args)
            .and_then(|o| o.ok().map(str::to_string))
    }
}

/// Runs tools for real, each with a time limit (killed when it is exceeded).
#[derive(Debug, Clone)]
pub struct SystemRunner {
    /// The longest a tool may run.
    pub timeout: Duration,
}

impl Default for SystemRunner {
    fn default() -> Self {
        SystemRunner {
            timeout: Duration::from_secs(30),
        }
    }
}

impl Runner for SystemRunner {
    fn run(&self, program: &str, args: &[&str]) -> Option<Output> {
        let mut child = Command::new(program)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // Tools whose output is parsed as text answer in English where they can.
            .env("LC_ALL", "C")
            .spawn()
            .ok()?;
        let drain = |pipe: Option<Box<dyn std::io::Read + Send>>| {
            std::thread::spawn(move || {
                let mut buf = Vec::new();
                if let Some(mut p) = pipe {
                    let _ = p.read_to_end(&mut buf);
                }
                String::from_utf8_lossy(&buf).into_owned()
            })
        };
        let out = drain(child.stdout.take().map(|p| Box::new(p) as _));
        let err = drain(child.stderr.take().map(|p| Box::new(p) as _));
        let deadline = Instant::now() + self.timeout;
        let code = loop {
            match child.try_wait() {
                Ok(Some(status)) => break status.code(),
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(20));
                }
                _ => {
                    let _ = child.kill();
                    let _ = child.wait();
                    break None;
                }
            }
        };
        Some(Output {
            code,
            stdout: out.join().unwrap_or_default(),
            stderr: err.join().unwrap_or_default(),
        })
    }
}

/// The local address the OS would use to reach the internet (the default route's
/// interface address), found by connecting a UDP socket to a documentation address:
/// `connect` on UDP only selects a route, it sends nothing. IPv4 first, then IPv6.
pub fn default_route_ip() -> Option<IpAddr> {
    let probe = |bind: &str, target: &str| -> Option<IpAddr> {
        let s = UdpSocket::bind(bind).ok()?;
        s.connect(target).ok()?;
        let ip = s.local_addr().ok()?.ip();
        (!ip.is_unspecified() && !ip.is_loopback()).then_some(ip)
    };
    probe("0.0.0.0:0", "203.0.113.1:9").or_else(|| probe("[::]:0", "[2001:db8::1]:9"))
}

/// The value after `key` and a colon on the first line whose key (trimmed) equals
/// `key` exactly, e.g. `    SSID                   : corp-wifi` → `corp-wifi`.
pub(crate) fn colon_value<'a>(text: &'a str, key: &str) -> Option<&'a str> {
    text.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        (k.trim() == key).then(|| v.trim())
    })
}

/// Parses a PowerShell `ConvertTo-Json` answer that may be one object or an array
/// (PowerShell unwraps one-element arrays) into a list of objects.
pub(crate) fn json_objects(text: &str) -> Option<Vec<serde_json::Map<String, serde_json::Value>>> {
    let text = text.trim_start_matches('\u{feff}').trim();
    match serde_json::from_str::<serde_json::Value>(text).ok()? {
        serde_json::Value::Object(m) => Some(vec![m]),
        serde_json::Value::Array(a) => Some(
            a.into_iter()
                .filter_map(|v| match v {
                    serde_json::Value::Object(m) => Some(m),
                    _ => None,
                })
                .collect(),
        ),
        _ => None,
    }
}

/// Sorted, de-duplicated, non-empty names (for `device.apps`).
pub(crate) fn app_list(names: impl IntoIterator<Item = String>) -> Option<Vec<String>> {
    let mut v: Vec<String> = names
        .into_iter()
        .map(|n| n.trim().to_string())
        .filter(|n| !n.is_empty())
        .collect();
    v.sort();
    v.dedup();
    (!v.is_empty()).then_some(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colon_values_match_whole_keys() {
        let t = "    BSSID : aa:bb\n    SSID : corp\n";
        assert_eq!(colon_value(t, "SSID"), Some("corp"));
        assert_eq!(colon_value(t, "BSSID"), Some("aa:bb"));
        assert_eq!(colon_value(t, "X"), None);
    }

    #[test]
    fn json_objects_accept_one_or_many() {
        assert_eq!(json_objects(r#"{"a":1}"#).map(|v| v.len()), Some(1));
        assert_eq!(
            json_objects(r#"[{"a":1},{"a":2}]"#).map(|v| v.len()),
            Some(2)
        );
        assert_eq!(json_objects(""), None);
        assert_eq!(json_objects("Access denied"), None);
    }

    #[test]
    fn system_runner_reports_missing_tools_and_exit_codes() {
        let r = SystemRunner::default();
        assert_eq!(r.run("/nonexistent/tool", &[]), None);
        let out = r
            .run("sh", &["-c", "echo hi; echo err >&2; exit 3"])
            .unwrap();
        assert_eq!(out.code, Some(3));
        assert_eq!(out.stdout, "hi\n");
        assert_eq!(out.stderr, "err\n");
        assert_eq!(out.ok(), None);
        let slow = SystemRunner {
            timeout: Duration::from_millis(100),
        };
        assert_eq!(slow.run("sleep", &["5"]).unwrap().code, None);
    }
}
