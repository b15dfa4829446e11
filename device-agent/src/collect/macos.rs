//! The macOS collector: runs macOS's own tools and parses their output.
//!
//! `system_profiler -json` is locale-independent (keys are fixed; only display
//! values are localised). `fdesetup`, `socketfilterfw`, `sysadminctl` and
//! `networksetup` print English on every locale; the runner also sets `LC_ALL=C`.
//!
//! | attribute | tool |
//! |---|---|
//! | `os.name`, `os.version`, kernel | `system_profiler -json SPSoftwareDataType` (`os_version`, `kernel_version`) |
//! | `tpm.*` | Macs have no TPM (the Secure Enclave is not one): `present = false`, `enabled = false` |
//! | `disk.*` | `fdesetup status` (`FileVault is On.` → filevault) |
//! | `firewall` | `/usr/libexec/ApplicationFirewall/socketfilterfw --getglobalstate` (`State = 1` or `2`: on) |
//! | `screen_lock` | `sysadminctl -screenLock status` (inside a user session; prints on stderr) |
//! | `apps` | `system_profiler -json SPApplicationsDataType` (`_name`) |
//! | `network.ssid` | `networksetup -getairportnetwork en0` |
//! | `windows_hello`, `antivirus`, `location` | not collected (unknown) |

use policy_core::context::{DiskMethod, OsFamily};
use policy_core::value::Version;
use serde_json::Value;

use super::{app_list, Collection, Collector, Options, Runner};

/// Collects on macOS.
pub struct MacosCollector {
    runner: Box<dyn Runner>,
}

impl MacosCollector {
    /// A collector running tools through `runner`.
    pub fn new(runner: Box<dyn Runner>) -> MacosCollector {
        MacosCollector { runner }
    }
}

impl Collector for MacosCollector {
    fn family(&self) -> OsFamily {
        OsFamily::Macos
    }

    fn collect(&self, options: &Options) -> Collection {
        let mut c = Collection::default();
        let (p, d) = (&mut c.posture, &mut c.details);
        p.os.family = Some(self.family());
        match self
            .runner
            .stdout("system_profiler", &["-json", "SPSoftwareDataType"])
            .and_then(|o| parse_sp_software(&o))
        {
            Some(sw) => {
                p.os.name = sw.name;
                p.os.version = sw.version;
                d.kernel = sw.kernel;
            }
            None => d.note("os: system_profiler SPSoftwareDataType failed"),
        }
        p.tpm.present = Some(false);
        p.tpm.enabled = Some(false);
        if let Some(on) = self
            .runner
            .stdout("fdesetup", &["status"])
            .and_then(|o| parse_fdesetup(&o))
        {
            p.disk.encrypted = Some(on);
            p.disk.method = on.then_some(DiskMethod::Filevault);
        }
        p.firewall = self
            .runner
            .stdout(
                "/usr/libexec/ApplicationFirewall/socketfilterfw",
                &["--getglobalstate"],
            )
            .and_then(|o| parse_socketfilterfw(&o));
        p.screen_lock = self
            .runner
            .run("sysadminctl", &["-screenLock", "status"])
            .and_then(|o| parse_sysadminctl_screenlock(&format!("{}{}", o.stdout, o.stderr)));
        p.apps = self
            .runner
            .stdout("system_profiler", &["-json", "SPApplicationsDataType"])
            .and_then(|o| parse_sp_applications(&o));
        p.network.ip = super::default_route_ip();
        p.network.ssid = self
            .runner
            .stdout("networksetup", &["-getairportnetwork", "en0"])
            .and_then(|o| parse_airport_network(&o));
        if options.location {
            d.note("location: the macOS location API is not implemented");
        }
        c
    }
}

/// What `SPSoftwareDataType` says about the system.
#[derive(Debug, Clone, PartialEq)]
pub struct Software {
    /// `macOS`.
    pub name: Option<String>,
    /// `14.4.1`.
    pub version: Option<Version>,
    /// `Darwin 23.4.0`.
    pub kernel: Option<String>,
}

/// `system_profiler -json SPSoftwareDataType`: `os_version` is
/// `"macOS 14.4.1 (23E224)"` → name `macOS`, version `14.4.1`.
pub fn parse_sp_software(json: &str) -> Option<Software> {
    let v: Value = serde_json::from_str(json).ok()?;
    let item = v.get("SPSoftwareDataType")?.as_array()?.first()?;
    let os = item.get("os_version").and_then(Value::as_str);
    let (name, version) = match os {
        Some(s) => {
            let s = s.split(" (").next().unwrap_or(s).trim();
            match s.rsplit_once(' ') {
                Some((n, v)) => (Some(n.to_string()), v.parse().ok()),
                None => (Some(s.to_string()), None),
            }
        }
        None => (None, None),
    };
    let kernel = item
        .get("kernel_version")
        .and_then(Value::as_str)
        .map(str::to_string);
    (name.is_some() || kernel.is_some()).then_some(Software {
        name,
        version,
        kernel,
    })
}

/// `fdesetup status` → FileVault on (true) or off (false); encryption or
/// decryption in progress is unknown.
pub fn parse_fdesetup(text: &str) -> Option<bool> {
    let first = text.lines().next()?.trim();
    if text.contains("in progress") {
        return None;
    }
    match first {
        "FileVault is On." => Some(true),
        "FileVault is Off." => Some(false),
        _ => None,
    }
}

/// `socketfilterfw --getglobalstate` → `(State = 0)` off, `1` on, `2` on (block all).
pub fn parse_socketfilterfw(text: &str) -> Option<bool> {
    let state = text.split("State = ").nth(1)?;
    match state.trim_start().chars().next()? {
        '0' => Some(false),
        '1' | '2' => Some(true),
        _ => None,
    }
}

/// `sysadminctl -screenLock status` → `screenLock is off` false;
/// `screenLock delay is immediate` / `... is N seconds` true.
pub fn parse_sysadminctl_screenlock(text: &str) -> Option<bool> {
    if text.contains("screenLock is off") {
        Some(false)
    } else if text.contains("screenLock delay is") {
        Some(true)
    } else {
        None
    }
}

/// `system_profiler -json SPApplicationsDataType` → the applications' `_name`s.
pub fn parse_sp_applications(json: &str) -> Option<Vec<String>> {
    let v: Value = serde_json::from_str(json).ok()?;
    let apps = v.get("SPApplicationsDataType")?.as_array()?;
    app_list(
        apps.iter()
            .filter_map(|a| a.get("_name").and_then(Value::as_str).map(str::to_string)),
    )
}

/// `networksetup -getairportnetwork en0` → `Current Wi-Fi Network: corp-wifi`.
pub fn parse_airport_network(text: &str) -> Option<String> {
    text.lines().find_map(|l| {
        l.strip_prefix("Current Wi-Fi Network: ")
            .or_else(|| l.strip_prefix("Current AirPort Network: "))
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    })
}
